-- Issue 14.6: senders and beneficiaries have a pseudonym per transfer, so the
-- public record cannot count people.  The per-day distinct-sender table and
-- count (which only ever counted pseudonyms) go; the dashboard's small-group
-- suppression counts transfers, what the record can still count honestly.
DROP TABLE IF EXISTS summary_corridor_senders;
ALTER TABLE summary_corridor_day DROP COLUMN IF EXISTS senders;
