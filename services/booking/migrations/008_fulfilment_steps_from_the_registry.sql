-- The fulfilment steps are the consumers of shared/registry.py, validated when a report is
-- decoded (FulfilmentProgressed.step); a list here was a second copy, and a new consumer's
-- reports failed on it.
ALTER TABLE "{schema}".fulfilment DROP CONSTRAINT IF EXISTS fulfilment_step_check;
