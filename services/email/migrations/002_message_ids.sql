-- What identifies a sent email downstream (its Message-ID, derived from the event id) and
-- the voucher code it carried. Nullable: rows written before this migration have neither.
ALTER TABLE "{schema}".emails ADD COLUMN IF NOT EXISTS message_id text;
ALTER TABLE "{schema}".emails ADD COLUMN IF NOT EXISTS voucher_code text;
