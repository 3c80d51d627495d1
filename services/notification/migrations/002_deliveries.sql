-- One row per (event, target) served: written in its own transaction right after the
-- target accepted the event, so a retry after a partial failure skips it.
CREATE TABLE IF NOT EXISTS "{schema}".deliveries (
    event_id      uuid NOT NULL,
    booking_id    uuid NOT NULL,
    channel       text NOT NULL CHECK (channel IN ('webhook', 'ntfy')),
    target        text NOT NULL,
    status_code   integer NOT NULL,
    delivered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, channel, target)
);
CREATE INDEX IF NOT EXISTS deliveries_booking_idx ON "{schema}".deliveries (booking_id);
