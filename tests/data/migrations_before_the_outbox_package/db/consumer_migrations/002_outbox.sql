-- Transactional outbox of a consuming service: its progress reports (and any events its
-- handlers emit) are written in the transaction of the effect, then relayed.
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
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON "{schema}".outbox (id) WHERE published_at IS NULL;
