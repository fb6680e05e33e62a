"""A registered project's facts and its books: the parsed agreement, pledges,
disbursements, milestone reports and verifications, and the money totals as of
any instant.  The flag rules over these books are in :mod:`.projects`; the
definitions (attribution, owed, spending, deadlines) are written down there and
in ``README.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any, Final

from schemas.money import minor_units, parse_rate
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
    "PARTIES",
    "PROJECT_EVENT_TYPES",
    "Books",
    "Cancellation",
    "Disbursement",
    "FundsReturn",
    "PlannedMilestone",
    "Pledge",
    "Registration",
    "Report",
    "Verification",
]

#: Government levels of a matching agreement, in display order.
LEVELS: Final[tuple[str, ...]] = ("municipal", "state", "federal")
#: Every party to the agreement: the club and the government levels (issue 15: the club is one).
PARTIES: Final[tuple[str, ...]] = ("club", *LEVELS)
#: Event types that belong to a project's history (keyed by ``payload.project_id``).
PROJECT_EVENT_TYPES: Final = frozenset(
    {
        "project.registered",
        "milestone.reported",
        "milestone.verified",
        "disbursement.pledged",
        "disbursement.made",
        "project.cancelled",
        "project.funds_returned",
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
    shares_due: datetime | None = None  # when every party's share is due (None: first milestone due)


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
    amount: int  # in the budget currency once converted (``Books``); as published before
    currency: str
    at: datetime
    fx_rate: Fraction | None = None


@dataclass(frozen=True, slots=True)
class Report:
    evt: Evt
    milestone_id: str
    spent: int  # as published, in ``currency``
    currency: str
    progress: int | None
    reported_at: datetime
    at: datetime
    evidence: tuple[str, ...]
    fx_rate: Fraction | None = None
    value: int | None = None  # ``spent`` in the budget currency; None when it cannot be known

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


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A ``project.cancelled``: when, and what it says the committee owes back to each party."""

    evt: Evt
    cancelled_at: datetime
    at: datetime
    lines: tuple[tuple[str, int, str], ...]  # (party, amount, currency) as published


@dataclass(frozen=True, slots=True)
class FundsReturn:
    evt: Evt
    party: str
    amount: int
    currency: str
    at: datetime


def convert(amount: int, currency: str, to: str, rate: Fraction) -> int:
    """``amount`` minor units of ``currency`` in minor units of ``to`` at ``rate`` (``to`` per unit).

    Exact (ISO 4217 exponents of both, rational arithmetic), rounded down, like
    ``owed``: a converted amount never claims a fraction of a minor unit.
    """
    unit_from: int = 10 ** minor_units(currency)
    unit_to: int = 10 ** minor_units(to)
    scaled = Fraction(amount, unit_from) * rate * unit_to
    return scaled.numerator // scaled.denominator


def _converted(amount: int, currency: str, to: str, rate: Fraction | None) -> int | None:
    """:func:`convert`, or None without a rate or for a code with no ISO 4217 minor unit."""
    if rate is None:
        return None
    try:
        return convert(amount, currency, to, rate)
    except ValueError:  # MalformedInput: not an ISO 4217 currency with a minor unit
        return None


def _optional_rate(p: Mapping[str, Any]) -> Fraction | None:
    return parse_rate(p["fx_rate"]) if "fx_rate" in p else None


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
        shares_due=parse_time(p["shares_due"]) if "shares_due" in p else None,
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
        _optional_rate(p),
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
        _optional_rate(p),
    )


def _party(p: Mapping[str, Any]) -> str:
    party = payload_str(p, "party")
    if party not in PARTIES:
        raise ValueError(f"unknown party {party!r}")
    return party


def _parse_cancel(e: Evt) -> Cancellation:
    p = e.payload
    lines = p.get("returns")
    if not isinstance(lines, Sequence) or isinstance(lines, str):
        raise ValueError("returns must be a list")
    out: list[tuple[str, int, str]] = []
    for line in lines:
        if not isinstance(line, Mapping):
            raise ValueError("a return must be an object")
        amount, ccy = parse_money(line.get("amount"))
        out.append((_party(line), amount, ccy))
    cancelled_at = parse_time(p.get("cancelled_at"))
    return Cancellation(e, cancelled_at, effective_time(cancelled_at, e), tuple(sorted(out)))


def _parse_return(e: Evt) -> FundsReturn:
    p = e.payload
    amount, ccy = parse_money(p.get("amount"))
    returned_at = parse_time(p.get("returned_at"))
    return FundsReturn(e, _party(p), amount, ccy, effective_time(returned_at, e))


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
    "project.cancelled": _parse_cancel,
    "project.funds_returned": _parse_return,
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
        cancellations: Sequence[Cancellation] = (),
        returns: Sequence[FundsReturn] = (),
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
        # Money in another currency counts converted at the rate its event states
        # (issue 15.5); without a rate it cannot be counted, and says so
        # (``fx_rate_undisclosed``) instead of vanishing from the totals.
        self.disbs: list[Disbursement] = []
        self.unconverted_disbs: list[Disbursement] = []
        for d in disbs:
            if d.party_id != reg.parties[d.level]:
                self.unattributed.append(d.evt.event_id)
            elif d.currency == ccy:
                self.disbs.append(d)
            elif (value := _converted(d.amount, d.currency, ccy, d.fx_rate)) is not None:
                self.disbs.append(replace(d, amount=value, currency=ccy))
            else:
                self.unconverted_disbs.append(d)
        self.reports: list[Report] = []
        for r in reports:
            if r.currency == ccy:
                self.reports.append(replace(r, value=r.spent))
            else:
                self.reports.append(replace(r, value=_converted(r.spent, r.currency, ccy, r.fx_rate)))
        self.reports.sort(key=lambda r: r.order)
        # A verification counts only if dated after a report of its milestone (it
        # verifies the latest report before it); one dated before every report
        # verifies nothing (issue 15.4).
        first_report: dict[str, datetime] = {}
        for r in self.reports:
            first_report.setdefault(r.milestone_id, r.at)
        self.verifs: list[Verification] = []
        self.premature: list[str] = []
        for v in sorted(verifs, key=lambda v: v.order):
            first = first_report.get(v.milestone_id)
            if first is not None and v.at > first:
                self.verifs.append(v)
            else:
                self.premature.append(v.evt.event_id)
        self.contribs = [c for c in contributions if c.currency == ccy]
        self.other_ccy = sorted(c.transfer_id for c in contributions if c.currency != ccy)
        # The first cancellation in log order stands (later ones are listed, not counted).
        ordered = sorted(cancellations, key=lambda c: _log_key(c.evt))
        self.cancellation: Cancellation | None = ordered[0] if ordered else None
        self.superseded_cancellations = [c.evt.event_id for c in ordered[1:]]
        self.returns_due: dict[str, int] = {}
        if self.cancellation is not None:
            for party, amount, line_ccy in self.cancellation.lines:
                if line_ccy == ccy:
                    self.returns_due[party] = self.returns_due.get(party, 0) + amount
                elif self.cancellation.evt.event_id not in self.unattributed:
                    self.unattributed.append(self.cancellation.evt.event_id)
        self.returns: list[FundsReturn] = []
        for fr in returns:
            if fr.currency == ccy:
                self.returns.append(fr)
            else:
                self.unattributed.append(fr.evt.event_id)

    # -- the agreement
    @property
    def cancelled_at(self) -> datetime | None:
        """Effective time of the cancellation that stands, None while the project goes on."""
        return self.cancellation.at if self.cancellation is not None else None

    def cancelled(self, t: datetime) -> bool:
        """Whether the project was cancelled by ``t`` (deadlines from then on no longer fire)."""
        c = self.cancelled_at
        return c is not None and c <= t

    def shares_deadline(self) -> datetime | None:
        """When every party's share is due: the agreement's ``shares_due``, else its first milestone due.

        Pledges never move it (issue 15.3): a pledge due later does not postpone a share.
        """
        if self.reg.shares_due is not None:
            return self.reg.shares_due
        ms = [m.due for m in self.reg.milestones]
        return min(ms) if ms else None

    def club_owed(self) -> int:
        """The club's share of the budget, rounded down (``budget * s_club // 10000``)."""
        return self.reg.budget * self.reg.shares["club"] // 10000

    # -- totals as of t
    def club(self, t: datetime) -> int:
        return sum(c.amount for c in self.contribs if c.received_at <= t)

    def disbursed(self, t: datetime, level: str | None = None) -> int:
        return sum(d.amount for d in self.disbs if d.at <= t and level in (None, d.level))

    def returned(self, t: datetime, party: str | None = None) -> int:
        return sum(r.amount for r in self.returns if r.at <= t and party in (None, r.party))

    def funds(self, t: datetime) -> int:
        """Money the project holds or held: club money and disbursements, less what it returned."""
        return self.club(t) + self.disbursed(t) - self.returned(t)

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
        """Spending in the budget currency: the latest report per milestone whose value is known."""
        return sum(r.value for r in self.latest_reports(t).values() if r.value is not None)

    def unconverted(self, t: datetime) -> dict[str, int]:
        """Latest reports per milestone that could not be converted: currency -> amount."""
        out: dict[str, int] = {}
        for r in self.latest_reports(t).values():
            if r.value is None:
                out[r.currency] = out.get(r.currency, 0) + r.spent
        return dict(sorted(out.items()))

    def latest_verif(self, milestone_id: str, t: datetime) -> Verification | None:
        found: Verification | None = None
        for v in self.verifs:
            if v.milestone_id == milestone_id and v.at <= t:
                found = v
        return found

    def verified(self, milestone_id: str, t: datetime) -> bool:
        """The latest verification by ``t`` confirms, and is dated after the latest report by ``t``."""
        latest = self.latest_reports(t).get(milestone_id)
        v = self.latest_verif(milestone_id, t)
        return latest is not None and v is not None and v.outcome == "confirmed" and v.at > latest.at

    def first_funds(self) -> datetime | None:
        times = [c.received_at for c in self.contribs] + [d.at for d in self.disbs]
        return min(times) if times else None

    def party_deadline(self, level: str) -> datetime | None:
        """Every party's share falls due on the agreement's date (:meth:`shares_deadline`)."""
        return self.shares_deadline()

    # -- timeline points
    def fund_points(self, level: str | None = None) -> list[Point]:
        pts = [Point(c.received_at, c.received_at) for c in self.contribs]
        pts += [Point(d.at, d.at) for d in self.disbs if level in (None, d.level)]
        return pts

    def stop_points(self) -> list[Point]:
        """The cancellation, where deadline rules stop (empty while the project goes on)."""
        c = self.cancelled_at
        return [] if c is None else [Point(c, c)]

    def contribution_evidence(self) -> list[str]:
        out: list[str] = []
        for c in sorted(self.contribs, key=lambda c: (c.received_at, c.transfer_id)):
            out.extend(c.evidence)
        return out


def _log_key(e: Evt) -> tuple[int, int, datetime, str]:
    # As :func:`.authority.log_order` (not imported: authority imports nothing from here,
    # and this module stays below it).
    return (0 if e.log_index is not None else 1, e.log_index or 0, e.event_time, e.event_id)
