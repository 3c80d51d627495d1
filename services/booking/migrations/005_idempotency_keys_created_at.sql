-- Retention deletes idempotency keys by age, in small batches (shared/db/retention.py).
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at_idx
    ON "{schema}".idempotency_keys (created_at);
