-- Management tokens (services/booking/tokens.py): only their SHA-256 is kept. A booking has
-- one per answer that handed one out: its POST, and each Idempotency-Key replay of it.
CREATE TABLE IF NOT EXISTS "{schema}".booking_tokens (
    booking_id  uuid NOT NULL REFERENCES "{schema}".bookings (id),
    token_hash  bytea NOT NULL CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, token_hash)
);
