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
sent has been applied and the clock is the latest event time seen.  Tests
(and operators replaying history) pin the clock with ``clock_override``
instead of sleeping.

The clock only moves forward.  The minimum above can step back: an idle
partition that becomes active again with an older watermark re-enters it.
Evaluated at the lower reading, a flag already public would be withdrawn and
later restored (history open, withdrawn, open).  So every reading a writer
acts on is recorded in ``clock_floor`` in the same transaction as its effects,
and a reading is never below the highest recorded one: what a deadline made
public stays public.  One row per writer process keeps workers from waiting on
each other's row lock.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from psycopg2.extras import execute_values

__all__ = ["advance", "now", "pin", "unpin", "stale_backlog_s", "writer_id"]


def advance(cur: Any, group: str, marks: dict[tuple[str, int], datetime],
            caught_up: dict[tuple[str, int], bool] | None = None) -> None:
    """Record per partition the latest event time applied, and whether it has no backlog left.

    A partition in ``caught_up`` without a mark (its records in this batch
    were duplicates, refusals or registry events) still records whether it has
    a backlog: otherwise a stale "not caught up" from an earlier batch held
    the clock back, and sequence gaps unjudged, for ``stale_backlog_s`` after
    the traffic ended (regression: a publisher's resent bundle ended a
    partition with duplicates only).
    """
    caught_up = caught_up or {}
    rest = sorted((t, p, bool(c)) for (t, p), c in caught_up.items() if (t, p) not in marks)
    if rest:
        # a handful of partitions per batch; only rows whose state changes are written
        for t, p, c in rest:
            cur.execute("UPDATE clock_partitions SET caught_up = %s WHERE group_id = %s AND topic = %s"
                        " AND partition = %s AND caught_up IS DISTINCT FROM %s", (c, group, t, p, c))
    if not marks:
        return
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


def writer_id(group: str) -> str:
    """This process's row in ``clock_floor`` for one consumer group."""
    return f"{group}@{socket.gethostname()}:{os.getpid()}"


def now(cur: Any, lateness: timedelta, idle_s: float = 10.0, *, writer: str | None = None) -> datetime | None:
    """The shared clock: never below a reading any writer has acted on.

    ``writer`` (from :func:`writer_id`) records this reading as acted on, in the
    caller's transaction; readers that change nothing public pass none.
    """
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
        " max(watermark), (SELECT max(floor) FROM clock_floor) FROM clock_partitions",
        (idle_s, stale_backlog_s(idle_s)),
    )
    active_low, high, floor = cur.fetchone()
    t = active_low if active_low is not None else high
    reading = None if t is None else t - lateness
    if floor is not None and (reading is None or reading < floor):
        return floor  # type: ignore[no-any-return]
    if reading is not None and writer is not None and (floor is None or reading > floor):
        cur.execute(
            "INSERT INTO clock_floor (writer, floor) VALUES (%s, %s) ON CONFLICT (writer) DO UPDATE"
            " SET floor = GREATEST(clock_floor.floor, EXCLUDED.floor), updated_at = now()",
            (writer, reading),
        )
    return reading


def pin(cur: Any, at: datetime) -> None:
    cur.execute(
        "INSERT INTO clock_override (id, now) VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET now = EXCLUDED.now", (at,)
    )


def unpin(cur: Any) -> None:
    """Back to the shared clock (readings recorded while pinned were none)."""
    cur.execute("DELETE FROM clock_override")
