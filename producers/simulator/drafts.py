"""One run being drafted: its window, its random stream, the events drafted so far and the truth.

A run is built in two passes.  First :mod:`.transfers`, :mod:`.projects` and
:mod:`.attacks` draft events (publisher, type, payload, event time, when to
publish) on a :class:`Run` and write the truth they imply; then
:func:`.build.finish` orders the drafts, numbers them per publisher and
signs them.  Drafting first lets a later step still move a date (a project's
milestone dues, say) before anything is signed.

Every random draw comes from ``Run.rng``, in a fixed order: the same inputs
draft the same events, hence byte-identical envelopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from producers.simulator.market import Market, Quote
from producers.simulator.results import RegistryAction
from producers.simulator.truth import Paid, Refunded, flag_line
from producers.simulator.world import (
    DAY,
    Club,
    SimPublisher,
    b32,
    derive_key,
    hash_parts,
    seeded_rng,
)
from schemas.envelope import Envelope, event_id_from
from schemas.times import format_time

__all__ = ["TAIL", "Draft", "Transfer", "Run"]

#: The quiet tail: only instant transfers and deadline-free project events.
TAIL: Final = timedelta(days=2, hours=6)


@dataclass(slots=True, eq=False)
class Draft:
    """An event before it is numbered and signed; ``kind`` says how it will be signed and sent."""

    idx: int
    publisher_id: str
    event_type: str
    payload: dict[str, Any]
    event_time: datetime
    publish_at: datetime
    event_id: str
    kind: str = "normal"  # normal | replay | equivocation | forged | refused
    reason: str | None = None
    label: str | None = None
    original: Draft | None = None
    seq: int = 0
    envelope: Envelope | None = None
    phase: int = 0  # see results.SimEvent.phase


@dataclass(slots=True)
class Transfer:
    """A drafted ``transfer.sent`` and what became of it (payouts and refunds as :mod:`.truth`
    records them: amount, currency, effective time, stated rate)."""

    transfer_id: str
    operator: str
    quote: Quote
    sent: Draft
    available_by: datetime
    payouts: list[Paid] = field(default_factory=list)
    payout_drafts: list[Draft] = field(default_factory=list)
    label: str | None = None
    beneficiary: bool = True
    cancelled: bool = False
    cancelled_at: datetime | None = None
    refunds: list[Refunded] = field(default_factory=list)
    payer: str = ""  # who publishes its payouts: the operator, or a payout agent it named


class Run(Market):
    """The state of one run while it is drafted (the market of its seed, plus the drafts).

    Window: ``start`` .. ``end``; ``cutoff`` is the last moment a deadline may
    fall on and still be decided whatever the exact final clock; ``tail_start``
    begins the quiet tail; ``fut`` (``end`` + 1 day) is where deadlines go
    that must not fall due in the window.
    """

    def __init__(
        self,
        seed: int,
        *,
        events: int,
        start: datetime,
        span: timedelta,
        anomalies: bool,
        first_seq: Mapping[str, int],
        late_case: bool = True,
    ) -> None:
        self.seed = seed
        self.start = start
        self.end = start + span
        self.tail_start = self.end - TAIL
        self.cutoff = self.tail_start - timedelta(hours=6)
        self.fut = self.end + DAY
        self.anomalies = anomalies
        seqs = ",".join(f"{k}={v}" for k, v in sorted(first_seq.items()) if v != 1)
        tag = b32(
            hash_parts(
                "run",
                seed,
                format_time(start),
                int(span.total_seconds()),
                events,
                anomalies,
                seqs,
                "" if late_case else "no-late-case",
            ),
            5,
        )
        super().__init__(seed, seeded_rng(seed, tag, "main"), tag)
        self.first_seq = dict(first_seq)
        self.drafts: list[Draft] = []
        self.truth: list[dict[str, Any]] = []
        self.transfers: list[Transfer] = []
        self.receipts: dict[str, str] = {}
        self.senders: dict[str, str] = {}  # transfer id -> the sender's private identifier (operator side)
        self.skipped: list[str] = []
        self.pubs: dict[str, SimPublisher] = {p.publisher_id: p for p in self.roster.publishers}
        self.registry: list[RegistryAction] = []
        self.revoked_op: str | None = None
        self.revoked_at: datetime | None = None
        self.late_op: str | None = None  # publishes on purpose after its backfill, late
        self.self_verifier: Club | None = None  # a committee that names itself a verifier
        self.self_verified: tuple[str, str, datetime] | None = None  # its (project, milestone, report time)
        self.gap_publisher: str | None = None
        self.attacker = derive_key(seed, "attacker")
        self.clean_projects = 0
        self._counter = 0

    def new_id(self, prefix: str, n: int = 10) -> str:
        """``prefix-runtag-<hex>``: unique, and saying nothing about what the entity is."""
        self._counter += 1
        return (
            f"{prefix}-{self.run_tag}-{hash_parts(self.run_tag, prefix, self._counter).hex()[:n]}"
        )

    def between(self, a: datetime, b: datetime) -> datetime:
        """A whole-second instant in [a, b] (a when the interval is empty)."""
        span = int((b - a).total_seconds())
        return a + timedelta(seconds=self.rng.randint(0, span)) if span > 0 else a

    def draft(
        self,
        publisher_id: str,
        event_type: str,
        payload: dict[str, Any],
        event_time: datetime,
        *,
        publish_at: datetime | None = None,
        kind: str = "normal",
        reason: str | None = None,
        label: str | None = None,
        original: Draft | None = None,
        phase: int = 0,
    ) -> Draft:
        """Add an event; a copy (``original`` given) keeps the original's event id."""
        idx = len(self.drafts)
        eid = (
            original.event_id
            if original is not None
            else event_id_from(f"{self.run_tag}|{idx}".encode())
        )
        d = Draft(
            idx,
            publisher_id,
            event_type,
            payload,
            event_time,
            publish_at or event_time,
            eid,
            kind,
            reason,
            label,
            original,
            phase=phase,
        )
        self.drafts.append(d)
        return d

    def flag(
        self,
        cls: str,
        flag_type: str,
        kind: str,
        subject: str,
        key: str | None,
        status: str = "open",
    ) -> None:
        """Record a flag the platform must raise for case ``cls`` (see :mod:`.truth`)."""
        self.truth.append(flag_line(cls, flag_type, kind, subject, key, status))
