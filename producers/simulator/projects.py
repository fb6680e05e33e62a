"""3x1 hometown projects: registration, club contributions, pledges, disbursements, milestones.

A club committee registers a project; club members' contributions are
transfers to the project fund; the municipal, state and federal governments
pledge and disburse their shares (infrastructure 25 % club / 25 % federal /
50 % municipal+state, productive 50 % club / 50 % federal); the committee
reports milestones with evidence digests and the hometown mirror club
verifies them.  A labelled project is the case its label names, and writes
its own truth lines.

Every agreement states when the parties' shares are due (``shares_due``).
Three ways a project's money moves (issue 15):

* ``long`` (most projects): the shares are due after the window (the date the
  federal second tranche falls due); the federal government pays that tranche
  early, in the quiet tail (its deadline-free event there).
* ``early``: the shares fall due in the window; the club pays at least its
  share (exactly, for ``club_exact_share``) and every government its whole
  share before the date; the tail event is the committee restating its latest
  report (a progress report whose verification is due after the window).
* ``cancel``: the committee cancels the project in the window and states what
  goes back to each party; the tail event is the mirror club's final
  confirmation of the latest report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from producers.simulator.drafts import Draft, Run
from producers.simulator.market import Person, mid_rate, money
from producers.simulator.transfers import pay_clean, transfer
from producers.simulator.truth import no_flag_line
from producers.simulator.world import (
    DAY,
    FEDERAL,
    HOUR,
    INFRA_TYPES,
    MINUTE,
    PROJECT_TYPES,
    Club,
    b32,
    hash_parts,
)
from schemas.thresholds import DEFAULT_THRESHOLDS
from schemas.times import format_time

__all__ = ["CANCEL_LABELS", "EARLY_LABELS", "project", "verify"]


#: Days a case needs between the registration and the cutoff (its deadlines must fall before).
_ROOM: Final[Mapping[str | None, int]] = {
    None: 8,
    "share_unpaid": 30,
    "late_disbursement": 60,
    "milestone_overdue": 25,
    "spending_above_funds": 10,
    "spending_unverified": 68,
    "funds_without_milestone": 126,
    "self_verification": 10,
    # issue 15
    "club_share_unpaid": 30,
    "postponed_pledge": 30,
    "club_exact_share": 30,
    "verified_before_report": 68,
    # room for the first club money (up to ~5 days after the registration) before the
    # report that must fall _LATE_ENOUGH days before the cutoff (regression: the demo's
    # window made that report impossible for some start times)
    "unverified_new_spending": 81,
    "verified_right_after_report": 10,
    "fx_rate_undisclosed": 10,
    "fx_rate_disclosed": 10,
    "foreign_currency_overspend": 10,
    "funds_unreturned": 72,
    "cancelled_full_return": 72,
}

#: The truth class of a case: the flag it is about (discrepancy classes are named after
#: their flag; several cases test one flag).
_CLASS: Final[Mapping[str, str]] = {
    "club_share_unpaid": "share_unpaid",
    "postponed_pledge": "share_unpaid",
    "verified_before_report": "spending_unverified",
    "unverified_new_spending": "spending_unverified",
    "foreign_currency_overspend": "spending_above_funds",
}

#: Cases whose shares fall due in the window (the agreement's ``shares_due``).
EARLY_LABELS: Final = frozenset(
    {"share_unpaid", "late_disbursement", "club_share_unpaid", "postponed_pledge", "club_exact_share"}
)
#: Cases whose project is cancelled in the window.
CANCEL_LABELS: Final = frozenset({"funds_unreturned", "cancelled_full_return"})
#: Look-alikes of the cases: projects that must raise no flag at all.
_CLEAN_CASES: Final = frozenset(
    {"club_exact_share", "verified_right_after_report", "cancelled_full_return", "fx_rate_disclosed"}
)
#: Cases that need a report before the tail (early and cancelled projects restate or
#: confirm one there; the others' case is about a report).
_NEED_REPORT: Final = EARLY_LABELS | CANCEL_LABELS | {
    "spending_above_funds",
    "spending_unverified",
    "self_verification",
    "verified_before_report",
    "unverified_new_spending",
    "verified_right_after_report",
    "fx_rate_undisclosed",
    "fx_rate_disclosed",
    "foreign_currency_overspend",
}
#: A report whose verification must fall due in the window (its case is about it).
_LATE_ENOUGH: Final[Mapping[str, int]] = {
    "spending_unverified": 62,
    "verified_before_report": 62,
    "unverified_new_spending": 74,
}


@dataclass(slots=True, eq=False)
class _Project:
    """One project while it is drafted: its plan, then the money and reports that follow."""

    run: Run
    label: str | None
    registered_at: datetime
    club: Club
    ptype: str
    shares: dict[str, int]
    budget: int
    families: int
    pid: str
    parties: dict[str, str]
    dues: list[datetime]
    never: set[int]  # milestones never reported
    amounts: list[int]
    mids: list[str]
    funds: list[tuple[datetime, int]] = field(default_factory=list)  # (available from, amount)
    registration: Draft | None = None
    tranche_b: int = 0
    b_pledge: str = ""
    reports: list[tuple[int, datetime, int, Draft]] = field(default_factory=list)
    spent_total: int = 0
    mode: str = "long"  # long | early | cancel (module docstring)
    weights: list[float] = field(default_factory=list)
    shares_due: datetime | None = None
    cancelled_at: datetime | None = None
    paid_by: dict[str, int] = field(default_factory=dict)  # party -> money it put in
    first_verified: datetime | None = None


def project(run: Run, label: str | None) -> bool:
    """One project's whole life; False when the window is too short for ``label``."""
    p = _plan(run, label)
    if p is None:
        return False
    written = len(run.truth)
    _contributions(p)
    _register(p)
    _pledges_and_disbursements(p)
    _milestone_reports(p)
    _verifications(p)
    _after_verifications(p)
    _tail(p)
    if label in _CLEAN_CASES:
        run.truth.append(no_flag_line(label, "project", p.pid))
    if label not in (None, "self_verification") and len(run.truth) == written:
        # (self_verification's truth is written by the attack that verifies its report)
        raise AssertionError(f"simulator bug: case {label} of {p.pid} wrote no ground truth")
    return True


def _plan(run: Run, label: str | None) -> _Project | None:
    """When, which club, what type and budget, and the milestones the agreement plans."""
    rng = run.rng
    c, fut = run.cutoff, run.fut
    lo, hi = run.start + 6 * HOUR, c - timedelta(days=_ROOM[label])
    if hi < lo:
        if label is None:
            hi = lo
        else:
            return None
    r = lo + (hi - lo) * (rng.random() ** 1.3)
    r = r.replace(microsecond=0)
    club = rng.choice(run.roster.clubs)
    if label == "self_verification":
        assert run.self_verifier is not None
        club = run.self_verifier
    if label in ("share_unpaid", "late_disbursement", "postponed_pledge") or label in CANCEL_LABELS:
        ptype = rng.choice(INFRA_TYPES)
    elif label is None and run.clean_projects < len(PROJECT_TYPES):
        ptype = PROJECT_TYPES[run.clean_projects]  # every type at least once
    else:
        ptype = rng.choice(PROJECT_TYPES)
    if label is None:
        run.clean_projects += 1
    productive = ptype in ("productive", "agriculture")
    # club_exact_share re-budgets to what the club raised (up to 1.4 times its target):
    # a lower budget keeps the programme's caps.
    top = 0.7 if label == "club_exact_share" else 1.0
    if productive:
        shares = {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
        budget = rng.randint(80, int(250 * top)) * 100_000
        families = rng.randint(5, 40)
    else:
        mun = rng.choices((2500, 2000, 3000), weights=(70, 15, 15))[0]
        shares = {"club": 2500, "municipal": mun, "state": 5000 - mun, "federal": 2500}
        if ptype == "scholarships":
            budget, families = rng.randint(150, int(500 * top)) * 100_000, rng.randint(10, 60)
        else:
            budget, families = rng.randint(300, int(1000 * top)) * 100_000, rng.randint(40, 800)
    pid = run.new_id("prj", 8)
    parties = {"municipal": club.municipal, "state": club.state_gov, "federal": FEDERAL}

    # milestones: dues over the project's planned length
    k = 2 if productive or ptype == "scholarships" else rng.randint(3, 4)
    length = timedelta(days=rng.uniform(120, 360))
    dues = sorted(r + length * (i + 1) / k * rng.uniform(0.9, 1.05) for i in range(k))
    dues = [
        max(d, r + timedelta(days=15) + i * DAY).replace(microsecond=0) for i, d in enumerate(dues)
    ]
    never: set[int] = set()
    if label == "milestone_overdue":
        dues[0] = min(r + timedelta(days=rng.uniform(20, 60)), c - 2 * DAY).replace(microsecond=0)
        dues[1:] = [max(d, dues[0] + timedelta(days=15)) for d in dues[1:]]
        never.add(0)
    if label == "funds_without_milestone":
        dues = [max(d, fut + timedelta(days=10 + 20 * i)) for i, d in enumerate(dues)]
    weights = [rng.uniform(0.7, 1.3) for _ in range(k)]
    amounts = _split(budget, weights)
    mids = [f"ms-{i + 1}" for i in range(k)]
    if label in EARLY_LABELS:
        mode = "early"
    elif label in CANCEL_LABELS:
        mode = "cancel"
    elif label is None and r <= c - timedelta(days=30) and rng.random() < 0.25:
        mode = "early"  # clean projects whose shares fall due in the window, paid in full
    else:
        mode = "long"
    p = _Project(
        run,
        label,
        r,
        club,
        ptype,
        shares,
        budget,
        families,
        pid,
        parties,
        dues,
        never,
        amounts,
        mids,
        mode=mode,
        weights=weights,
    )
    if mode == "cancel":
        # Everything of a cancelled project happens early: the first milestone is reported
        # before the cancellation, the others fall due after it (and no longer fire).
        cancel = (r + timedelta(days=rng.uniform(28, 32))).replace(microsecond=0)
        p.cancelled_at = cancel
        dues[0] = (r + timedelta(days=rng.uniform(24, 26))).replace(microsecond=0)
        for i in range(1, k):
            dues[i] = max(dues[i], cancel + timedelta(days=3 + 5 * i)).replace(microsecond=0)
    return p


def _split(budget: int, weights: list[float]) -> list[int]:
    amounts = [int(budget * w / sum(weights)) for w in weights]
    amounts[-1] = budget - sum(amounts[:-1])
    return amounts


def _contributions(p: _Project) -> None:
    """Club members pay into the project fund: transfers like any other, paid at once.

    A project whose shares fall due in the window gets at least the club's share
    by then (topped up if the members fell short), except ``club_share_unpaid``
    (40-65 % of it); ``club_exact_share`` re-budgets so the club's share is
    exactly what its members sent.
    """
    rng = p.run.rng
    club_share = p.budget * p.shares["club"] // 10000
    n_contrib = min(10, 3 + p.budget // 20_000_000)
    if p.label == "club_share_unpaid":
        target = club_share * rng.uniform(0.4, 0.65)
    elif p.label == "club_exact_share":
        target = float(club_share)
    elif p.mode == "early":
        target = club_share * rng.uniform(1.0, 1.1)
    else:
        target = club_share * rng.uniform(0.75, 1.0)
    for i in range(n_contrib):
        _contribute(p, i, target / n_contrib * rng.uniform(0.6, 1.4), first=i == 0)
    if p.label == "club_exact_share":
        total = sum(a for _, a in p.funds)
        p.budget = total * 10000 // p.shares["club"]
        assert p.budget * p.shares["club"] // 10000 == total  # shares of 25 % or 50 %
        p.amounts[:] = _split(p.budget, p.weights)
    elif p.mode == "early" and p.label != "club_share_unpaid":
        n = n_contrib
        while sum(a for _, a in p.funds) < club_share:
            _contribute(p, n, (club_share - sum(a for _, a in p.funds)) * 1.1 + 50_000, first=False)
            n += 1


def _contribute(p: _Project, i: int, mxn: float, *, first: bool) -> None:
    """One member's transfer of about ``mxn`` centavos to the project fund."""
    run, rng, r, c = p.run, p.run.rng, p.registered_at, p.run.cutoff
    at = run.between(r + 12 * HOUR, r + (3 if first else 20) * DAY)
    at = min(at, c - DAY)
    corridor = ("CA", "MX") if rng.random() < 0.05 else ("US", "MX")
    op = run.pick_operator(corridor)
    major = round(mxn / 100 / float(mid_rate(corridor, at)) / 10) * 10
    secret = run.secrets[op]
    member = Person(secret, f"{run.run_tag}:{p.club.club_id}:member:{p.pid}:{i}")
    tr = transfer(
        run,
        op,
        corridor,
        max(50.0, float(major)),
        at,
        sender=member,
        destination={"kind": "project_fund", "project_id": p.pid, "club_id": p.club.club_id},
    )
    pay_clean(run, tr, True)
    p.funds.append((tr.payouts[0][2], tr.quote.promised))
    p.paid_by["club"] = p.paid_by.get("club", 0) + tr.quote.promised


def _register(p: _Project) -> None:
    """The committee registers the project (its milestone dues may still move, before signing)."""
    club, r = p.club, p.registered_at
    p.registration = p.run.draft(
        club.committee,
        "project.registered",
        {
            "project_id": p.pid,
            "club_id": club.club_id,
            "federation_id": club.federation,
            "country": "MX",
            "state": club.state,
            "municipality": club.municipality,
            "project_type": p.ptype,
            "budget": money(p.budget, "MXN"),
            "shares": p.shares,
            "parties": p.parties,
            "families_benefited": p.families,
            "milestones": [
                {"milestone_id": m, "due": format_time(d), "amount": money(a, "MXN")}
                for m, d, a in zip(p.mids, p.dues, p.amounts, strict=True)
            ],
            "agreement_signed_at": format_time(r - timedelta(days=p.run.rng.randint(3, 40))),
            # The hometown mirror club verifies; a committee naming itself is the
            # self_verification case (its verifications never count).
            "verifiers": [club.mirror, club.committee]
            if p.label == "self_verification"
            else [club.mirror],
        },
        r,
    )
    if p.mode == "early":
        # The shares fall due in the window, after the club's money (by r + 20 days) and
        # early enough for a late payment to follow (late_disbursement).
        c = p.run.cutoff
        hi = c - (33 if p.label == "late_disbursement" else 2) * DAY
        d = r + timedelta(days=p.run.rng.uniform(25, 75))
        _set_shares_due(p, min(max(d, r + 22 * DAY), hi).replace(microsecond=0))


def _set_shares_due(p: _Project, d: datetime) -> None:
    assert p.registration is not None
    p.shares_due = d
    p.registration.payload["shares_due"] = format_time(d)


def _disburse(p: _Project, level: str, pledge_id: str, amount: int, at: datetime) -> None:
    made = at - timedelta(seconds=p.run.rng.randint(0, 3 * 3600))
    p.run.draft(
        p.parties[level],
        "disbursement.made",
        {
            "project_id": p.pid,
            "pledge_id": pledge_id,
            "disbursement_id": p.run.new_id("dsb", 8),
            "party_level": level,
            "party_id": p.parties[level],
            "amount": money(amount, "MXN"),
            "made_at": format_time(made),
            "reference": f"spei-{b32(hash_parts(pledge_id, at), 12)}",
        },
        at,
    )
    p.funds.append((made, amount))
    p.paid_by[level] = p.paid_by.get(level, 0) + amount


def _pledge(p: _Project, level: str, n: int, amount: int, at: datetime, due: datetime) -> str:
    pl = f"plg-{p.pid.rsplit('-', 1)[1]}-{level[:3]}-{n}"
    p.run.draft(
        p.parties[level],
        "disbursement.pledged",
        {
            "project_id": p.pid,
            "pledge_id": pl,
            "party_level": level,
            "party_id": p.parties[level],
            "amount": money(amount, "MXN"),
            "due": format_time(due),
        },
        at,
    )
    return pl


def _pledges_and_disbursements(p: _Project) -> None:
    """Each government pledges its share and disburses it on time, except in its case.

    ``long``: the federal share comes in two tranches; the second is paid in the
    tail, and the agreement's ``shares_due`` is its due (after the window).
    ``early``: every pledge is due on ``shares_due`` and paid in full before it.
    ``cancel``: the governments pay before the cancellation, except the federal
    second tranche, due after it (and never paid: the project was cancelled).
    """
    if p.mode == "early":
        _early_money(p)
    elif p.mode == "cancel":
        _cancelled_money(p)
    else:
        _long_money(p)
    p.funds.sort()


def _long_money(p: _Project) -> None:
    run, rng, r = p.run, p.run.rng, p.registered_at
    c, fut = run.cutoff, run.fut
    for level in ("municipal", "state", "federal"):
        cap = p.budget * p.shares[level] // 10000
        if cap == 0:
            continue
        p_at = min(run.between(r + 12 * HOUR, r + 6 * DAY), c - DAY)
        amount = cap
        if level == "federal":
            p.tranche_b = int(cap * rng.uniform(0.2, 0.35))
            amount = cap - p.tranche_b
        due = (p_at + timedelta(days=rng.uniform(25, 75))).replace(microsecond=0)
        if due <= fut and p_at + DAY > min(due, c) - 12 * HOUR:
            due = (fut + timedelta(days=rng.uniform(10, 60))).replace(microsecond=0)
        pl = _pledge(p, level, 1, amount, p_at, due)
        if level == "federal":
            b_due = (fut + timedelta(days=rng.uniform(30, 120))).replace(microsecond=0)
            p.b_pledge = _pledge(p, level, 2, p.tranche_b, p_at, b_due)
            _set_shares_due(p, b_due)
        if due <= fut or rng.random() < 0.5:
            last = min(due, c) - 12 * HOUR
            if p_at + DAY <= last:
                _pay(p, level, pl, amount, p_at + DAY, last)
    if p.shares_due is None:  # no federal share (never in the 3x1 programme): after the window
        _set_shares_due(p, (fut + timedelta(days=rng.uniform(30, 120))).replace(microsecond=0))


def _pay(p: _Project, level: str, pl: str, amount: int, lo: datetime, hi: datetime) -> None:
    """Disburse ``amount`` on pledge ``pl`` between ``lo`` and ``hi``: at once or in two halves."""
    run = p.run
    if amount > 1_000_000 and run.rng.random() < 0.3:
        half = amount // 2
        t1 = run.between(lo, hi)
        _disburse(p, level, pl, half, t1)
        _disburse(p, level, pl, amount - half, run.between(t1, hi))
    else:
        _disburse(p, level, pl, amount, run.between(lo, hi))


def _early_money(p: _Project) -> None:
    """Shares due in the window: everyone pays by ``shares_due``, except the case's party."""
    run, rng, label, r = p.run, p.run.rng, p.label, p.registered_at
    c, fut = run.cutoff, run.fut
    due = p.shares_due
    assert due is not None
    for level in ("municipal", "state", "federal"):
        cap = p.budget * p.shares[level] // 10000
        if cap == 0:
            continue
        p_at = min(run.between(r + 12 * HOUR, r + 6 * DAY), c - DAY)
        if label == "postponed_pledge" and level == "municipal":
            # MXN 1.00 pledged for three years on: the share is still due on the agreement's date.
            _pledge(p, level, 1, 100, p_at, (fut + timedelta(days=1100)).replace(microsecond=0))
            run.flag(_CLASS[label], "share_unpaid", "project", p.pid, "municipal")
            continue
        tranches = [cap]
        if level == "federal":
            b = int(cap * rng.uniform(0.2, 0.35))
            tranches = [cap - b, b]
        for n, amount in enumerate(tranches, start=1):
            pl = _pledge(p, level, n, amount, p_at, due)
            if label == "share_unpaid" and level == "municipal":
                run.flag(label, "share_unpaid", "project", p.pid, "municipal")
                run.flag(label, "late_disbursement", "project", p.pid, pl)
            elif label == "late_disbursement" and level == "state":
                late = run.between(due + 5 * DAY, min(due + 30 * DAY, c - DAY))
                _disburse(p, level, pl, amount, late)
                run.flag(label, "late_disbursement", "project", p.pid, pl, "resolved")
                run.flag(label, "share_unpaid", "project", p.pid, "state", "resolved")
            else:
                _pay(p, level, pl, amount, p_at + DAY, due - 12 * HOUR)
    if label == "club_share_unpaid":
        run.flag(_CLASS[label], "share_unpaid", "project", p.pid, "club")


def _cancelled_money(p: _Project) -> None:
    run, rng, r = p.run, p.run.rng, p.registered_at
    cancel = p.cancelled_at
    assert cancel is not None
    for level in ("municipal", "state", "federal"):
        cap = p.budget * p.shares[level] // 10000
        p_at = run.between(r + 12 * HOUR, r + 6 * DAY)
        amount = cap
        if level == "federal":
            p.tranche_b = int(cap * rng.uniform(0.2, 0.35))
            amount = cap - p.tranche_b
            # Due after the cancellation, never paid: no late_disbursement (it stopped).
            p.b_pledge = _pledge(p, level, 2, p.tranche_b, p_at, cancel + 10 * DAY)
        pl = _pledge(p, level, 1, amount, p_at, cancel - 3 * DAY)
        _pay(p, level, pl, amount, p_at + DAY, cancel - 3 * DAY - 12 * HOUR)
    # The shares fall due after the cancellation: the federal shortfall is no share_unpaid.
    _set_shares_due(p, cancel + 5 * DAY)


def _milestone_reports(p: _Project) -> None:
    """The committee reports spending per milestone (cumulative), from the funds it has."""
    run, rng, label = p.run, p.run.rng, p.label
    c, fut = run.cutoff, run.fut
    dues, k = p.dues, len(p.mids)
    first_funds = p.funds[0][0]

    def available(t: datetime) -> int:
        return sum(a for ft, a in p.funds if ft <= t)

    need_fwm = (
        label != "funds_without_milestone"
        and first_funds + DEFAULT_THRESHOLDS.no_milestone_period <= fut
    )
    must_one = need_fwm or label in _NEED_REPORT or p.mode != "long"

    def postpone(i: int) -> None:
        # No time (or money) left to report milestone i before it falls due in the
        # window: the agreement plans it, and every later one, after the window.
        assert p.registration is not None
        for j in range(i, k):
            dues[j] = max(dues[j], fut + timedelta(days=10 + 15 * (j - i)))
            p.registration.payload["milestones"][j]["due"] = format_time(dues[j])

    last_t = first_funds + DAY
    for i in range(k):
        if i in p.never or label == "funds_without_milestone":
            continue
        if p.cancelled_at is not None and i > 0:
            continue  # due after the cancellation: never reported, never overdue
        forced = must_one and not p.reports
        required = forced or dues[i] <= fut
        hi_t = min(dues[i] - 12 * HOUR, c - 3 * DAY)
        if p.cancelled_at is not None:
            hi_t = min(hi_t, p.cancelled_at - DAY)
        if forced and need_fwm:
            hi_t = min(hi_t, first_funds + 110 * DAY)
        if forced and label is not None and label in _LATE_ENOUGH:
            hi_t = min(hi_t, c - _LATE_ENOUGH[label] * DAY)
        t: datetime | None = None
        spent = 0
        if last_t <= hi_t and (required or rng.random() < 0.35):
            t = (last_t + (hi_t - last_t) * rng.uniform(0.3, 0.8)).replace(microsecond=0)
            # The report counts from its reported_at, up to an hour before t: spend only
            # what had arrived by then (a disbursement in that hour came too late for it).
            spent = min(p.amounts[i], int((available(t - HOUR) - p.spent_total) * 0.8))
            if spent < 100:
                t = None
        if t is None:
            if forced:
                raise AssertionError(f"simulator bug: cannot report {p.pid} {p.mids[i]}")
            if required:
                postpone(i)
            continue
        p.spent_total += spent
        reported_at = t - timedelta(seconds=rng.randint(0, 3600))
        d = run.draft(
            p.club.committee,
            "milestone.reported",
            {
                "project_id": p.pid,
                "milestone_id": p.mids[i],
                "spent": money(spent, "MXN"),
                "progress_pct": max(5, min(100, round(100 * spent / p.amounts[i]))),
                "reported_at": format_time(reported_at),
                "evidence": [
                    hashlib.sha256(hash_parts("evidence", p.pid, p.mids[i], j)).hexdigest()
                    for j in range(rng.randint(1, 4))
                ],
            },
            t,
        )
        p.reports.append((i, reported_at, spent, d))
        if label == "self_verification" and run.self_verified is None:
            run.self_verified = (p.pid, p.mids[i], t)
        last_t = t + 12 * HOUR


def _verifications(p: _Project) -> None:
    """The mirror club confirms the reports (dated after them), except in the verification cases.

    ``spending_unverified`` disputes the first report; ``verified_before_report``
    confirms it with a ``verified_at`` before the report (it does not count);
    ``unverified_new_spending`` confirms it within days (a second report follows);
    ``verified_right_after_report`` dates every confirmation one second after its report.
    """
    run, label = p.run, p.label
    c, fut = run.cutoff, run.fut
    for n, (i, reported_at, _spent, _d) in enumerate(p.reports):
        deadline = reported_at + DEFAULT_THRESHOLDS.unverified_period
        mid = p.mids[i]
        if label == "spending_unverified" and n == 0:
            at = run.between(reported_at + 5 * DAY, reported_at + 25 * DAY)
            verify(run, p.club, p.pid, mid, at, "disputed")
            run.flag(label, "spending_unverified", "project", p.pid, mid)
            continue
        if label == "verified_before_report" and n == 0:
            at = run.between(reported_at + DAY, reported_at + 10 * DAY)
            dated = reported_at - timedelta(seconds=run.rng.randint(3600, 72 * 3600))
            verify(run, p.club, p.pid, mid, at, "confirmed", dated=dated)
            run.flag(_CLASS[label], "spending_unverified", "project", p.pid, mid)
            continue
        if label == "unverified_new_spending" and n == 0:
            at = run.between(reported_at + DAY, reported_at + 3 * DAY)
            verify(run, p.club, p.pid, mid, at, "confirmed")
            p.first_verified = at
            continue
        hi_v = min(reported_at + 30 * DAY, c - 12 * HOUR)
        if label == "verified_right_after_report" and reported_at + DAY <= hi_v:
            at = run.between(reported_at + DAY, hi_v)
            verify(run, p.club, p.pid, mid, at, "confirmed", dated=reported_at + timedelta(seconds=1))
            continue
        if deadline <= fut or (run.rng.random() < 0.7 and reported_at + DAY <= hi_v):
            verify(run, p.club, p.pid, mid, run.between(reported_at + DAY, hi_v), "confirmed")


def _after_verifications(p: _Project) -> None:
    """The currency cases' first report, a second report after a confirmation, a cancellation."""
    run, label = p.run, p.label
    if label in ("fx_rate_undisclosed", "fx_rate_disclosed"):
        _i, _at, spent, d = p.reports[0]
        rate = mid_rate(("US", "MX"), d.event_time).quantize(Decimal("0.0001"))
        usd = int(Decimal(spent) / rate)  # rounded down: converted back, never above the MXN spent
        d.payload["spent"] = money(usd, "USD")
        if label == "fx_rate_disclosed":
            d.payload["fx_rate"] = str(rate)
        else:
            run.flag(label, "fx_rate_undisclosed", "project", p.pid, d.event_id)
    if label == "unverified_new_spending":
        i, _at, spent, _d = p.reports[0]
        assert p.first_verified is not None
        t = run.between(p.first_verified + DAY, p.first_verified + 3 * DAY)
        arrived = sum(a for ft, a in p.funds if ft <= t - HOUR)  # by its reported_at (see above)
        more = min(p.amounts[i] - spent, int((arrived - p.spent_total) * 0.5))
        total = spent + max(0, more)
        p.spent_total += total - spent
        d = _report(p, i, t, total)
        run.flag(_CLASS[label], "spending_unverified", "project", p.pid, f"{p.mids[i]}/{d.event_id}")
    if p.mode == "cancel":
        _cancel(p)


def _report(p: _Project, i: int, t: datetime, spent: int) -> Draft:
    """A ``milestone.reported`` of milestone ``i`` by the committee at ``t`` (cumulative ``spent``)."""
    run = p.run
    reported_at = t - timedelta(seconds=run.rng.randint(0, 3600))
    return run.draft(
        p.club.committee,
        "milestone.reported",
        {
            "project_id": p.pid,
            "milestone_id": p.mids[i],
            "spent": money(spent, "MXN"),
            "progress_pct": max(5, min(100, round(100 * spent / p.amounts[i]))),
            "reported_at": format_time(reported_at),
            "evidence": [
                hashlib.sha256(hash_parts("evidence", p.pid, p.mids[i], t.isoformat())).hexdigest()
            ],
        },
        t,
    )


def _cancel(p: _Project) -> None:
    """The committee cancels the project and returns the unspent money, in proportion to who paid.

    ``cancelled_full_return``: every party in full within the period (one exactly at
    its end).  ``funds_unreturned``: the club in full, the federal government 60 %
    (open), the municipality in full but late (resolved), the state nothing (open).
    """
    run, label, pid = p.run, p.label, p.pid
    cancel = p.cancelled_at
    assert cancel is not None and label is not None
    funds = sum(a for ft, a in p.funds if ft <= cancel)
    unspent = funds - p.spent_total
    due = {party: unspent * paid // funds for party, paid in sorted(p.paid_by.items())}
    order = [x for x in ("club", "municipal", "state", "federal") if due.get(x, 0) > 0]
    run.draft(
        p.club.committee,
        "project.cancelled",
        {
            "project_id": pid,
            "cancelled_at": format_time(cancel),
            "returns": [{"party": x, "amount": money(due[x], "MXN")} for x in order],
        },
        cancel + timedelta(seconds=run.rng.randint(60, 3600)),
    )
    end = cancel + DEFAULT_THRESHOLDS.funds_return_period
    for n, party in enumerate(order):
        amount = due[party]
        if label == "cancelled_full_return":
            at = end if n == 0 else run.between(cancel + DAY, end - DAY)
        elif party == "club":
            at = run.between(cancel + 2 * DAY, cancel + 25 * DAY)
        elif party == "federal":
            at = run.between(cancel + 2 * DAY, cancel + 25 * DAY)
            amount = amount * 6 // 10
            run.flag(label, "funds_unreturned", "project", pid, party)
        elif party == "municipal":
            at = run.between(end + 2 * DAY, end + 8 * DAY)
            run.flag(label, "funds_unreturned", "project", pid, party, "resolved")
        else:
            run.flag(label, "funds_unreturned", "project", pid, party)
            continue
        run.draft(
            p.club.committee,
            "project.funds_returned",
            {
                "project_id": pid,
                "party": party,
                "amount": money(amount, "MXN"),
                "returned_at": format_time(at),
                "reference": f"spei-{b32(hash_parts(pid, party, at), 12)}",
            },
            at + timedelta(seconds=run.rng.randint(10, 600)),
        )


def _tail(p: _Project) -> None:
    """One deadline-free event per project in the quiet tail; then the case's last touches.

    ``long``: the federal second tranche, paid early at quarter end.  ``early``:
    the committee restates its latest report (a progress report: its own
    verification falls due after the window).  ``cancel``: the mirror club's final
    confirmation of the latest report.
    """
    run, label = p.run, p.label
    tail_at = run.between(run.end - 6 * HOUR, run.end - 10 * MINUTE)
    if p.mode == "early":
        i, _at, spent, _d = p.reports[-1]
        _report(p, i, tail_at, spent)
    elif p.mode == "cancel":
        verify(run, p.club, p.pid, p.mids[p.reports[-1][0]], tail_at, "confirmed")
    else:
        _disburse(p, "federal", p.b_pledge, p.tranche_b, tail_at)
    if label in ("spending_above_funds", "foreign_currency_overspend"):
        _i, _rep_at, spent, d = p.reports[-1]
        extra = sum(a for _, a in p.funds) - p.spent_total + p.budget // 10
        d.payload["spent"] = money(spent + extra, "MXN")
        d.payload["progress_pct"] = 100
        if label == "foreign_currency_overspend":
            # The same overspend stated in US dollars at the rate paid: converted, it is above.
            rate = mid_rate(("US", "MX"), d.event_time).quantize(Decimal("0.0001"))
            usd = -(-Decimal(spent + extra) // rate)  # rounded up: converted back, still above
            d.payload["spent"] = money(int(usd), "USD")
            d.payload["fx_rate"] = str(rate)
        run.flag(_CLASS.get(label, label), "spending_above_funds", "project", p.pid, "")
    elif label == "milestone_overdue":
        run.flag(label, "milestone_overdue", "project", p.pid, p.mids[0])
    elif label == "funds_without_milestone":
        run.flag(label, "funds_without_milestone", "project", p.pid, "")


def verify(
    run: Run,
    club: Club,
    pid: str,
    mid: str,
    at: datetime,
    outcome: str,
    *,
    dated: datetime | None = None,
) -> None:
    """The hometown mirror club's verdict on a reported milestone, published at ``at``
    (``verified_at`` up to an hour before, or ``dated``)."""
    verified_at = dated if dated is not None else at - timedelta(seconds=run.rng.randint(0, 3600))
    run.draft(
        club.mirror,
        "milestone.verified",
        {
            "project_id": pid,
            "milestone_id": mid,
            "verified_at": format_time(verified_at),
            "verifier_id": club.mirror,
            "outcome": outcome,
        },
        at,
    )
