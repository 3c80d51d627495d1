-- The rendered voucher is kept with its record; a cancelled booking's voucher is voided,
-- never deleted, so its code stays unique and the history readable.
ALTER TABLE "{schema}".vouchers ADD COLUMN IF NOT EXISTS pdf bytea;
ALTER TABLE "{schema}".vouchers ADD COLUMN IF NOT EXISTS voided_at timestamptz;
ALTER TABLE "{schema}".vouchers ALTER COLUMN event_id DROP NOT NULL;
