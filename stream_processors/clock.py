"""The event-time clock the processors share.

``now`` = the smallest, over every *active* partition a reconciler has
applied events from, of the latest event time applied there, minus the
allowed lateness (``CLOCK_LATENESS_S``).  Taking the minimum keeps a fast
partition from pushing deadlines past events a slower one has not delivered
yet.  A partition that was caught up (no backlog) and received nothing for
``CLOCK_IDLE_S`` (wall clock) is idle and drops out of the minimum, as in
Flink's watermark idleness, so a quiet partition cannot stop time, while a
partition still holding a backlog always counts, however long it waits its
turn.  The gate contributes its partitions too, so events still queued
upstream hold the clock back; when every partition is idle, everything
sent has been applied and the clock is the latest event time seen.  Tests (and operators replaying history) pin the clock with
``clock_override`` instead of sleeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg2.extras import execute_values

__all__ = ["advance", "now", "pin", "unpin", "stale_backlog_s"]


def advance(cur: Any, group: str, marks: dict[tuple[str, int], datetime],
            caught_up: dict[tuple[str, int], bool] | None = None) -> None:
    """Record per partition the latest event time applied, and whether it has no backlog left."""
    if not marks:
        return
    caught_up = caught_up or {}
    execute_values(
        cur,
        "INSERT INTO clock_partitions (group_id, topic, partition, watermark, caught_up) VALUES %s"
        " ON CONFLICT (group_id, topic, partition) DO UPDATE SET"
        " watermark = GREATEST(clock_partitions.watermark, EXCLUDED.watermark), updated_at = now(),"
        " caught_up = EXCLUDED.caught_up",
        [(group, t, p, w, bool(caught_up.get((t, p), False))) for (t, p), w in sorted(marks.items())],
    )


def stale_backlog_s(idle_s: float) -> float:
    """How long a backlogged partition may stand still before it stops holding the clock."""
    return max(60.0, 10 * idle_s)


def now(cur: Any, lateness: timedelta, idle_s: float = 10.0) -> datetime | None:
    cur.execute("SELECT now FROM clock_override WHERE id = 1")
    row = cur.fetchone()
    if row:
        return row[0]  # type: ignore[no-any-return]
    cur.execute(
        # counts: recently active partitions, and backlogged ones unless they
        # have not advanced for a long while (their topic may have vanished
        # with a broker restart, leaving a backlog that will never be read)
        "SELECT min(watermark) FILTER (WHERE updated_at > now() - make_interval(secs => %s)"
        "   OR (NOT caught_up AND updated_at > now() - make_interval(secs => %s))),"
        " max(watermark) FROM clock_partitions",
        (idle_s, stale_backlog_s(idle_s)),
    )
    active_low, high = cur.fetchone()
    t = active_low if active_low is not None else high
    return None if t is None else t - lateness


def pin(cur: Any, at: datetime) -> None:
    cur.execute(
        "INSERT INTO clock_override (id, now) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET now = EXCLUDED.now", (at,)
    )


def unpin(cur: Any) -> None:
    cur.execute("DELETE FROM clock_override")
