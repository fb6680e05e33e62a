"""Reconciliation of one hometown project: who paid their share, what was spent, what was checked.

The project's agreement (``project.registered``) binds the club and three government
levels to shares of a budget; the rules compare it with contributions (club money paid
into the project fund, from the transfer rules), government disbursements and the
committee's milestone reports.  Time model, ``raised_at``/``resolved_at`` and
``next_deadline``: see ``model``.

Definitions
-----------
* Project currency: the budget's currency.  A disbursement or a reported spend in
  another currency counts converted at the rate its event states (``fx_rate``,
  rounded down); without a rate it counts nowhere and raises ``fx_rate_undisclosed``
  (a report is shown in ``state.spent_unconverted``).  A contribution or a pledge in
  another currency is left out (``state.other_currency_transfer_ids`` /
  ``state.unattributed_event_ids``).
* Attribution: a pledge or disbursement counts for a level only if its ``party_id`` is
  the agreement's party for that ``party_level``; others are listed as unattributed.
* ``club_received(t)``: sum of contributions (latest version per transfer) received by
  ``t``.  ``disbursed(t)``: sum of attributed disbursements made by ``t``.
  ``funds(t) = club_received(t) + disbursed(t) - returned(t)`` (all levels; money a
  cancelled project returned has left it).
* The club is a party (issue 15): it owes ``budget * s_club // 10000``.  Owed by a
  government level L (the matching rule), with share ``s_L`` and club share ``s_club``::

      owed_L(t) = min(budget * s_L // 10000, club_received(t) * s_L // s_club)

  Each level matches what the club actually put in, in proportion to the agreed
  shares, capped at its share of the budget; rounded down so a party is never flagged
  for a fraction of a minor unit.  With ``s_club = 0`` (no club money expected) a
  level owes its full budget share.
* Spending is cumulative *per milestone*: each ``milestone.reported`` states the total
  spent on that milestone so far and replaces the previous report of the same
  milestone (latest by effective ``reported_at``, then ``event_time``, ``event_id``).
  ``spent(t)`` is the sum over milestones of the latest report by ``t``, including
  reports for milestone ids not in the agreement (money spent is money spent).
* Share deadline (``share_unpaid``), the same for every party: the agreement's
  ``shares_due``, else its earliest milestone ``due``.  Pledges never move it.
* Verification: a ``milestone.verified`` dated (effective ``verified_at``) after a
  report of its milestone; the milestone is verified when its latest one confirms and
  is dated after its latest report.  Unverified stretches: see
  :func:`_spending_unverified`.
* Cancellation: the first ``project.cancelled`` in log order; from its effective time
  ``share_unpaid``, ``late_disbursement``, ``milestone_overdue`` and
  ``funds_without_milestone`` stop (an open one is resolved then), and each party's
  money to return is due within ``funds_return_period`` (``funds_unreturned``).

Authority (:mod:`.authority`): the agreement is the first ``project.registered`` in
log order (a later one is disregarded: ``subject_exists``); milestones are reported
by the committee that registered it; a verification counts only from a verifier the
agreement names (``verifiers``), signed by the verifier it names (``verifier_id``),
never from the registering committee; a contribution counts only for the club of the
agreement; a disbursement dated before its pledge does not count; a cancellation or a
return counts only from the registering committee, and a cancellation dated before the
registration does not count.  Each disregarded
event raises ``authority_violation`` (key: its event id, or the contribution's
``transfer.sent``; accountable: its publisher) and changes nothing else
(``state.disregarded_event_ids``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from schemas.thresholds import Thresholds
from schemas.times import format_time, parse_time
from stream_processors.rules.authority import UNATTRIBUTED, authority_flag, disregard, log_order
from stream_processors.rules.model import (
    EVIDENCE_LIMIT,
    TICK,
    Contribution,
    Evt,
    FlagSpec,
    FlagType,
    Point,
    Severity,
    Trace,
    canonical_events,
    horizon,
    trace,
)
from stream_processors.rules.project_books import (
    LEVELS,
    PARSERS,
    PARTIES,
    PROJECT_EVENT_TYPES,
    Books,
    Cancellation,
    Disbursement,
    FundsReturn,
    PlannedMilestone,
    Pledge,
    Registration,
    Report,
    Verification,
)

__all__ = [
    "LEVELS",
    "PROJECT_EVENT_TYPES",
    "MilestoneRow",
    "PartyRow",
    "ProjectResult",
    "ProjectState",
    "reconcile_project",
]

PartyStatus = Literal["not_participating", "pending", "up_to_date", "paid_in_full", "unpaid"]
MilestoneStatus = Literal["planned", "overdue", "reported", "verified", "disputed"]


@dataclass(frozen=True, slots=True)
class PartyRow:
    """One party: a government level (its share, what it owes under the matching rule, what it
    paid) or, last, the club (``level`` ``club``: its share of the budget and its contributions)."""

    level: str
    party_id: str
    share_bps: int
    owed: int
    owed_cap: int
    pledged: int
    disbursed: int
    earliest_due: datetime | None
    latest_due: datetime | None
    deadline: datetime | None
    status: PartyStatus


@dataclass(frozen=True, slots=True)
class MilestoneRow:
    """One milestone: plan (``planned`` False for ids only seen in reports) vs reports and checks."""

    milestone_id: str
    planned: bool
    due: datetime | None
    amount: int | None
    reported_at: datetime | None
    last_reported_at: datetime | None
    spent: int
    progress_pct: int | None
    evidence: tuple[str, ...]
    verified_at: datetime | None
    outcome: str | None
    verifier_id: str | None
    status: MilestoneStatus


@dataclass(frozen=True, slots=True)
class ProjectState:
    """The agreement and the money totals at the horizon (no person data)."""

    project_id: str
    status: Literal["unregistered", "registered"]
    club_id: str | None = None
    federation_id: str | None = None
    country: str | None = None
    state: str | None = None
    municipality: str | None = None
    project_type: str | None = None
    currency: str | None = None
    budget: int | None = None
    shares: Mapping[str, int] | None = None
    parties: Mapping[str, str] | None = None
    agreement_signed_at: datetime | None = None
    registered_event_id: str | None = None
    registered_log_index: int | None = None
    registration_count: int = 0
    club_received: int = 0
    disbursed: int = 0
    spent: int = 0
    funds_received: int = 0
    first_funds_at: datetime | None = None
    contribution_count: int = 0
    event_count: int = 0
    ignored_event_ids: tuple[str, ...] = ()
    unattributed_event_ids: tuple[str, ...] = ()
    other_currency_transfer_ids: tuple[str, ...] = ()
    disregarded_event_ids: tuple[str, ...] = ()
    # issue 15: the club as a party, spending in other currencies, cancellations
    club_owed: int = 0  # budget * s_club // 10000
    shares_due: datetime | None = None  # every party's deadline (agreement, else first milestone due)
    spent_unconverted: Mapping[str, int] | None = None  # currency -> latest reports with no rate
    cancelled_at: datetime | None = None
    cancellation_event_id: str | None = None
    returns_due: Mapping[str, int] | None = None  # party -> amount the cancellation says is owed back
    funds_returned: int = 0
    superseded_cancellation_ids: tuple[str, ...] = ()
    premature_verification_ids: tuple[str, ...] = ()  # dated before any report of their milestone
    unconverted_event_ids: tuple[str, ...] = ()  # in another currency with no fx_rate (fx_rate_undisclosed)


@dataclass(frozen=True, slots=True)
class ProjectResult:
    """What the rules conclude about one project at one instant of the event-time clock."""

    state: ProjectState
    parties: tuple[PartyRow, ...]
    milestones: tuple[MilestoneRow, ...]
    flags: list[FlagSpec]
    next_deadline: datetime | None


def _deadline(d: datetime) -> Point:
    return Point(d + TICK, d)


def _ev(*groups: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for g in groups:
        for i in g:
            if i not in seen:
                seen.add(i)
                out.append(i)
    return tuple(out[:EVIDENCE_LIMIT])


def _flag(
    books: Books,
    flag_type: FlagType,
    key: str,
    accountable: str,
    severity: Severity,
    tr: Trace[Any],
    amount: int | None,
    evidence: tuple[str, ...],
    detail: dict[str, Any],
    currency: str | None = None,
) -> FlagSpec:
    detail = dict(detail)
    detail["episodes"] = tr.episodes
    stake = amount if amount is not None and amount > 0 else None
    return FlagSpec(
        flag_type=flag_type,
        key=key,
        subject_kind="project",
        subject_id=books.project_id,
        accountable=accountable,
        severity=severity,
        amount_at_stake=stake,
        currency=(currency or books.reg.currency) if stake is not None else None,
        evidence=evidence,
        raised_at=tr.raised_at,
        resolved_at=tr.resolved_at,
        detail=detail,
    )


_Out = tuple[list[FlagSpec], list[datetime]]


def _stopped(books: Books, tr: Trace[Any], detail: dict[str, Any]) -> dict[str, Any]:
    """Say so in ``detail`` when the cancellation is what resolved a flag."""
    if tr.resolved_at is not None and tr.resolved_at == books.cancelled_at:
        detail["resolved_by"] = "project.cancelled"
    return detail


def _share_condition(
    books: Books, party: str, due: datetime
) -> Callable[[datetime], tuple[bool, tuple[int, int, int]]]:
    """C(t) of ``share_unpaid`` for one party: ``(held, (owed, paid, club_received))``."""
    tol = books.th.disbursement_tolerance_bps

    def cond(t: datetime) -> tuple[bool, tuple[int, int, int]]:
        club = books.club(t)
        if party == "club":
            # The club's own share is fixed by the budget: it is what the others match.
            owed, paid = books.club_owed(), club
        else:
            owed, paid = books.owed(party, club), books.disbursed(t, party)
        late = t > due and not books.cancelled(t)
        return late and paid * 10000 < owed * (10000 - tol), (owed, paid, club)

    return cond


def _share_unpaid(books: Books, limit: datetime) -> _Out:
    """Every party (the club too) against its share by the agreement's deadline (issue 15.3)."""
    flags: list[FlagSpec] = []
    nexts: list[datetime] = []
    tol = books.th.disbursement_tolerance_bps
    due = books.shares_deadline()
    if due is None:
        return flags, nexts
    stops = books.stop_points()
    for party in PARTIES:
        if books.reg.shares[party] == 0:
            continue
        cond = _share_condition(books, party, due)
        if party == "club":
            pts = [_deadline(due), *(Point(c.received_at, c.received_at) for c in books.contribs)]
            accountable = books.reg.club_id
            evidence = _ev([books.reg.evt.event_id], books.contribution_evidence())
        else:
            pts = [_deadline(due), *books.fund_points(party)]
            accountable = books.reg.parties[party]
            evidence = _ev(
                [books.reg.evt.event_id],
                [p.evt.event_id for p in books.pledges if p.level == party],
                [d.evt.event_id for d in books.disbs if d.level == party],
                books.contribution_evidence(),
            )
        tr, nxt = trace([*pts, *stops], cond, limit)
        if nxt is not None:
            nexts.append(nxt)
        if tr is None:
            continue
        owed, paid, club = tr.info
        detail: dict[str, Any] = {
            "level": party,
            "share_bps": books.reg.shares[party],
            "owed": owed,
            "disbursed" if party != "club" else "contributed": paid,
            "club_received": club,
            "deadline": format_time(due, full_fraction=True),
            "deadline_source": "shares_due" if books.reg.shares_due is not None else "first_milestone_due",
            "tolerance_bps": tol,
        }
        flags.append(
            _flag(books, "share_unpaid", party, accountable, "high", tr, owed - paid, evidence,
                  _stopped(books, tr, detail))
        )
    return flags, nexts


def _late_disbursement(books: Books, limit: datetime) -> _Out:
    flags: list[FlagSpec] = []
    nexts: list[datetime] = []
    tol = books.th.disbursement_tolerance_bps
    for pl in books.pledges:
        mine = [d for d in books.disbs if d.pledge_id == pl.pledge_id and d.level == pl.level]

        def cond(
            t: datetime, pl: Pledge = pl, mine: list[Disbursement] = mine
        ) -> tuple[bool, tuple[int, int]]:
            paid = sum(d.amount for d in mine if d.at <= t)
            late = t > pl.due and not books.cancelled(t)
            return late and paid * 10000 < pl.amount * (10000 - tol), (pl.amount, paid)

        pts = [_deadline(pl.due), *(Point(d.at, d.at) for d in mine), *books.stop_points()]
        tr, nxt = trace(pts, cond, limit)
        if nxt is not None:
            nexts.append(nxt)
        if tr is None:
            continue
        amount, paid = tr.info
        flags.append(
            _flag(
                books,
                "late_disbursement",
                pl.pledge_id,
                pl.party_id,
                "medium",
                tr,
                amount - paid,
                _ev([books.reg.evt.event_id, pl.evt.event_id], [d.evt.event_id for d in mine]),
                _stopped(books, tr, {
                    "level": pl.level,
                    "pledged": amount,
                    "disbursed_by_then": paid,
                    "due": format_time(pl.due, full_fraction=True),
                    "tolerance_bps": tol,
                }),
            )
        )
    return flags, nexts


def _milestone_overdue(books: Books, limit: datetime) -> _Out:
    flags: list[FlagSpec] = []
    nexts: list[datetime] = []
    for m in books.reg.milestones:
        reps = [r for r in books.reports if r.milestone_id == m.milestone_id]

        def cond(t: datetime, m: PlannedMilestone = m, reps: list[Report] = reps) -> tuple[bool, int]:
            late = t > m.due and not books.cancelled(t)
            return late and not any(r.at <= t for r in reps), m.amount

        pts = [_deadline(m.due), *(Point(r.at, r.at) for r in reps), *books.stop_points()]
        tr, nxt = trace(pts, cond, limit)
        if nxt is not None:
            nexts.append(nxt)
        if tr is None:
            continue
        evidence = [books.reg.evt.event_id]
        if tr.resolved_at is not None and reps:
            evidence.append(reps[0].evt.event_id)
        flags.append(
            _flag(
                books,
                "milestone_overdue",
                m.milestone_id,
                books.reg.club_id,
                "medium",
                tr,
                m.amount,
                _ev(evidence),
                _stopped(books, tr, {"milestone_id": m.milestone_id,
                                     "due": format_time(m.due, full_fraction=True)}),
            )
        )
    return flags, nexts


def _spending_above_funds(books: Books, limit: datetime) -> _Out:
    def cond(t: datetime) -> tuple[bool, tuple[int, int]]:
        spent, funds = books.spent(t), books.funds(t)
        return spent > funds, (spent, funds)

    pts = [Point(r.at, r.at) for r in books.reports] + books.fund_points()
    pts += [Point(r.at, r.at) for r in books.returns]
    tr, nxt = trace(pts, cond, limit)
    if tr is None:
        return [], [nxt] if nxt is not None else []
    spent, funds = tr.info
    flag = _flag(
        books,
        "spending_above_funds",
        "",
        books.reg.club_id,
        "high",
        tr,
        spent - funds,
        _ev(
            [books.reg.evt.event_id],
            [r.evt.event_id for r in books.reports],
            [d.evt.event_id for d in books.disbs],
            books.contribution_evidence(),
            [r.evt.event_id for r in books.returns],
        ),
        {"spent": spent, "funds_received": funds},
    )
    return [flag], [nxt] if nxt is not None else []


def _funds_without_milestone(books: Books, limit: datetime) -> _Out:
    first = books.first_funds()
    if first is None:
        return [], []
    deadline = first + books.th.no_milestone_period

    def cond(t: datetime) -> tuple[bool, int]:
        late = t > deadline and not books.cancelled(t)
        return late and not any(r.at <= t for r in books.reports), books.funds(t)

    pts = [_deadline(deadline), *(Point(r.at, r.at) for r in books.reports)]
    pts += books.fund_points() + books.stop_points() + [Point(r.at, r.at) for r in books.returns]
    tr, nxt = trace(pts, cond, limit)
    if tr is None:
        return [], [nxt] if nxt is not None else []
    first_ids = [d.evt.event_id for d in books.disbs if d.at == first] + [
        i for c in books.contribs if c.received_at == first for i in c.evidence
    ]
    resolving = [books.reports[0].evt.event_id] if tr.resolved_at and books.reports else []
    flag = _flag(
        books,
        "funds_without_milestone",
        "",
        books.reg.club_id,
        "medium",
        tr,
        tr.info,
        _ev([books.reg.evt.event_id], sorted(first_ids), resolving),
        _stopped(books, tr, {
            "first_funds_at": format_time(first, full_fraction=True),
            "period_days": books.th.no_milestone_period.days,
            "funds_received": tr.info,
        }),
    )
    return [flag], [nxt] if nxt is not None else []


def _stretches(books: Books, mid: str) -> list[Report]:
    """The reports that start an unverified stretch of a milestone, in time order.

    The first report starts one; so does every report made while the milestone
    stood verified (spending reported after the last verification needs its own,
    issue 15.4).  Reports made while it was already unverified join the stretch
    under way: a new report never postpones an unverified one.
    """
    reps = [r for r in books.reports if r.milestone_id == mid]
    instants = sorted({r.at for r in reps} | {v.at for v in books.verifs if v.milestone_id == mid})
    out: list[Report] = []
    was_verified = False
    for at in instants:
        here = [r for r in reps if r.at == at]
        if here and (not out or was_verified):
            out.append(here[0])
        was_verified = books.verified(mid, at)
    return out


def _spending_unverified(books: Books, limit: datetime) -> _Out:
    """Per unverified stretch of a milestone: no confirmation dated after its latest report in time.

    Stretch ``k`` (started by report ``S_k``, see :func:`_stretches`) is flagged
    while ``t > S_k + unverified_period``, the milestone is not verified at ``t``
    (its latest verification confirms and is dated after its latest report,
    :meth:`Books.verified`) and no later stretch has started.  The first stretch
    is keyed by the milestone id, a later one by ``milestone_id/report event id``,
    so a stretch that opens after a verification is a flag of its own, and no
    flag ever re-opens because the clock moved.
    """
    flags: list[FlagSpec] = []
    nexts: list[datetime] = []
    period = books.th.unverified_period
    ids = sorted({r.milestone_id for r in books.reports})
    for mid in ids:
        reps = [r for r in books.reports if r.milestone_id == mid]
        vers = [v for v in books.verifs if v.milestone_id == mid]
        starts = _stretches(books, mid)
        for k, first in enumerate(starts):
            end = starts[k + 1].at if k + 1 < len(starts) else None

            def cond(
                t: datetime, mid: str = mid, first: Report = first, end: datetime | None = end
            ) -> tuple[bool, Any]:
                if end is not None and t >= end:
                    return False, None
                if not t > first.at + period or books.verified(mid, t):
                    return False, None
                latest = books.latest_reports(t)[mid]
                last = books.latest_verif(mid, t)
                if last is None:
                    outcome = "none"
                elif last.outcome == "disputed":
                    outcome = "disputed"
                else:
                    outcome = "before_report"  # confirmed an earlier report, not the latest one
                return True, (latest, outcome)

            pts = [_deadline(first.at + period)]
            pts += [Point(v.at, v.at) for v in vers] + [Point(r.at, r.at) for r in reps]
            tr, nxt = trace(pts, cond, limit)
            if nxt is not None:
                nexts.append(nxt)
            if tr is None:
                continue
            latest, outcome = tr.info
            detail: dict[str, Any] = {
                "milestone_id": mid,
                "reported_at": format_time(latest.at, full_fraction=True),
                "unverified_since": format_time(first.at, full_fraction=True),
                "period_days": period.days,
                "verification": outcome,
            }
            if outcome == "disputed":
                detail["note"] = "the verifier disputed the report; open until a confirmation"
            flags.append(
                _flag(
                    books,
                    "spending_unverified",
                    mid if k == 0 else f"{mid}/{first.evt.event_id}",
                    books.reg.club_id,
                    "low",
                    tr,
                    latest.value,
                    _ev(
                        [books.reg.evt.event_id],
                        [r.evt.event_id for r in reps],
                        [v.evt.event_id for v in vers],
                    ),
                    detail,
                )
            )
    return flags, nexts


def _fx_rate_undisclosed(books: Books, limit: datetime) -> _Out:
    """Money in another currency whose event states no rate: counted nowhere, shown as it is.

    Key: the event id.  A report's committee answers (the club), a
    disbursement's party.  Never resolved by events: that event stated no rate.
    """
    flags: list[FlagSpec] = []
    for r in books.reports:
        if r.value is not None or r.at > limit:
            continue
        flags.append(
            _flag(
                books, "fx_rate_undisclosed", r.evt.event_id, books.reg.club_id, "medium",
                Trace(r.at, None, None, 1), r.spent, _ev([books.reg.evt.event_id, r.evt.event_id]),
                {"event_type": "milestone.reported", "milestone_id": r.milestone_id,
                 "currency": r.currency, "budget_currency": books.reg.currency,
                 "fx_rate": str(r.evt.payload.get("fx_rate", "undisclosed"))},
                currency=r.currency,
            )
        )
    for d in books.unconverted_disbs:
        if d.at > limit:
            continue
        flags.append(
            _flag(
                books, "fx_rate_undisclosed", d.evt.event_id, d.party_id, "medium",
                Trace(d.at, None, None, 1), d.amount, _ev([books.reg.evt.event_id, d.evt.event_id]),
                {"event_type": "disbursement.made", "level": d.level, "currency": d.currency,
                 "budget_currency": books.reg.currency,
                 "fx_rate": str(d.evt.payload.get("fx_rate", "undisclosed"))},
                currency=d.currency,
            )
        )
    return flags, []


def _funds_unreturned(books: Books, limit: datetime) -> _Out:
    """After a cancellation, each party's money not returned within ``funds_return_period``."""
    c = books.cancellation
    if c is None:
        return [], []
    flags: list[FlagSpec] = []
    nexts: list[datetime] = []
    tol = books.th.disbursement_tolerance_bps
    deadline = c.at + books.th.funds_return_period
    for party in PARTIES:
        due = books.returns_due.get(party, 0)
        if due <= 0:
            continue
        mine = [r for r in books.returns if r.party == party]

        def cond(t: datetime, party: str = party, due: int = due) -> tuple[bool, tuple[int, int]]:
            back = books.returned(t, party)
            return t > deadline and back * 10000 < due * (10000 - tol), (due, back)

        tr, nxt = trace([_deadline(deadline), *(Point(r.at, r.at) for r in mine)], cond, limit)
        if nxt is not None:
            nexts.append(nxt)
        if tr is None:
            continue
        owed, back = tr.info
        flags.append(
            _flag(
                books, "funds_unreturned", party, books.reg.club_id, "high", tr, owed - back,
                _ev([books.reg.evt.event_id, c.evt.event_id], [r.evt.event_id for r in mine]),
                {
                    "party": party,
                    "due": owed,
                    "returned": back,
                    "cancelled_at": format_time(c.at, full_fraction=True),
                    "deadline": format_time(deadline, full_fraction=True),
                    "period_days": books.th.funds_return_period.days,
                    "tolerance_bps": tol,
                },
            )
        )
    return flags, nexts


_RULES: Final[tuple[Callable[[Books, datetime], _Out], ...]] = (
    _share_unpaid,
    _late_disbursement,
    _milestone_overdue,
    _spending_above_funds,
    _funds_without_milestone,
    _spending_unverified,
    _fx_rate_undisclosed,
    _funds_unreturned,
)


# --------------------------------------------------------------------------- entry point


def _dedupe_contributions(
    project_id: str, contributions: Sequence[Contribution]
) -> list[Contribution]:
    best: dict[str, Contribution] = {}
    for c in contributions:
        if c.project_id != project_id:
            continue
        old = best.get(c.transfer_id)
        if old is None or _contrib_key(c) > _contrib_key(old):
            best[c.transfer_id] = c
    return sorted(best.values(), key=lambda c: (c.received_at, c.transfer_id))


def _contrib_key(c: Contribution) -> tuple[int, int, datetime, str, str, tuple[str, ...]]:
    return (c.version, c.amount, c.received_at, c.currency, c.club_id, c.evidence)


def reconcile_project(
    project_id: str,
    events: Sequence[Evt],
    contributions: Sequence[Contribution],
    now: datetime | None,
    th: Thresholds,
) -> ProjectResult:
    """Reconcile one project's events and contributions (any order, duplicates) at ``now``.

    ``contributions`` come from ``reconcile_transfer`` for project-fund transfers; per
    ``transfer_id`` the highest ``version`` wins.  Until ``project.registered`` is known
    the project is ``unregistered`` and raises nothing.  Pure: no I/O, no wall clock.
    """
    evs = canonical_events(
        events,
        lambda e: e.event_type in PROJECT_EVENT_TYPES and e.payload.get("project_id") == project_id,
    )
    contribs = _dedupe_contributions(project_id, contributions)
    parsed: dict[str, list[Any]] = {t: [] for t in PROJECT_EVENT_TYPES}
    ignored: list[str] = []
    for e in evs:
        try:
            parsed[e.event_type].append(PARSERS[e.event_type](e))
        except (ValueError, TypeError, KeyError, ArithmeticError):
            ignored.append(e.event_id)
    regs: list[Registration] = parsed["project.registered"]
    if not regs:
        state = ProjectState(
            project_id=project_id,
            status="unregistered",
            contribution_count=len(contribs),
            event_count=len(evs),
            ignored_event_ids=tuple(ignored),
        )
        return ProjectResult(state, (), (), [], None)
    reg, aflags, kept = _authority(project_id, regs, parsed, contribs)
    limit = horizon(evs, now, *(c.received_at for c in contribs))
    assert limit is not None  # there is at least the registration event
    contribs = kept.contributions
    books = Books(
        project_id,
        reg,
        parsed["disbursement.pledged"],
        kept.disbursements,
        kept.reports,
        kept.verifications,
        contribs,
        th,
        kept.cancellations,
        kept.returns,
    )
    flags: list[FlagSpec] = list(aflags)
    nexts: list[datetime] = []
    for rule in _RULES:
        f, n = rule(books, limit)
        flags.extend(f)
        nexts.extend(n)
    flags.sort(key=lambda f: (f.raised_at, f.flag_type, f.key))
    club, disbursed = books.club(limit), books.disbursed(limit)
    state = ProjectState(
        project_id=project_id,
        status="registered",
        club_id=reg.club_id,
        federation_id=reg.federation_id,
        country=reg.country,
        state=reg.state,
        municipality=reg.municipality,
        project_type=reg.project_type,
        currency=reg.currency,
        budget=reg.budget,
        shares=dict(reg.shares),
        parties=dict(reg.parties),
        agreement_signed_at=reg.agreement_signed_at,
        registered_event_id=reg.evt.event_id,
        registered_log_index=reg.evt.log_index,
        registration_count=len(regs),
        club_received=club,
        disbursed=disbursed,
        spent=books.spent(limit),
        funds_received=books.funds(limit),
        first_funds_at=books.first_funds(),
        club_owed=books.club_owed(),
        shares_due=books.shares_deadline(),
        spent_unconverted=books.unconverted(limit),
        cancelled_at=books.cancelled_at,
        cancellation_event_id=books.cancellation.evt.event_id if books.cancellation else None,
        returns_due=dict(books.returns_due),
        funds_returned=books.returned(limit),
        superseded_cancellation_ids=tuple(books.superseded_cancellations),
        premature_verification_ids=tuple(books.premature),
        unconverted_event_ids=tuple(
            sorted([r.evt.event_id for r in books.reports if r.value is None]
                   + [d.evt.event_id for d in books.unconverted_disbs])
        ),
        contribution_count=len(contribs),
        event_count=len(evs),
        ignored_event_ids=tuple(ignored),
        unattributed_event_ids=tuple(sorted(books.unattributed)),
        other_currency_transfer_ids=tuple(books.other_ccy),
        disregarded_event_ids=tuple(sorted(f.key for f in aflags)),
    )
    return ProjectResult(
        state,
        _party_rows(books, limit, flags),
        _milestone_rows(books, limit),
        flags,
        min(nexts) if nexts else None,
    )


@dataclass(frozen=True, slots=True)
class _Kept:
    """The project's facts that count, once the ones their publisher could not say are set aside."""

    reports: list[Report]
    verifications: list[Verification]
    disbursements: list[Disbursement]
    contributions: list[Contribution]
    cancellations: list[Cancellation]
    returns: list[FundsReturn]


def _authority(
    project_id: str,
    regs: list[Registration],
    parsed: Mapping[str, list[Any]],
    contribs: list[Contribution],
) -> tuple[Registration, list[FlagSpec], _Kept]:
    """The agreement that stands, its owner's facts, and a flag for every fact set aside."""
    flags: list[FlagSpec] = []
    ordered = sorted(regs, key=lambda r: log_order(r.evt))
    reg = ordered[0]
    for other in ordered[1:]:
        flags.append(disregard("project", project_id, other.evt, "subject_exists", "/payload/project_id"))
    owner = reg.evt.publisher_id

    def set_aside(e: Evt, reason: str, path: str) -> bool:
        flags.append(disregard("project", project_id, e, reason, path))
        return False

    def report_ok(r: Report) -> bool:
        pub = r.evt.publisher_id
        if owner is not None and pub is not None and pub != owner:
            return set_aside(r.evt, "not_subject_owner", "/header/publisher_id")
        return True

    def verification_ok(v: Verification) -> bool:
        # Who verified: the publisher (when known) must be the verifier it names.
        pub = v.evt.publisher_id
        if pub is not None and v.verifier_id != pub:
            return set_aside(v.evt, "not_subject_owner", "/payload/verifier_id")
        who = pub or v.verifier_id
        if who == owner:
            return set_aside(v.evt, "not_subject_owner", "/header/publisher_id")
        if who not in reg.verifiers:
            return set_aside(v.evt, "not_subject_owner", "/header/publisher_id")
        return True

    pledged: dict[tuple[str, str], Pledge] = {}
    for pl in parsed["disbursement.pledged"]:  # canonical order: the first of an id stands
        pledged.setdefault((pl.pledge_id, pl.level), pl)

    def disbursement_ok(d: Disbursement) -> bool:
        pl = pledged.get((d.pledge_id, d.level))
        if pl is None:
            return True
        origin = pl.evt.event_time
        made_at = parse_time(d.evt.payload.get("made_at"))
        for path, t in (("/payload/made_at", made_at), ("/header/event_time", d.evt.event_time)):
            if t < origin:
                return set_aside(d.evt, "time_before_origin", path)
        return True

    def owner_only(e: Evt) -> bool:
        # A cancellation and its returns are the registering committee's word (issue 15.6).
        pub = e.publisher_id
        if owner is not None and pub is not None and pub != owner:
            return set_aside(e, "not_subject_owner", "/header/publisher_id")
        return True

    def cancellation_ok(c: Cancellation) -> bool:
        if not owner_only(c.evt):
            return False
        origin = reg.evt.event_time
        for path, t in (("/payload/cancelled_at", c.cancelled_at), ("/header/event_time", c.evt.event_time)):
            if t < origin:
                return set_aside(c.evt, "time_before_origin", path)
        return True

    kept_contribs: list[Contribution] = []
    for c in contribs:
        if c.club_id != reg.club_id:
            sent_id = c.evidence[0] if c.evidence else c.transfer_id
            flags.append(authority_flag("project", project_id, sent_id, c.operator or UNATTRIBUTED,
                                        "not_subject_owner", "/payload/destination/club_id", c.received_at))
        else:
            kept_contribs.append(c)
    kept = _Kept(
        reports=[r for r in parsed["milestone.reported"] if report_ok(r)],
        verifications=[v for v in parsed["milestone.verified"] if verification_ok(v)],
        disbursements=[d for d in parsed["disbursement.made"] if disbursement_ok(d)],
        contributions=kept_contribs,
        cancellations=[c for c in parsed["project.cancelled"] if cancellation_ok(c)],
        returns=[r for r in parsed["project.funds_returned"] if owner_only(r.evt)],
    )
    return reg, flags, kept


def _party_rows(books: Books, limit: datetime, flags: list[FlagSpec]) -> tuple[PartyRow, ...]:
    open_levels = {f.key for f in flags if f.flag_type == "share_unpaid" and f.is_open}
    tol = books.th.disbursement_tolerance_bps
    rows: list[PartyRow] = []
    for level in LEVELS:
        share = books.reg.shares[level]
        cap = books.reg.budget * share // 10000
        owed = books.owed(level, books.club(limit))
        paid = books.disbursed(limit, level)
        dues = [p.due for p in books.pledges if p.level == level]
        status: PartyStatus
        if share == 0:
            status = "not_participating"
        elif level in open_levels:
            status = "unpaid"
        elif paid >= cap:
            status = "paid_in_full"
        elif paid * 10000 >= owed * (10000 - tol):
            status = "up_to_date"
        else:
            status = "pending"
        rows.append(
            PartyRow(
                level=level,
                party_id=books.reg.parties[level],
                share_bps=share,
                owed=owed,
                owed_cap=cap,
                pledged=sum(p.amount for p in books.pledges if p.level == level),
                disbursed=paid,
                earliest_due=min(dues) if dues else None,
                latest_due=max(dues) if dues else None,
                deadline=books.party_deadline(level) if share > 0 else None,
                status=status,
            )
        )
    # The club is a party too (issue 15.3): last, so the government levels keep their places.
    share = books.reg.shares["club"]
    owed_club, paid_club = books.club_owed(), books.club(limit)
    club_status: PartyStatus
    if share == 0:
        club_status = "not_participating"
    elif "club" in open_levels:
        club_status = "unpaid"
    elif paid_club >= owed_club:
        club_status = "paid_in_full"
    else:
        club_status = "pending"
    rows.append(
        PartyRow(
            level="club",
            party_id=books.reg.club_id,
            share_bps=share,
            owed=owed_club,
            owed_cap=owed_club,
            pledged=0,
            disbursed=paid_club,
            earliest_due=None,
            latest_due=None,
            deadline=books.shares_deadline() if share > 0 else None,
            status=club_status,
        )
    )
    return tuple(rows)


def _milestone_rows(books: Books, limit: datetime) -> tuple[MilestoneRow, ...]:
    planned = {m.milestone_id: m for m in books.reg.milestones}
    order = [m.milestone_id for m in books.reg.milestones]
    order += sorted({r.milestone_id for r in books.reports} - set(planned))
    latest = books.latest_reports(limit)
    rows: list[MilestoneRow] = []
    for mid in order:
        m = planned.get(mid)
        reps = [r for r in books.reports if r.milestone_id == mid]
        last = latest.get(mid)
        ver = books.latest_verif(mid, limit)
        digests: list[str] = []
        for r in reps:
            digests.extend(d for d in r.evidence if d not in digests)
        status: MilestoneStatus
        if books.verified(mid, limit):
            status = "verified"
        elif ver is not None and ver.outcome == "disputed":
            status = "disputed"
        elif reps:
            status = "reported"
        elif m is not None and limit > m.due:
            status = "overdue"
        else:
            status = "planned"
        rows.append(
            MilestoneRow(
                milestone_id=mid,
                planned=m is not None,
                due=m.due if m else None,
                amount=m.amount if m else None,
                reported_at=reps[0].reported_at if reps else None,
                last_reported_at=last.reported_at if last else None,
                spent=last.value or 0 if last else 0,
                progress_pct=last.progress if last else None,
                evidence=tuple(digests),
                verified_at=ver.verified_at if ver else None,
                outcome=ver.outcome if ver else None,
                verifier_id=ver.verifier_id if ver else None,
                status=status,
            )
        )
    return tuple(rows)
