-- Idempotency record: an event id is inserted in the same transaction as the effect it
-- caused, so a redelivered or replayed event finds it and does nothing again.
CREATE TABLE IF NOT EXISTS "{schema}".processed_events (
    event_id     uuid PRIMARY KEY,
    event_type   text NOT NULL,
    booking_id   uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS processed_events_booking_idx ON "{schema}".processed_events (booking_id);
