-- The W3C traceparent of the request that wrote the outbox row: the relay sends it on in the
-- message's headers, so the consumers' spans join the request's trace. (The shared consumer
-- migration adds the same column; both are idempotent, this one keeps the booking schema
-- complete on its own.)
ALTER TABLE "{schema}".outbox ADD COLUMN IF NOT EXISTS traceparent text;
