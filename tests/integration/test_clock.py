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


def test_public_clock_never_steps_back_when_an_idle_partition_returns(migrated):
    """Regression (issue 15.9): an idle partition returning with an older watermark pulled the clock back."""
    s = migrated
    conn = connect(s.database_url, s.database_schema)
    lateness = timedelta(0)
    try:
        with conn, conn.cursor() as cur:
            clock.advance(cur, "g2", {("u", 0): T0 + timedelta(days=2), ("u", 1): T0 + timedelta(days=5)})
            # partition 0 caught up and went quiet: it drops out of the minimum
            clock.advance(cur, "g2", {("u", 0): T0 + timedelta(days=2)}, {("u", 0): True})
            cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '1 minute' WHERE topic = 'u'"
                        " AND partition = 0")
            assert clock.now(cur, lateness, idle_s=10, writer="w1") == T0 + timedelta(days=5)
        with conn, conn.cursor() as cur:
            # it wakes up with events older than the reading acted on
            clock.advance(cur, "g2", {("u", 0): T0 + timedelta(days=3)}, {("u", 0): False})
            assert clock.now(cur, lateness, idle_s=10) == T0 + timedelta(days=5)
            assert clock.now(cur, lateness, idle_s=10, writer="w2") == T0 + timedelta(days=5)
            cur.execute("SELECT writer FROM clock_floor ORDER BY writer")
            assert [r[0] for r in cur.fetchall()] == ["w1"]  # nothing new to record
    finally:
        conn.close()


def test_late_payout_flag_is_not_withdrawn_when_the_clock_would_step_back(migrated):
    """Regression (issue 15.9): the flag's history read open, withdrawn, open."""
    from infra.identities import PlatformKeys
    from stream_processors.flag_store import FlagWriter
    from stream_processors.rules import Evt, Thresholds, reconcile_transfer
    from tests.integration.platform import prepare

    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    tid = "trf-clock-back"
    sent = Evt("a" * 25 + "q", "transfer.sent", T0, 3, {
        "transfer_id": tid, "operator": "op_remesas", "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 20_000, "currency": "USD"}, "fee": {"amount": 499, "currency": "USD"},
        "exchange_rate": "17.25", "receive_promised": {"amount": 345_000, "currency": "MXN"},
        "available_by": "2026-03-01T01:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": "ben_" + "a" * 26},
        "sender": "snd_" + "b" * 26, "receipt_digest": "c" * 64, "disclosed_cost_bps": 448,
    }, "op_remesas")
    conn = connect(s.database_url, s.database_schema)
    try:
        # two partitions; the second, far ahead, is alone active: the clock passes available_by
        for marks, caught_up in (({("v", 0): T0, ("v", 1): T0 + timedelta(hours=6)}, {("v", 0): True}),
                                 ({("v", 0): T0}, {("v", 0): False})):  # partition 0 wakes up, older
            with conn, conn.cursor() as cur:
                clock.advance(cur, "g3", marks, caught_up)
                if caught_up[("v", 0)]:
                    cur.execute("UPDATE clock_partitions SET updated_at = now() - interval '1 minute'"
                                " WHERE topic = 'v' AND partition = 0")
                now = clock.now(cur, timedelta(0), idle_s=10, writer="reconciler")
                result = reconcile_transfer(tid, [sent], now, Thresholds())
                fw = FlagWriter(cur, keys)
                fw.sync([("transfer", tid)], result.flags, now)
                fw.finish()
        with conn, conn.cursor() as cur:
            cur.execute("SELECT h.status FROM flag_history h JOIN flags f USING (flag_id)"
                        " WHERE f.subject_id = %s AND f.flag_type = 'late_payout' ORDER BY h.n", (tid,))
            assert [r[0] for r in cur.fetchall()] == ["open"]
    finally:
        conn.close()


def test_a_batch_of_duplicates_still_records_that_its_partition_caught_up(migrated):
    """Regression: a partition whose last batch held no new event (a resent bundle: duplicates
    only) kept a stale "not caught up", holding the clock back and sequence gaps unjudged for
    stale_backlog_s after the traffic ended."""
    s = migrated
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            clock.advance(cur, "g4", {("x", 0): T0}, {("x", 0): False})
            clock.advance(cur, "g4", {}, {("x", 0): True})  # duplicates only, at the high watermark
            cur.execute("SELECT caught_up FROM clock_partitions WHERE group_id = 'g4'")
            assert cur.fetchone()[0] is True
            cur.execute("SELECT watermark FROM clock_partitions WHERE group_id = 'g4'")
            assert cur.fetchone()[0] == T0  # no mark: the watermark stays
    finally:
        conn.close()
