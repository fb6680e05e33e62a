"""A flag becomes public only once the shared clock passed the moment it became true."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stream_processors.reconcilers import visible_flags
from stream_processors.rules.model import FlagSpec

T = datetime(2026, 5, 1, tzinfo=UTC)


def spec(at: datetime) -> FlagSpec:
    return FlagSpec("short_payout", "", "transfer", "tr-1", "mto-a", "high", 10, "MXN", ("e1",), at, None)


def test_flags_wait_for_the_clock_and_set_the_deadline():
    early, late = spec(T), spec(T + timedelta(hours=3))
    shown, due = visible_flags([early, late], T + timedelta(hours=1), T + timedelta(days=2))
    assert shown == [early] and due == T + timedelta(hours=3)
    shown, due = visible_flags([early, late], T + timedelta(hours=4), None)
    assert shown == [early, late] and due is None


def test_no_clock_no_flags_but_a_deadline():
    shown, due = visible_flags([spec(T)], None, None)
    assert shown == [] and due == T


def test_rules_deadline_kept_when_earlier():
    shown, due = visible_flags([spec(T + timedelta(days=1))], T, T + timedelta(hours=2))
    assert shown == [] and due == T + timedelta(hours=2)
