-- Whether the partition was caught up (no backlog) at its last update: a
-- partition with a backlog is never idle, however long it waits its turn.
ALTER TABLE clock_partitions ADD COLUMN caught_up boolean NOT NULL DEFAULT false;
