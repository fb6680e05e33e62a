"""Shared vocabulary of the reconciliation rules: events in, flags out, and one notion of time.

The rules are pure functions of (the subject's events, the event-time clock ``now``,
thresholds).  Everything here exists so that two replicas fed the same events in a
different order, with duplicates, compute byte-for-byte the same flags: events are
deduplicated by ``event_id`` and sorted by ``(event_time, event_id)``, amounts stay
integers (or exact fractions), and every flag has a deterministic id.

Time model (used by every rule, written down once here):

* Each fact (a payout, a disbursement, a report...) happens at its *effective time*:
  the business time in its payload (``paid_at``, ``made_at``...) but never later than
  the envelope ``event_time`` -- nothing can have happened after it was published, so a
  future-dated claim counts from its publication.
* The *horizon* of an evaluation is ``max(now, latest event_time of the subject)``:
  the clock can never be behind an event it has already delivered.  With ``now=None``
  only what the subject's own events prove is used; no deadline later than them fires.
* A flag condition ``C(t)`` is evaluated at every instant where it can change (fact
  times and deadlines) up to the horizon.  Deadlines are strict: "late after D" holds
  for ``t > D``, i.e. from ``D + TICK`` (one microsecond, the resolution of the wire
  format).  ``raised_at`` is the first instant ``C`` held (the deadline ``D`` itself for
  deadline rules); ``resolved_at`` is the instant later evidence made it false.  A
  resolved flag stays in the result as history.  If the condition holds again later,
  the same flag re-opens: ``raised_at`` keeps its first value, ``resolved_at`` becomes
  ``None`` and ``detail["episodes"]`` counts the openings.
* ``next_deadline`` is the earliest instant after the horizon at which the result would
  change with no new event (``D + TICK`` of the next deadline that flips a condition):
  evaluating with ``now = next_deadline`` shows the change.  ``None`` if no such instant.
* Property the tests check: for fixed events and ``now1 <= now2`` (``None`` counts as
  the earliest), every flag of the result at ``now1`` is *equal* to a flag of the result
  at ``now2``: a later clock only raises new flags, it never changes or removes one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar

from schemas.flags import (
    AUTHORITY_FLAG_TYPE,
    DISCREPANCY_FLAG_TYPES,
    FlagType,
    Severity,
    SubjectKind,
)

__all__ = [
    "EVIDENCE_LIMIT",
    "FLAG_TYPES",
    "TICK",
    "Contribution",
    "Evt",
    "FlagSpec",
    "FlagType",
    "Point",
    "Severity",
    "SubjectKind",
    "Trace",
    "canonical_events",
    "effective_time",
    "flag_id",
    "horizon",
    "parse_money",
    "payload_str",
    "trace",
]

#: Every flag type these rules can raise: the discrepancies of ``flag.changed``'s
#: enum, and ``authority_violation`` for an event disregarded because its
#: publisher may not speak for the subject (``FlagType``, ``Severity`` and
#: ``SubjectKind`` are the generated types).
FLAG_TYPES: Final[tuple[FlagType, ...]] = (*DISCREPANCY_FLAG_TYPES, AUTHORITY_FLAG_TYPE)

#: One microsecond: the wire format's time resolution, so "after D" starts at D + TICK.
TICK: Final = timedelta(microseconds=1)
#: ``flag.changed`` carries at most 100 evidence references; flags never list more.
EVIDENCE_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class Evt:
    """One accepted event as the rules see it: envelope id, type and time, plus its payload.

    ``event_time`` is the envelope header time (aware, UTC); ``log_index`` is the
    position in the public log when known: evidence, and the order that decides
    which registration of a subject is the first (:mod:`.authority`).
    ``publisher_id`` (the envelope header's) says who may have said it; None
    when unknown, and then only the payload is judged.
    """

    event_id: str
    event_type: str
    event_time: datetime
    log_index: int | None
    payload: Mapping[str, Any]
    publisher_id: str | None = None

    def __post_init__(self) -> None:
        if self.event_time.tzinfo is None or self.event_time.utcoffset() is None:
            raise ValueError(f"event {self.event_id}: event_time must be timezone-aware")


@dataclass(frozen=True)
class FlagSpec:
    """A discrepancy, with the party answerable for it and the events proving it.

    Identity is ``(flag_type, subject_kind, subject_id, key)`` (see ``flag_id``); the
    other fields describe the flag's current state and history.  ``detail`` holds only
    JSON numbers and strings (no person data: senders and beneficiaries never appear).
    """

    flag_type: FlagType
    key: str
    subject_kind: SubjectKind
    subject_id: str
    accountable: str
    severity: Severity
    amount_at_stake: int | None
    currency: str | None
    evidence: tuple[str, ...]
    raised_at: datetime
    resolved_at: datetime | None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def flag_id(self) -> str:
        """Shortcut for ``flag_id(self)``."""
        return flag_id(self)

    @property
    def is_open(self) -> bool:
        """True while no later evidence has resolved the flag."""
        return self.resolved_at is None


def flag_id(spec: FlagSpec) -> str:
    """Deterministic id, equal on every replica: ``flg_`` + 26 base32 chars of SHA-256.

    Hashes ``f"{flag_type}|{subject_kind}|{subject_id}|{key}"`` so re-running the rules
    updates the same flag instead of creating a new one.
    """
    raw = f"{spec.flag_type}|{spec.subject_kind}|{spec.subject_id}|{spec.key}".encode()
    digest = hashlib.sha256(raw).digest()
    return "flg_" + base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:26]


@dataclass(frozen=True, slots=True)
class Contribution:
    """Money a club's members sent to a project fund, as the transfer rules saw it paid.

    ``version`` is the number of distinct events behind it; the project side keeps, per
    ``transfer_id``, the contribution with the highest version (it only grows).
    ``evidence`` starts with the ``transfer.sent``'s event id; ``operator`` published
    it (None when unknown): it answers for a contribution credited to another club.
    """

    project_id: str
    club_id: str
    transfer_id: str
    amount: int
    currency: str
    received_at: datetime
    evidence: tuple[str, ...]
    version: int
    operator: str | None = None


# --------------------------------------------------------------------------- parsing


def parse_money(value: object) -> tuple[int, str]:
    """``{"amount": int, "currency": str}`` -> ``(amount, currency)``; bools and floats refused."""
    if not isinstance(value, Mapping):
        raise ValueError(f"not money: {value!r}")
    amount, currency = value.get("amount"), value.get("currency")
    if type(amount) is not int or not isinstance(currency, str) or not currency:
        raise ValueError(f"not money: {value!r}")
    return amount, currency


def payload_str(payload: Mapping[str, Any], key: str) -> str:
    """A required non-empty string field of a payload."""
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


# --------------------------------------------------------------------------- events


def _content_key(e: Evt) -> tuple[datetime, str, int, str]:
    body = json.dumps(
        e.payload,
        sort_keys=True,
        separators=(",", ":"),
        default=lambda o: dict(o) if isinstance(o, Mapping) else str(o),
    )
    return (e.event_time, e.event_type, -1 if e.log_index is None else e.log_index, body)


def canonical_events(events: Iterable[Evt], accept: Callable[[Evt], bool]) -> list[Evt]:
    """The accepted events, one per ``event_id``, sorted by ``(event_time, event_id)``.

    Two copies of one event id are normally identical; if they differ, the same copy is
    kept whatever the input order (the smallest by time, type, log index, payload), so
    the result never depends on the order events arrived in.
    """
    chosen: dict[str, Evt] = {}
    for e in events:
        if not accept(e):
            continue
        old = chosen.get(e.event_id)
        if old is None or _content_key(e) < _content_key(old):
            chosen[e.event_id] = e
    return sorted(chosen.values(), key=lambda e: (e.event_time, e.event_id))


def effective_time(business_time: datetime, evt: Evt) -> datetime:
    """When a fact counts: its payload time, but never after the event was published."""
    return min(business_time, evt.event_time)


def horizon(events: Sequence[Evt], now: datetime | None, *extra: datetime) -> datetime | None:
    """``max(now, latest event_time, extra...)``: how far the evaluation may look in time."""
    times = [e.event_time for e in events]
    times.extend(extra)
    if now is not None:
        times.append(now)
    return max(times) if times else None


# --------------------------------------------------------------------------- timelines

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Point:
    """An instant where a condition may change; ``shown`` is what ``raised_at`` reports.

    Fact points have ``shown == at``; a deadline ``D`` is ``Point(D + TICK, D)``.
    """

    at: datetime
    shown: datetime


@dataclass(frozen=True, slots=True)
class Trace(Generic[T]):
    """History of one condition up to the horizon.

    ``info`` is what the condition reported at the last instant it held (the amount
    outstanding just before it was resolved, or now if still open).
    """

    raised_at: datetime
    resolved_at: datetime | None
    info: T
    episodes: int


def trace(
    points: Iterable[Point],
    cond: Callable[[datetime], tuple[bool, T]],
    limit: datetime,
) -> tuple[Trace[T] | None, datetime | None]:
    """Walk ``cond`` over ``points`` up to ``limit``; return its history and next change.

    The condition is assumed false before the first point.  Points after ``limit``
    (only deadlines, since facts never lie beyond the horizon) are not part of the
    history; the first of them where the condition would flip is the next deadline.
    """
    by_at: dict[datetime, datetime] = {}
    for p in points:
        prev = by_at.get(p.at)
        by_at[p.at] = p.shown if prev is None else min(prev, p.shown)
    held = False
    raised: datetime | None = None
    resolved: datetime | None = None
    last: list[T] = []
    episodes = 0
    for at in sorted(by_at):
        ok, inf = cond(at)
        if at > limit:
            if ok != held:
                return _finish(raised, resolved, last, episodes), at
            continue
        if ok:
            if not held:
                episodes += 1
                if raised is None:
                    raised = by_at[at]
                resolved = None
            last[:] = [inf]
        elif held:
            resolved = at
        held = ok
    return _finish(raised, resolved, last, episodes), None


def _finish(
    raised: datetime | None, resolved: datetime | None, last: list[T], episodes: int
) -> Trace[T] | None:
    if raised is None or not last:
        return None
    return Trace(raised, resolved, last[0], episodes)
