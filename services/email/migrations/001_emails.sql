CREATE TABLE IF NOT EXISTS "{schema}".emails (
    event_id    uuid PRIMARY KEY,
    booking_id  uuid NOT NULL,
    kind        text NOT NULL,
    recipient   text NOT NULL,
    subject     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS emails_booking_idx ON "{schema}".emails (booking_id);
