-- Every (publisher, seq) the gate has seen in a parsed envelope, accepted or
-- rejected, so a gap means a sequence number never arrived at all.
CREATE TABLE publisher_seqs (
    publisher_id text NOT NULL,
    seq          bigint NOT NULL,
    PRIMARY KEY (publisher_id, seq)
);
ALTER TABLE publisher_sequences ADD COLUMN seen bigint NOT NULL DEFAULT 0;
ALTER TABLE publisher_sequences ADD COLUMN contiguous_upto bigint NOT NULL DEFAULT 0;
ALTER TABLE publisher_sequences ADD COLUMN last_seen_at timestamptz;
-- Publishers first seen through a rejected event still get a row.
ALTER TABLE publisher_sequences ALTER COLUMN accepted SET DEFAULT 0;
ALTER TABLE publisher_sequences ALTER COLUMN max_seq SET DEFAULT 0;
