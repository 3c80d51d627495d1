-- Which process sent the email (hostname:pid), so the spread of work over replicas shows.
ALTER TABLE "{schema}".emails ADD COLUMN IF NOT EXISTS sent_by text;
