"""A registered project's facts and its books: the parsed agreement, pledges,
disbursements, milestone reports and verifications, and the money totals as of
any instant.  The flag rules over these books are in :mod:`.projects`; the
definitions (attribution, owed, spending, deadlines) are written down there and
in ``README.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from schemas.thresholds import Thresholds
from schemas.times import parse_time
from stream_processors.rules.model import (
    Contribution,
    Evt,
    Point,
    effective_time,
    parse_money,
    payload_str,
)

__all__ = [
    "LEVELS",
    "PARSERS",
    "PROJECT_EVENT_TYPES",
    "Books",
    "Disbursement",
    "PlannedMilestone",
    "Pledge",
    "Registration",
    "Report",
    "Verification",
]

#: Government levels of a matching agreement, in display order.
LEVELS: Final[tuple[str, ...]] = ("municipal", "state", "federal")
#: Event types that belong to a project's history (keyed by ``payload.project_id``).
PROJECT_EVENT_TYPES: Final = frozenset(
    {
        "project.registered",
        "milestone.reported",
        "milestone.verified",
        "disbursement.pledged",
        "disbursement.made",
    }
)

# --------------------------------------------------------------------------- parsed facts


@dataclass(frozen=True, slots=True)
class PlannedMilestone:
    milestone_id: str
    due: datetime
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class Registration:
    evt: Evt
    club_id: str
    federation_id: str | None
    country: str
    state: str
    municipality: str
    project_type: str
    budget: int
    currency: str
    shares: Mapping[str, int]
    parties: Mapping[str, str]
    milestones: tuple[PlannedMilestone, ...]
    agreement_signed_at: datetime
    verifiers: frozenset[str] = frozenset()  # who may verify its milestones


@dataclass(frozen=True, slots=True)
class Pledge:
    evt: Evt
    pledge_id: str
    level: str
    party_id: str
    amount: int
    currency: str
    due: datetime


@dataclass(frozen=True, slots=True)
class Disbursement:
    evt: Evt
    pledge_id: str
    level: str
    party_id: str
    amount: int
    currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Report:
    evt: Evt
    milestone_id: str
    spent: int
    currency: str
    progress: int | None
    reported_at: datetime
    at: datetime
    evidence: tuple[str, ...]

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        return (self.at, self.evt.event_time, self.evt.event_id)


@dataclass(frozen=True, slots=True)
class Verification:
    evt: Evt
    milestone_id: str
    verified_at: datetime
    at: datetime
    verifier_id: str
    outcome: str

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        return (self.at, self.evt.event_time, self.evt.event_id)


def _bps(value: object) -> int:
    if type(value) is not int or not 0 <= value <= 10000:
        raise ValueError(f"not basis points: {value!r}")
    return value


def _parse_reg(e: Evt) -> Registration:
    p = e.payload
    shares_in, parties_in, ms_in = p.get("shares"), p.get("parties"), p.get("milestones")
    if not isinstance(shares_in, Mapping) or not isinstance(parties_in, Mapping):
        raise ValueError("shares and parties must be objects")
    if not isinstance(ms_in, Sequence) or isinstance(ms_in, str):
        raise ValueError("milestones must be a list")
    budget, currency = parse_money(p.get("budget"))
    shares = {k: _bps(shares_in.get(k)) for k in ("club", *LEVELS)}
    parties = {k: payload_str(parties_in, k) for k in LEVELS}
    milestones: list[PlannedMilestone] = []
    seen: set[str] = set()
    for m in ms_in:
        if not isinstance(m, Mapping):
            raise ValueError("milestone must be an object")
        mid = payload_str(m, "milestone_id")
        if mid in seen:
            raise ValueError(f"duplicate milestone {mid}")
        seen.add(mid)
        amount, ccy = parse_money(m.get("amount"))
        milestones.append(PlannedMilestone(mid, parse_time(m.get("due")), amount, ccy))
    fed = p.get("federation_id")
    named = p.get("verifiers", [])
    if not isinstance(named, Sequence) or isinstance(named, str):
        raise ValueError("verifiers must be a list")
    return Registration(
        evt=e,
        club_id=payload_str(p, "club_id"),
        federation_id=fed if isinstance(fed, str) else None,
        country=payload_str(p, "country"),
        state=payload_str(p, "state"),
        municipality=payload_str(p, "municipality"),
        project_type=payload_str(p, "project_type"),
        budget=budget,
        currency=currency,
        shares=shares,
        parties=parties,
        milestones=tuple(milestones),
        agreement_signed_at=parse_time(p.get("agreement_signed_at")),
        verifiers=frozenset(str(v) for v in named),
    )


def _level(p: Mapping[str, Any]) -> str:
    level = payload_str(p, "party_level")
    if level not in LEVELS:
        raise ValueError(f"unknown party level {level!r}")
    return level


def _parse_pledge(e: Evt) -> Pledge:
    p = e.payload
    amount, ccy = parse_money(p.get("amount"))
    return Pledge(
        e,
        payload_str(p, "pledge_id"),
        _level(p),
        payload_str(p, "party_id"),
        amount,
        ccy,
        parse_time(p.get("due")),
    )


def _parse_disb(e: Evt) -> Disbursement:
    p = e.payload
    amount, ccy = parse_money(p.get("amount"))
    made_at = parse_time(p.get("made_at"))
    return Disbursement(
        e,
        payload_str(p, "pledge_id"),
        _level(p),
        payload_str(p, "party_id"),
        amount,
        ccy,
        effective_time(made_at, e),
    )


def _parse_report(e: Evt) -> Report:
    p = e.payload
    spent, ccy = parse_money(p.get("spent"))
    progress = p.get("progress_pct")
    evidence = p.get("evidence", [])
    if not isinstance(evidence, Sequence) or isinstance(evidence, str):
        raise ValueError("evidence must be a list")
    reported_at = parse_time(p.get("reported_at"))
    return Report(
        e,
        payload_str(p, "milestone_id"),
        spent,
        ccy,
        progress if type(progress) is int else None,
        reported_at,
        effective_time(reported_at, e),
        tuple(str(d) for d in evidence),
    )


def _parse_verif(e: Evt) -> Verification:
    p = e.payload
    outcome = payload_str(p, "outcome")
    if outcome not in ("confirmed", "disputed"):
        raise ValueError(f"unknown outcome {outcome!r}")
    verified_at = parse_time(p.get("verified_at"))
    return Verification(
        e,
        payload_str(p, "milestone_id"),
        verified_at,
        effective_time(verified_at, e),
        payload_str(p, "verifier_id"),
        outcome,
    )


PARSERS: Final[Mapping[str, Callable[[Evt], object]]] = {
    "project.registered": _parse_reg,
    "disbursement.pledged": _parse_pledge,
    "disbursement.made": _parse_disb,
    "milestone.reported": _parse_report,
    "milestone.verified": _parse_verif,
}


# --------------------------------------------------------------------------- the books


class Books:
    """Attributed facts of a registered project and their totals as of any instant."""

    def __init__(
        self,
        project_id: str,
        reg: Registration,
        pledges: list[Pledge],
        disbs: list[Disbursement],
        reports: list[Report],
        verifs: list[Verification],
        contributions: list[Contribution],
        th: Thresholds,
    ) -> None:
        self.project_id = project_id
        self.reg = reg
        self.th = th
        ccy = reg.currency
        self.unattributed: list[str] = []
        seen_pledges: set[str] = set()
        self.pledges: list[Pledge] = []
        for pl in pledges:
            foreign = pl.party_id != reg.parties[pl.level] or pl.currency != ccy
            if foreign or pl.pledge_id in seen_pledges:  # a repeated pledge id: first one counts
                self.unattributed.append(pl.evt.event_id)
            else:
                seen_pledges.add(pl.pledge_id)
                self.pledges.append(pl)
        self.disbs: list[Disbursement] = []
        for d in disbs:
            if d.party_id != reg.parties[d.level] or d.currency != ccy:
                self.unattributed.append(d.evt.event_id)
            else:
                self.disbs.append(d)
        self.reports: list[Report] = []
        for r in reports:
            if r.currency != ccy:
                self.unattributed.append(r.evt.event_id)
            else:
                self.reports.append(r)
        self.reports.sort(key=lambda r: r.order)
        self.verifs = sorted(verifs, key=lambda v: v.order)
        self.contribs = [c for c in contributions if c.currency == ccy]
        self.other_ccy = sorted(c.transfer_id for c in contributions if c.currency != ccy)

    # -- totals as of t
    def club(self, t: datetime) -> int:
        return sum(c.amount for c in self.contribs if c.received_at <= t)

    def disbursed(self, t: datetime, level: str | None = None) -> int:
        return sum(d.amount for d in self.disbs if d.at <= t and level in (None, d.level))

    def funds(self, t: datetime) -> int:
        return self.club(t) + self.disbursed(t)

    def owed(self, level: str, club: int) -> int:
        share = self.reg.shares[level]
        if share == 0:
            return 0
        cap = self.reg.budget * share // 10000
        club_share = self.reg.shares["club"]
        if club_share == 0:
            return cap
        return min(cap, club * share // club_share)

    def latest_reports(self, t: datetime) -> dict[str, Report]:
        out: dict[str, Report] = {}
        for r in self.reports:  # sorted by order, so the last one wins
            if r.at <= t:
                out[r.milestone_id] = r
        return out

    def spent(self, t: datetime) -> int:
        return sum(r.spent for r in self.latest_reports(t).values())

    def latest_verif(self, milestone_id: str, t: datetime) -> Verification | None:
        found: Verification | None = None
        for v in self.verifs:
            if v.milestone_id == milestone_id and v.at <= t:
                found = v
        return found

    def first_funds(self) -> datetime | None:
        times = [c.received_at for c in self.contribs] + [d.at for d in self.disbs]
        return min(times) if times else None

    def party_deadline(self, level: str) -> datetime | None:
        dues = [p.due for p in self.pledges if p.level == level]
        if dues:
            return max(dues)
        ms = [m.due for m in self.reg.milestones]
        return min(ms) if ms else None

    # -- timeline points
    def fund_points(self, level: str | None = None) -> list[Point]:
        pts = [Point(c.received_at, c.received_at) for c in self.contribs]
        pts += [Point(d.at, d.at) for d in self.disbs if level in (None, d.level)]
        return pts

    def contribution_evidence(self) -> list[str]:
        out: list[str] = []
        for c in sorted(self.contribs, key=lambda c: (c.received_at, c.transfer_id)):
            out.extend(c.evidence)
        return out
