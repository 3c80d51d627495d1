-- The transactional outbox of a service: the booking service's events, a consumer's progress
-- reports and whatever its handlers emit, each written in the transaction of the change that
-- caused it (shared/outbox/rows.py), then published by the relay (shared/outbox/relay.py).
-- Applied to every service's schema (shared/db/schemas.py).
--
-- Everything here is IF NOT EXISTS: a database migrated before this package existed has the
-- table already (db/consumer_migrations/002_outbox.sql, 003_outbox_traceparent.sql and
-- 004_retention_indexes.sql; booking/migrations/001_booking.sql and 004_outbox_traceparent.sql),
-- and this file leaves it as it is. A column added after the table's first release is added
-- by its own ALTER, so a database from before that column catches up too.
CREATE TABLE IF NOT EXISTS "{schema}".outbox (
    id                bigserial PRIMARY KEY,
    event_id          uuid NOT NULL UNIQUE,
    event_type        text NOT NULL,
    booking_id        uuid NOT NULL,
    occurred_at       timestamptz NOT NULL,
    body              text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    publish_attempts  integer NOT NULL DEFAULT 0,
    last_error        text
);

-- The W3C traceparent of the transaction that wrote the row (NULL outside any trace): the
-- relay sends it on in the message's headers, so the consumers' spans join that trace.
ALTER TABLE "{schema}".outbox ADD COLUMN IF NOT EXISTS traceparent text;

-- The relay's claim (and the backlog gauges) read only unsent rows, in id order.
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON "{schema}".outbox (id)
    WHERE published_at IS NULL;

-- Retention (shared/db/retention.py) deletes sent rows by age in small batches; only sent
-- rows are ever deleted, so only they are indexed.
CREATE INDEX IF NOT EXISTS outbox_published_at_idx ON "{schema}".outbox (published_at)
    WHERE published_at IS NOT NULL;
