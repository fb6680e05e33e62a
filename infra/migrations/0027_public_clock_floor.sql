-- The clock the public sees only moves forward (issue 15.9).  Each process that
-- evaluates rules records the highest clock reading it has acted on, in the
-- same transaction as the flags it wrote; a reading is never below the highest
-- recorded one.  One row per writer (group@host:pid) so concurrent workers never
-- wait on each other's row lock.
CREATE TABLE IF NOT EXISTS clock_floor (
    writer     text PRIMARY KEY,
    floor      timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON clock_floor TO {{reader}};
