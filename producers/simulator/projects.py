"""3x1 hometown projects: registration, club contributions, pledges, disbursements, milestones.

A club committee registers a project; club members' contributions are
transfers to the project fund; the municipal, state and federal governments
pledge and disburse their shares (infrastructure 25 % club / 25 % federal /
50 % municipal+state, productive 50 % club / 50 % federal); the committee
reports milestones with evidence digests and the hometown mirror club
verifies them.  A labelled project is the case its label names, and writes
its own truth lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from producers.simulator.drafts import Draft, Run
from producers.simulator.market import Person, mid_rate, money
from producers.simulator.transfers import pay_clean, transfer
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

__all__ = ["project", "verify"]


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


def project(run: Run, label: str | None) -> bool:
    """One project's whole life; False when the window is too short for ``label``."""
    p = _plan(run, label)
    if p is None:
        return False
    _contributions(p)
    _register(p)
    _pledges_and_disbursements(p)
    _milestone_reports(p)
    _verifications(p)
    _tail(p)
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
    if label in ("share_unpaid", "late_disbursement"):
        ptype = rng.choice(INFRA_TYPES)
    elif label is None and run.clean_projects < len(PROJECT_TYPES):
        ptype = PROJECT_TYPES[run.clean_projects]  # every type at least once
    else:
        ptype = rng.choice(PROJECT_TYPES)
    if label is None:
        run.clean_projects += 1
    productive = ptype in ("productive", "agriculture")
    if productive:
        shares = {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
        budget = rng.randint(80, 250) * 100_000
        families = rng.randint(5, 40)
    else:
        mun = rng.choices((2500, 2000, 3000), weights=(70, 15, 15))[0]
        shares = {"club": 2500, "municipal": mun, "state": 5000 - mun, "federal": 2500}
        if ptype == "scholarships":
            budget, families = rng.randint(150, 500) * 100_000, rng.randint(10, 60)
        else:
            budget, families = rng.randint(300, 1000) * 100_000, rng.randint(40, 800)
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
    amounts = [int(budget * w / sum(weights)) for w in weights]
    amounts[-1] = budget - sum(amounts[:-1])
    mids = [f"ms-{i + 1}" for i in range(k)]
    return _Project(
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
    )


def _contributions(p: _Project) -> None:
    """Club members pay into the project fund: transfers like any other, paid at once."""
    run, rng, r, c = p.run, p.run.rng, p.registered_at, p.run.cutoff
    club_share = p.budget * p.shares["club"] // 10000
    n_contrib = min(10, 3 + p.budget // 20_000_000)
    target = club_share * rng.uniform(0.75, 1.0)
    for i in range(n_contrib):
        first = i == 0
        at = run.between(r + 12 * HOUR, r + (3 if first else 20) * DAY)
        at = min(at, c - DAY)
        corridor = ("CA", "MX") if rng.random() < 0.05 else ("US", "MX")
        op = run.pick_operator(corridor)
        mxn = target / n_contrib * rng.uniform(0.6, 1.4)
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

    The federal share comes in two tranches; the second is paid in the tail.
    """
    run, rng, label, r = p.run, p.run.rng, p.label, p.registered_at
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
        anomaly = (label == "share_unpaid" and level == "municipal") or (
            label == "late_disbursement" and level == "state"
        )
        if label == "share_unpaid" and level == "municipal":
            due = max(p_at + timedelta(days=20), min(due, c - 2 * DAY))
        elif label == "late_disbursement" and level == "state":
            due = max(p_at + timedelta(days=20), min(due, c - 33 * DAY))
        elif due <= fut and p_at + DAY > min(due, c) - 12 * HOUR:
            due = (fut + timedelta(days=rng.uniform(10, 60))).replace(microsecond=0)
        pl = _pledge(p, level, 1, amount, p_at, due)
        if level == "federal":
            b_due = (fut + timedelta(days=rng.uniform(30, 120))).replace(microsecond=0)
            p.b_pledge = _pledge(p, level, 2, p.tranche_b, p_at, b_due)
        if anomaly:
            assert label is not None
            if label == "share_unpaid":
                run.flag(label, "share_unpaid", "project", p.pid, "municipal")
                run.flag(label, "late_disbursement", "project", p.pid, pl)
            else:
                late = run.between(due + 5 * DAY, min(due + 30 * DAY, c - DAY))
                _disburse(p, level, pl, amount, late)
                run.flag(label, "late_disbursement", "project", p.pid, pl, "resolved")
                run.flag(label, "share_unpaid", "project", p.pid, "state", "resolved")
            continue
        if due <= fut or rng.random() < 0.5:
            last = min(due, c) - 12 * HOUR
            if p_at + DAY <= last:
                if amount > 1_000_000 and rng.random() < 0.3:
                    half = amount // 2
                    t1 = run.between(p_at + DAY, last)
                    _disburse(p, level, pl, half, t1)
                    _disburse(p, level, pl, amount - half, run.between(t1, last))
                else:
                    _disburse(p, level, pl, amount, run.between(p_at + DAY, last))
    p.funds.sort()


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
    must_one = need_fwm or label in ("spending_above_funds", "spending_unverified", "self_verification")

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
        forced = must_one and not p.reports
        required = forced or dues[i] <= fut
        hi_t = min(dues[i] - 12 * HOUR, c - 3 * DAY)
        if forced and need_fwm:
            hi_t = min(hi_t, first_funds + 110 * DAY)
        if forced and label == "spending_unverified":
            hi_t = min(hi_t, c - 62 * DAY)
        t: datetime | None = None
        spent = 0
        if last_t <= hi_t and (required or rng.random() < 0.35):
            t = (last_t + (hi_t - last_t) * rng.uniform(0.3, 0.8)).replace(microsecond=0)
            spent = min(p.amounts[i], int((available(t) - p.spent_total) * 0.8))
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
    """The mirror club confirms the reports (disputes the first in ``spending_unverified``)."""
    run, label = p.run, p.label
    c, fut = run.cutoff, run.fut
    for n, (i, reported_at, _spent, _d) in enumerate(p.reports):
        deadline = reported_at + DEFAULT_THRESHOLDS.unverified_period
        if label == "spending_unverified" and n == 0:
            verify(
                run,
                p.club,
                p.pid,
                p.mids[i],
                run.between(reported_at + 5 * DAY, reported_at + 25 * DAY),
                "disputed",
            )
            run.flag(label, "spending_unverified", "project", p.pid, p.mids[i])
            continue
        hi_v = min(reported_at + 30 * DAY, c - 12 * HOUR)
        if deadline <= fut or (run.rng.random() < 0.7 and reported_at + DAY <= hi_v):
            verify(run, p.club, p.pid, p.mids[i], run.between(reported_at + DAY, hi_v), "confirmed")


def _tail(p: _Project) -> None:
    """The federal second tranche, paid early at quarter end; then the case's last touches."""
    run, label = p.run, p.label
    tail_at = run.between(run.end - 6 * HOUR, run.end - 10 * MINUTE)
    _disburse(p, "federal", p.b_pledge, p.tranche_b, tail_at)
    if label == "spending_above_funds":
        _i, _rep_at, spent, d = p.reports[-1]
        extra = sum(a for _, a in p.funds) - p.spent_total + p.budget // 10
        d.payload["spent"] = money(spent + extra, "MXN")
        d.payload["progress_pct"] = 100
        run.flag(label, "spending_above_funds", "project", p.pid, "")
    elif label == "milestone_overdue":
        run.flag(label, "milestone_overdue", "project", p.pid, p.mids[0])
    elif label == "funds_without_milestone":
        run.flag(label, "funds_without_milestone", "project", p.pid, "")


def verify(run: Run, club: Club, pid: str, mid: str, at: datetime, outcome: str) -> None:
    """The hometown mirror club's verdict on a reported milestone."""
    run.draft(
        club.mirror,
        "milestone.verified",
        {
            "project_id": pid,
            "milestone_id": mid,
            "verified_at": format_time(at - timedelta(seconds=run.rng.randint(0, 3600))),
            "verifier_id": club.mirror,
            "outcome": outcome,
        },
        at,
    )
