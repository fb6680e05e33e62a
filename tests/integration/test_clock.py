"""The shared event-time clock, on a real PostgreSQL: min over active partitions, idleness, pinning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.db import connect
from stream_processors import clock

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_clock_min_over_active_partitions_with_idleness_and_pin(migrated):
    s = migrated
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            lateness = timedelta(hours=1)
            assert clock.now(cur, lateness) is None
            clock.advance(cur, "g", {("t", 0): T0 + timedelta(days=2), ("t", 1): T0 + timedelta(days=5)})
            assert clock.now(cur, lateness) == T0 + timedelta(days=2) - lateness
            # a watermark never goes back
            clock.advance(cur, "g", {("t", 0): T0})
            assert clock.now(cur, lateness) == T0 + timedelta(days=2) - lateness
            # partition 0 waits its turn with a backlog: however long, it still holds the clock
            cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '1 minute' WHERE partition = 0")
            assert clock.now(cur, lateness, idle_s=10) == T0 + timedelta(days=2) - lateness
            # a backlog that has not moved for a long while (its topic vanished
            # with a broker restart) stops holding the clock back too
            cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '2 minutes' WHERE partition = 0")
            assert clock.now(cur, lateness, idle_s=5) == T0 + timedelta(days=5) - lateness
            # caught up and quiet: idle, it stops holding the clock back
            clock.advance(cur, "g", {("t", 0): T0 + timedelta(days=2)}, {("t", 0): True})
            cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '1 minute' WHERE partition = 0")
            assert clock.now(cur, lateness, idle_s=10) == T0 + timedelta(days=5) - lateness
            # everything idle: all sent has been applied, the clock is the latest event time
            cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '1 minute', caught_up = true")
            assert clock.now(cur, lateness, idle_s=10) == T0 + timedelta(days=5) - lateness
            # tests and operators pin the clock instead of sleeping
            clock.pin(cur, T0 + timedelta(days=30))
            assert clock.now(cur, lateness) == T0 + timedelta(days=30)
            clock.unpin(cur)
            assert clock.now(cur, lateness, idle_s=10) == T0 + timedelta(days=5) - lateness
    finally:
        conn.close()
