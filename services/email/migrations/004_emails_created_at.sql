-- Retention deletes sent emails (the guest's name and address) by age, in small batches
-- (shared/db/retention.py).
CREATE INDEX IF NOT EXISTS emails_created_at_idx ON "{schema}".emails (created_at);
