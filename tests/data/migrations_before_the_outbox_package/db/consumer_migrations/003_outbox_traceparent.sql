-- The W3C traceparent of the transaction that wrote the row (NULL outside any trace): the
-- relay sends it on in the message's headers, so consumers join the same trace.
ALTER TABLE "{schema}".outbox ADD COLUMN IF NOT EXISTS traceparent text;
