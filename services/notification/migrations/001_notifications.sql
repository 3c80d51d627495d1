CREATE TABLE IF NOT EXISTS "{schema}".notifications (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL,
    booking_id  uuid NOT NULL,
    event_type  text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS notifications_booking_idx ON "{schema}".notifications (booking_id, id);
