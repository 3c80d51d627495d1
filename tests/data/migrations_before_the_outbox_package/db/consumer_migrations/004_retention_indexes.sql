-- Retention (shared/db/retention.py) deletes by age in small batches: these indexes let each
-- batch find its rows without scanning the table. Only published outbox rows are ever
-- deleted, so only they are indexed.
CREATE INDEX IF NOT EXISTS outbox_published_at_idx ON "{schema}".outbox (published_at)
    WHERE published_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS processed_events_processed_at_idx
    ON "{schema}".processed_events (processed_at);
