-- Retention (shared/db/retention.py) deletes by age in small batches: this index lets each
-- batch find its rows without scanning the table. (The outbox's own index is in
-- shared/outbox/migrations/.)
CREATE INDEX IF NOT EXISTS processed_events_processed_at_idx
    ON "{schema}".processed_events (processed_at);
