-- The API shows a short code per failure, never the failure's text (SMTP hosts, webhook
-- URLs, answers from other servers stay in the logs and the dead-letter headers). Rows
-- written before the codes existed show 'unclassified-failure'; their text is dropped.
ALTER TABLE "{schema}".fulfilment ADD COLUMN IF NOT EXISTS last_error_code text;
UPDATE "{schema}".fulfilment SET last_error_code = 'unclassified-failure'
    WHERE last_error IS NOT NULL AND last_error_code IS NULL;
ALTER TABLE "{schema}".fulfilment DROP COLUMN IF EXISTS last_error;
