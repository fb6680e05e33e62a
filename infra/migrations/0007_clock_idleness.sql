-- When a partition last advanced (wall clock), so idle partitions stop holding the clock back.
ALTER TABLE clock_partitions ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
