-- Since when the current first gap of a publisher has been missing, so a gap
-- is flagged after a while even at a publisher that never goes quiet.
ALTER TABLE publisher_sequences ADD COLUMN gap_at bigint;
ALTER TABLE publisher_sequences ADD COLUMN gap_since timestamptz;
