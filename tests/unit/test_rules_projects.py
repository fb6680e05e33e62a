"""Project reconciliation rules: each flag fires, stays silent, resolves, and holds at boundaries.

Scenario: a MXN 1,000,000.00 water project, 25 % each for the club and the three government
levels.  The club's MXN 250,000 arrives on day 10, every level pledges MXN 250,000 due on
day 30 and pays on day 20; milestone m1 (due day 90) is reported on day 80 and verified on
day 100; m2 (due day 180) is reported on day 170 and verified on day 200.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.times import format_time
from stream_processors.rules import (
    TICK,
    Contribution,
    Evt,
    FlagSpec,
    ProjectResult,
    Thresholds,
    reconcile_project,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TH = Thresholds()
PID = "prj_0001"
CLUB = "club_jerez"
MIRROR = "club_espejo_jerez"
PARTIES = {"municipal": "mun_jerez", "state": "gob_zac", "federal": "fed_bienestar"}
SHARE = 25_000_000  # MXN 250,000.00 in centavos
HALF = 50_000_000
LATER = T0 + timedelta(days=400)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mxn(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "MXN"}


def registered(
    shares: dict[str, int] | None = None,
    *,
    at: datetime = T0,
    eid: str = "ev_reg",
    shares_due: datetime | None = None,
    budget: int = 100_000_000,
    agreed_due: bool = True,
) -> Evt:
    payload: dict[str, Any] = {
        "project_id": PID,
        "club_id": CLUB,
        "federation_id": "fed_zac_il",
        "country": "MX",
        "state": "MX-ZAC",
        "municipality": "mx_zac_jerez",
        "project_type": "water_sanitation",
        "budget": mxn(budget),
        "shares": shares or {"club": 2500, "municipal": 2500, "state": 2500, "federal": 2500},
        "parties": PARTIES,
        "milestones": [
            {"milestone_id": "m1", "due": z(day(90)), "amount": mxn(HALF)},
            {"milestone_id": "m2", "due": z(day(180)), "amount": mxn(HALF)},
        ],
        "agreement_signed_at": z(T0),
        # The mirror club may verify (no verifier named: no verification counts).
        "verifiers": [MIRROR],
        # Every party's share is due on day 30 (absent: the first milestone due, day 90).
        "shares_due": z(shares_due or day(30)),
    }
    if not agreed_due:
        del payload["shares_due"]
    return Evt(eid, "project.registered", at, 1, payload)


def pledged(level: str, due: datetime, amount: int = SHARE, pledge_id: str = "") -> Evt:
    pid = pledge_id or f"pl_{level}"
    payload = {
        "project_id": PID,
        "pledge_id": pid,
        "party_level": level,
        "party_id": PARTIES[level],
        "amount": mxn(amount),
        "due": z(due),
    }
    return Evt(f"ev_{pid}", "disbursement.pledged", T0 + timedelta(hours=1), None, payload)


def made(level: str, at: datetime, amount: int = SHARE, pledge_id: str = "", n: int = 0) -> Evt:
    pid = pledge_id or f"pl_{level}"
    payload = {
        "project_id": PID,
        "pledge_id": pid,
        "disbursement_id": f"d_{level}_{n}",
        "party_level": level,
        "party_id": PARTIES[level],
        "amount": mxn(amount),
        "made_at": z(at),
        "reference": "spei_123",
    }
    return Evt(f"ev_made_{level}_{n}_{at.isoformat()}", "disbursement.made", at, None, payload)


def reported(milestone: str, at: datetime, spent: int = HALF, n: int = 0) -> Evt:
    payload = {
        "project_id": PID,
        "milestone_id": milestone,
        "spent": mxn(spent),
        "progress_pct": 100,
        "reported_at": z(at),
        "evidence": ["d" * 64],
    }
    return Evt(f"ev_rep_{milestone}_{n}_{at.isoformat()}", "milestone.reported", at, None, payload)


def verified(milestone: str, at: datetime, outcome: str = "confirmed") -> Evt:
    payload = {
        "project_id": PID,
        "milestone_id": milestone,
        "verified_at": z(at),
        "verifier_id": MIRROR,
        "outcome": outcome,
    }
    return Evt(f"ev_ver_{milestone}_{at.isoformat()}", "milestone.verified", at, None, payload)


def contribution(
    at: datetime, amount: int = SHARE, tid: str = "trf_c1", version: int = 2
) -> Contribution:
    return Contribution(PID, CLUB, tid, amount, "MXN", at, (f"s_{tid}", f"p_{tid}"), version)


def clean_events() -> list[Evt]:
    events = [registered()]
    for level in PARTIES:
        events += [pledged(level, day(30)), made(level, day(20))]
    events += [reported("m1", day(80)), verified("m1", day(100))]
    events += [reported("m2", day(170)), verified("m2", day(200))]
    return events


CLEAN_CONTRIBS = [contribution(day(10))]


def run(
    events: Sequence[Evt],
    contribs: Sequence[Contribution] = CLEAN_CONTRIBS,
    now: datetime | None = LATER,
    th: Thresholds = TH,
) -> ProjectResult:
    return reconcile_project(PID, events, contribs, now, th)


def upto(events: list[Evt], t: datetime) -> list[Evt]:
    """The events published by ``t``: the clock is never behind an event it delivered."""
    return [e for e in events if e.event_time <= t]


def without(events: list[Evt], prefix: str) -> list[Evt]:
    return [e for e in events if not e.event_id.startswith(prefix)]


def only(result: ProjectResult, flag_type: str, key: str | None = None) -> FlagSpec:
    found = [f for f in result.flags if f.flag_type == flag_type and (key is None or f.key == key)]
    assert len(found) == 1, [(f.flag_type, f.key) for f in result.flags]
    return found[0]


def types(result: ProjectResult) -> set[str]:
    return {f.flag_type for f in result.flags}


# --------------------------------------------------------------------------- clean data


def test_clean_project_fully_matched_reported_and_verified_raises_nothing() -> None:
    r = run(clean_events())
    assert r.flags == []
    assert r.next_deadline is None
    s = r.state
    assert s.status == "registered" and s.currency == "MXN"
    assert (s.club_received, s.disbursed, s.funds_received, s.spent) == (
        SHARE,
        3 * SHARE,
        4 * SHARE,
        2 * HALF,
    )
    assert [(p.level, p.owed, p.disbursed, p.status) for p in r.parties] == [
        (level, SHARE, SHARE, "paid_in_full") for level in [*PARTIES, "club"]
    ]
    assert (r.parties[-1].party_id, r.parties[-1].deadline) == (CLUB, day(30))
    assert [(m.milestone_id, m.status, m.spent) for m in r.milestones] == [
        ("m1", "verified", HALF),
        ("m2", "verified", HALF),
    ]
    assert r.milestones[0].evidence == ("d" * 64,)


def test_unregistered_project_keeps_events_and_raises_nothing() -> None:
    events = without(clean_events(), "ev_reg")
    r = run(events)
    assert r.state.status == "unregistered" and r.flags == [] and r.next_deadline is None
    assert r.state.event_count == len(events)
    assert run([*events, registered(at=day(500))]) == run(clean_events(), now=day(500))


# --------------------------------------------------------------------------- shares


def test_share_unpaid_fires_after_the_latest_pledge_due_and_resolves() -> None:
    events = without(clean_events(), "ev_made_municipal")
    r = run(upto(events, day(30)), now=day(30))
    assert r.flags == [] and r.next_deadline == day(30) + TICK
    r = run(upto(events, day(30)), now=day(30) + TICK)
    assert types(r) == {"share_unpaid", "late_disbursement"}
    f = only(r, "share_unpaid")
    assert (f.key, f.accountable, f.severity, f.amount_at_stake, f.currency) == (
        "municipal",
        "mun_jerez",
        "high",
        SHARE,
        "MXN",
    )
    assert f.raised_at == day(30) and f.resolved_at is None
    assert r.parties[0].status == "unpaid"
    r = run([*events, made("municipal", day(45))])
    f = only(r, "share_unpaid")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (day(30), day(45), SHARE)
    assert r.parties[0].status == "paid_in_full"


def test_share_paid_exactly_at_the_deadline_is_on_time() -> None:
    events = [*without(clean_events(), "ev_made_municipal"), made("municipal", day(30))]
    assert run(events).flags == []


def test_owed_follows_what_the_club_actually_put_in() -> None:
    events = [registered()]
    for level in PARTIES:
        events += [pledged(level, day(30), 10_000_000), made(level, day(20), 10_000_000)]
    r = run(events, [contribution(day(10), 10_000_000)], now=day(31))
    # The governments matched what the club put in; the club itself is short of its share.
    assert [f.key for f in r.flags] == ["club"]
    f = only(r, "share_unpaid", "club")
    assert (f.accountable, f.amount_at_stake, f.raised_at) == (CLUB, SHARE - 10_000_000, day(30))
    assert r.state.club_owed == SHARE
    assert [(p.owed, p.owed_cap, p.status) for p in r.parties] == [
        (10_000_000, SHARE, "up_to_date")
    ] * 3 + [(SHARE, SHARE, "unpaid")]
    assert r.parties[-1].disbursed == 10_000_000  # what the club contributed
    # More club money after the deadline raises what each level owes, at once.
    r = run(events, [contribution(day(10), 10_000_000), contribution(day(40), 5_000_000, "t2")])
    f = only(r, "share_unpaid", "state")
    assert (f.raised_at, f.amount_at_stake) == (day(40), 5_000_000)


def test_share_unpaid_without_shares_due_uses_the_first_milestone_due() -> None:
    events = [e for e in clean_events() if "municipal" not in e.event_id and e.event_id != "ev_reg"]
    events = upto([registered(agreed_due=False), *events], day(90))
    r = run(events, now=day(90) + TICK)
    f = only(r, "share_unpaid")
    assert f.raised_at == day(90) and f.key == "municipal"
    assert "share_unpaid" not in types(run(events, now=day(90)))


def test_a_level_with_zero_share_takes_no_part() -> None:
    shares = {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
    events = [registered(shares), pledged("federal", day(30), HALF), made("federal", day(20), HALF)]
    events += [reported("m1", day(80)), verified("m1", day(90))]
    events += [reported("m2", day(170)), verified("m2", day(190))]
    r = run(events, [contribution(day(10), HALF)])
    assert r.flags == []
    assert [p.status for p in r.parties] == [
        "not_participating",
        "not_participating",
        "paid_in_full",
        "paid_in_full",  # the club
    ]


def test_disbursement_from_someone_else_is_not_attributed() -> None:
    rogue = made("municipal", day(20), n=9)
    rogue = replace(rogue, payload={**rogue.payload, "party_id": "mun_otro"})
    events = [*without(clean_events(), "ev_made_municipal"), rogue]
    r = run(events)
    assert only(r, "share_unpaid").key == "municipal"
    assert r.state.unattributed_event_ids == (rogue.event_id,)


# --------------------------------------------------------------------------- pledges


def test_late_disbursement_is_history_once_paid() -> None:
    events = [*without(clean_events(), "ev_made_state"), made("state", day(50))]
    f = only(run(events), "late_disbursement")
    assert (f.key, f.accountable, f.severity) == ("pl_state", "gob_zac", "medium")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (day(30), day(50), SHARE)


def test_late_disbursement_boundary_and_partial_payment() -> None:
    on_time = [*without(clean_events(), "ev_made_state"), made("state", day(30))]
    assert run(on_time).flags == []
    partial = [*without(clean_events(), "ev_made_state"), made("state", day(25), 20_000_000)]
    r = run(partial, now=day(31))
    f = only(r, "late_disbursement")
    assert (f.amount_at_stake, f.resolved_at) == (5_000_000, None)
    r = run([*partial, made("state", day(60), 5_000_000, n=1)])
    assert only(r, "late_disbursement").resolved_at == day(60)


# --------------------------------------------------------------------------- milestones


def test_milestone_overdue_boundary_and_resolution_by_a_late_report() -> None:
    events = upto([e for e in clean_events() if "_m1_" not in e.event_id], day(90))
    assert run(events, now=day(90)).flags == []
    r = run(events, now=day(90) + TICK)
    f = only(r, "milestone_overdue")
    assert (f.key, f.accountable, f.severity, f.amount_at_stake) == ("m1", CLUB, "medium", HALF)
    assert (f.raised_at, f.resolved_at) == (day(90), None)
    assert r.milestones[0].status == "overdue"
    r = run([*events, reported("m1", day(100))], now=day(101))
    assert only(r, "milestone_overdue").resolved_at == day(100)
    assert r.milestones[0].status == "reported"


def test_report_exactly_on_the_due_date_is_on_time() -> None:
    events = [e for e in clean_events() if "_m1_" not in e.event_id]
    events += [reported("m1", day(90)), verified("m1", day(95))]
    assert run(events).flags == []


def test_spending_is_cumulative_per_milestone() -> None:
    events = [*clean_events(), reported("m1", day(85), 30_000_000, n=1)]
    r = run(events)
    assert r.milestones[0].spent == 30_000_000  # the later report replaces the earlier one
    assert r.state.spent == 30_000_000 + HALF


def test_spending_above_funds_fires_at_the_report_and_resolves_with_funds() -> None:
    events = [registered(), reported("m1", day(50), 30_000_000)]
    r = run(events, now=day(55))
    f = only(r, "spending_above_funds")
    assert (f.severity, f.accountable, f.amount_at_stake) == ("high", CLUB, 5_000_000)
    assert (f.raised_at, f.resolved_at) == (day(50), None)
    r = run([*events, made("federal", day(60))], now=day(61))
    f = only(r, "spending_above_funds")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (day(50), day(60), 5_000_000)


def test_spending_equal_to_funds_is_fine() -> None:
    r = run([registered(), reported("m1", day(50), SHARE)], now=day(55))
    assert "spending_above_funds" not in types(r)


def test_funds_without_milestone_boundary_and_resolution() -> None:
    deadline = day(10) + TH.no_milestone_period
    events = [registered()]
    r = run(events, now=deadline)
    assert "funds_without_milestone" not in types(r)
    assert r.next_deadline is not None and r.next_deadline <= deadline + TICK
    r = run(events, now=deadline + TICK)
    f = only(r, "funds_without_milestone")
    assert (f.severity, f.accountable, f.amount_at_stake) == ("medium", CLUB, SHARE)
    assert (f.raised_at, f.resolved_at) == (deadline, None)
    assert "s_trf_c1" in f.evidence
    r = run([*events, reported("m1", day(140), 1_000)], now=day(141))
    assert only(r, "funds_without_milestone").resolved_at == day(140)


def test_spending_unverified_boundary_resolution_and_dispute() -> None:
    deadline = day(80) + TH.unverified_period
    events = upto([e for e in clean_events() if not e.event_id.startswith("ev_ver_m1")], deadline)
    assert run(events, now=deadline).flags == []
    f = only(run(events, now=deadline + TICK), "spending_unverified", "m1")
    assert (f.severity, f.accountable, f.amount_at_stake) == ("low", CLUB, HALF)
    assert (f.raised_at, f.resolved_at, f.detail["verification"]) == (deadline, None, "none")
    f = only(run([*events, verified("m1", day(150))]), "spending_unverified", "m1")
    assert f.resolved_at == day(150)
    r = run([*events, verified("m1", day(100), "disputed")], now=deadline + TICK)
    f = only(r, "spending_unverified", "m1")
    assert f.resolved_at is None and f.detail["verification"] == "disputed"
    assert r.milestones[0].status == "disputed"
    # Verified on time, then disputed later: the flag opens at the dispute.
    r = run([*clean_events(), verified("m1", day(300), "disputed")])
    f = only(r, "spending_unverified", "m1")
    assert (f.raised_at, f.resolved_at) == (day(300), None)


# --------------------------------------------------------------------------- contributions


def test_latest_contribution_version_wins_and_other_projects_are_ignored() -> None:
    old = contribution(day(10), 1_000, version=1)
    new = contribution(day(10), SHARE, version=2)
    elsewhere = replace(new, project_id="prj_other", transfer_id="t9")
    r = run(clean_events(), [new, old, elsewhere])
    assert r.state.club_received == SHARE and r.state.contribution_count == 1
    assert r == run(clean_events(), [old, new])


# --------------------------------------------------------------------------- properties


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Evt], list[Contribution]]:
    """Registration plus random pledges, disbursements, reports, verifications, contributions,
    and (issue 15) an agreed share deadline or none, reports in other currencies with or without
    a rate, verifications dated before their report, cancellations and returns."""
    days = st.integers(0, 300).map(day)
    events: list[Evt] = []
    if draw(st.integers(0, 9)) != 0:
        due = draw(st.one_of(st.none(), days))
        events.append(owned(registered(shares_due=due, agreed_due=due is not None)))
    for level in PARTIES:
        if draw(st.booleans()):
            events.append(pledged(level, draw(days), draw(st.sampled_from([SHARE, 10_000_000]))))
        for n in range(draw(st.integers(0, 2))):
            amount = draw(st.sampled_from([SHARE, 5_000_000, 20_000_000]))
            events.append(made(level, draw(days), amount, n=n))
    for mid in ("m1", "m2", "m9"):
        for n in range(draw(st.integers(0, 2))):
            events.append(
                reported(mid, draw(days), draw(st.sampled_from([0, HALF, 80_000_000])), n)
            )
        for _ in range(draw(st.integers(0, 2))):
            published = draw(days)
            dated = published - timedelta(days=draw(st.sampled_from([0, 0, 3, 40])))
            outcome = draw(st.sampled_from(["confirmed", "disputed"]))
            events.append(verified_at(mid, dated, published, outcome))
    if draw(st.booleans()):
        rate = draw(st.sampled_from([None, "17.5", "0.05"]))
        events.append(reported_in("m2", draw(days), 1_000_000, "USD", rate))
    for n in range(draw(st.integers(0, 2))):
        parties = draw(st.lists(st.sampled_from(["club", *PARTIES]), unique=True, max_size=4))
        amounts = {p: draw(st.sampled_from([SHARE, 1_000_000])) for p in parties}
        events.append(cancelled(draw(days), amounts, eid=f"ev_cancel_{n}", log_index=draw(st.integers(2, 9))))
    for n in range(draw(st.integers(0, 3))):
        party = draw(st.sampled_from(["club", *PARTIES]))
        events.append(returned(party, draw(days), draw(st.sampled_from([SHARE, 1_000_000])), n))
    contribs = [
        contribution(draw(days), draw(st.sampled_from([SHARE, 5_000_000])), f"t{i}", version=2)
        for i in range(draw(st.integers(0, 2)))
    ]
    return events, contribs


_NOWS = st.one_of(st.none(), st.integers(0, 500).map(day))


@settings(max_examples=300, deadline=None)
@given(scenarios(), _NOWS, st.randoms(use_true_random=False))
def test_result_is_independent_of_event_order_and_duplicates(
    scenario: tuple[list[Evt], list[Contribution]], now: datetime | None, rnd: random.Random
) -> None:
    events, contribs = scenario
    shuffled = events + [rnd.choice(events) for _ in range(rnd.randint(0, 4)) if events]
    rnd.shuffle(shuffled)
    stale = [replace(c, amount=1, version=1) for c in contribs]
    mixed = contribs + stale + contribs
    rnd.shuffle(mixed)
    assert run(shuffled, mixed, now) == run(events, contribs, now)


@settings(max_examples=300, deadline=None)
@given(scenarios(), _NOWS, st.integers(0, 400))
def test_a_later_clock_never_changes_or_removes_a_flag(
    scenario: tuple[list[Evt], list[Contribution]], now: datetime | None, extra_days: int
) -> None:
    """For fixed events and now1 <= now2 (None earliest), flags(now1) is a subset of flags(now2).

    Subset by full equality (same raised_at, resolved_at, amount, detail): a later clock only
    adds flags.  And the result evaluated at ``next_deadline`` differs from the current one.
    """
    events, contribs = scenario
    later = (now or T0) + timedelta(days=extra_days)
    first, second = run(events, contribs, now), run(events, contribs, later)
    for f in first.flags:
        assert f in second.flags
    if first.next_deadline is not None:
        assert run(events, contribs, first.next_deadline).flags != first.flags


# --------------------------------------------------------------------------- issue 15: the club


def test_club_share_unpaid_at_the_agreement_deadline_and_resolved_by_more_club_money() -> None:
    early = upto(clean_events(), day(30))
    r = run(early, [contribution(day(10), 10_000_000)], now=day(30))
    assert r.flags == [] and r.next_deadline == day(30) + TICK
    r = run(early, [contribution(day(10), 10_000_000)], now=day(30) + TICK)
    f = only(r, "share_unpaid", "club")
    assert (f.accountable, f.severity, f.amount_at_stake, f.raised_at) == (CLUB, "high", 15_000_000, day(30))
    assert f.detail["contributed"] == 10_000_000 and f.detail["deadline_source"] == "shares_due"
    late = [contribution(day(10), 10_000_000), contribution(day(45), 15_000_000, "t2")]
    f = only(run(clean_events(), late), "share_unpaid", "club")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (day(30), day(45), 15_000_000)


def test_club_paying_exactly_its_share_at_the_deadline_is_clean() -> None:
    assert run(clean_events(), [contribution(day(30), SHARE)]).flags == []
    r = run(clean_events(), [contribution(day(30) + timedelta(seconds=1), SHARE)])
    f = only(r, "share_unpaid", "club")
    assert (f.raised_at, f.resolved_at) == (day(30), day(30) + timedelta(seconds=1))
    # One centavo short is short (the tolerance is 0 bps): the club answers for it.
    f = only(run(clean_events(), [contribution(day(10), SHARE - 1)]), "share_unpaid", "club")
    assert (f.amount_at_stake, f.resolved_at) == (1, None)


def test_a_club_with_no_share_is_not_judged() -> None:
    shares = {"club": 0, "municipal": 5000, "state": 2500, "federal": 2500}
    events = [registered(shares), made("municipal", day(20), HALF), made("state", day(20)),
              made("federal", day(20))]
    r = run(events, [], now=day(40))
    assert "share_unpaid" not in types(r) and r.state.club_owed == 0
    assert (r.parties[-1].level, r.parties[-1].status) == ("club", "not_participating")


def test_a_later_pledge_never_moves_a_share_deadline() -> None:
    # The municipality pledges MXN 1.00 due in 2030 instead of paying: its share is still
    # due on the agreement's date; the pledge's own late_disbursement waits for 2030.
    events = [e for e in clean_events() if "municipal" not in e.event_id]
    events.append(pledged("municipal", datetime(2030, 1, 1, tzinfo=UTC), 100, "pl_mun_2030"))
    r = run(events)
    f = only(r, "share_unpaid", "municipal")
    assert (f.raised_at, f.amount_at_stake, f.resolved_at) == (day(30), SHARE, None)
    assert "late_disbursement" not in types(r)
    assert r.parties[0].deadline == day(30)


def test_an_earlier_pledge_keeps_its_own_late_disbursement() -> None:
    events = [e for e in clean_events() if "_municipal" not in e.event_id]
    events += [pledged("municipal", day(20)), made("municipal", day(25))]
    r = run(events)
    f = only(r, "late_disbursement")
    assert (f.raised_at, f.resolved_at) == (day(20), day(25))
    assert "share_unpaid" not in types(r)  # paid by the agreement's day 30


# --------------------------------------------------------------------------- issue 15: verification


def verified_at(milestone: str, dated: datetime, published: datetime, outcome: str = "confirmed") -> Evt:
    e = verified(milestone, published, outcome)
    return replace(e, event_id=f"{e.event_id}_{dated.isoformat()}",
                   payload={**e.payload, "verified_at": z(dated)})


def test_a_verification_dated_before_its_report_does_not_count() -> None:
    events = [e for e in clean_events() if not e.event_id.startswith("ev_ver_m1")]
    early = verified_at("m1", day(79), day(85))
    r = run([*events, early])
    f = only(r, "spending_unverified", "m1")
    assert (f.raised_at, f.resolved_at, f.detail["verification"]) == (day(140), None, "none")
    assert r.state.premature_verification_ids == (early.event_id,)
    assert r.milestones[0].status == "reported"
    # Dated at the very instant of the report: not after it either.
    assert "spending_unverified" in types(run([*events, verified_at("m1", day(80), day(85))]))
    # One microsecond after the report: verified (the clean look-alike).
    assert run([*events, verified_at("m1", day(80) + TICK, day(85))]).flags == []


def test_spending_reported_after_the_last_verification_needs_its_own() -> None:
    again = reported("m1", day(120), 40_000_000, n=1)
    events = [*clean_events(), again]
    r = run(events)
    # A stretch of its own, keyed by the report that started it: m1's first flag is not re-opened.
    assert [f.key for f in r.flags] == [f"m1/{again.event_id}"]
    f = only(r, "spending_unverified")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (day(180), None, 40_000_000)
    assert f.detail["verification"] == "before_report"
    assert f.detail["unverified_since"] == format_time(day(120), full_fraction=True)
    assert r.milestones[0].status == "reported"
    r = run([*events, verified("m1", day(181))])
    f = only(r, "spending_unverified")
    assert (f.raised_at, f.resolved_at) == (day(180), day(181))
    assert run([*events, verified("m1", day(130))]).flags == []


def test_a_new_report_never_postpones_an_unverified_one() -> None:
    events = [e for e in clean_events() if not e.event_id.startswith("ev_ver_m1")]
    events.append(reported("m1", day(130), n=1))
    f = only(run(events), "spending_unverified", "m1")
    assert (f.raised_at, f.resolved_at) == (day(140), None)
    # ... and a confirmation of the first report only does not verify the second.
    r = run([*events, verified("m1", day(100))])
    f = only(r, "spending_unverified")
    assert (f.key, f.raised_at) == (f"m1/{events[-1].event_id}", day(190))
    assert f.detail["unverified_since"] == format_time(day(130), full_fraction=True)


def test_regression_a_confirmation_with_a_report_at_the_same_instant_never_reopens_by_the_clock() -> None:
    # Found by test_a_later_clock_never_changes_or_removes_a_flag: m2 reported on day 0 and
    # again on day 61, confirmed on day 61 (not after the second report).  The milestone was
    # never verified, so the flag raised on day 60 stays open; it is not resolved then
    # re-opened when the clock passes day 121.
    events = [registered(), reported("m2", day(0), 0), reported("m2", day(61), 0, n=1), verified("m2", day(61))]
    first = run(events, [], now=None)
    second = run(events, [], now=day(200))
    f = only(first, "spending_unverified", "m2")
    assert (f.raised_at, f.resolved_at) == (day(60), None)
    assert f in second.flags


# --------------------------------------------------------------------------- issue 15: currencies


def reported_in(milestone: str, at: datetime, amount: int, currency: str, rate: str | None) -> Evt:
    e = reported(milestone, at, 0)
    payload = {**e.payload, "spent": {"amount": amount, "currency": currency}}
    if rate is not None:
        payload["fx_rate"] = rate
    return replace(e, event_id=f"ev_fx_{milestone}_{currency}_{at.isoformat()}", payload=payload)


def test_spending_in_another_currency_counts_at_the_stated_rate() -> None:
    # USD 20,000.00 at 17.5 MXN per USD = MXN 350,000.00, above the MXN 250,000.00 received.
    usd = reported_in("m1", day(50), 2_000_000, "USD", "17.5")
    r = run([registered(), usd], now=day(55))
    f = only(r, "spending_above_funds")
    assert (f.amount_at_stake, f.currency, f.raised_at) == (10_000_000, "MXN", day(50))
    assert r.state.spent == 35_000_000 and r.state.spent_unconverted == {}
    assert r.milestones[0].spent == 35_000_000
    # Converted exactly and rounded down: USD 0.03 at 17.123456 = MXN 0.51370368 -> 51 centavos.
    tiny = reported_in("m1", day(50), 3, "USD", "17.123456")
    assert run([registered(), tiny], now=day(55)).state.spent == 51
    # A rate into a currency with no minor unit: JPY 1,000 at 0.1155 MXN per JPY = MXN 115.50.
    jpy = reported_in("m1", day(50), 1_000, "JPY", "0.1155")
    assert run([registered(), jpy], now=day(55)).state.spent == 11_550
    # A code with no ISO 4217 minor unit cannot be converted, rate or not: shown, flagged.
    odd = reported_in("m1", day(50), 1_000, "XXX", "2")
    r = run([registered(), odd], now=day(55))
    assert r.state.spent_unconverted == {"XXX": 1_000} and only(r, "fx_rate_undisclosed").key == odd.event_id


def test_spending_in_another_currency_without_a_rate_is_flagged_not_dropped() -> None:
    usd = reported_in("m1", day(50), 2_000_000, "USD", None)
    r = run([registered(), usd], now=day(55))
    f = only(r, "fx_rate_undisclosed")
    assert (f.key, f.accountable, f.severity) == (usd.event_id, CLUB, "medium")
    assert (f.amount_at_stake, f.currency, f.raised_at, f.resolved_at) == (2_000_000, "USD", day(50), None)
    assert f.detail["fx_rate"] == "undisclosed"
    assert r.state.spent == 0 and r.state.spent_unconverted == {"USD": 2_000_000}
    assert r.state.unconverted_event_ids == (usd.event_id,)
    assert r.milestones[0].status == "reported"  # a report all the same: it resolves overdue
    # It still needs its verification.
    assert "spending_unverified" in types(run([registered(), usd], now=day(111)))


def test_a_disbursement_in_another_currency_counts_at_its_rate_or_is_flagged() -> None:
    base = [e for e in clean_events() if "_federal" not in e.event_id]
    usd = made("federal", day(20), 1_250_000)
    usd = replace(usd, payload={**usd.payload, "amount": {"amount": 1_250_000, "currency": "USD"},
                                "fx_rate": "20"})
    r = run([*base, pledged("federal", day(30)), usd])
    assert r.flags == [] and r.state.disbursed == 3 * SHARE
    bare = replace(usd, payload={k: v for k, v in usd.payload.items() if k != "fx_rate"})
    r = run([*base, pledged("federal", day(30)), bare])
    f = only(r, "fx_rate_undisclosed")
    assert (f.accountable, f.currency, f.amount_at_stake) == ("fed_bienestar", "USD", 1_250_000)
    assert only(r, "share_unpaid", "federal").amount_at_stake == SHARE


# --------------------------------------------------------------------------- issue 15: cancellation

COMMITTEE = "cmt_jerez"


def owned(e: Evt) -> Evt:
    return replace(e, publisher_id=COMMITTEE)


def cancelled(at: datetime, returns: dict[str, int], *, eid: str = "ev_cancel",
              publisher: str = COMMITTEE, log_index: int | None = 50) -> Evt:
    payload = {
        "project_id": PID,
        "cancelled_at": z(at),
        "returns": [{"party": p, "amount": mxn(a)} for p, a in returns.items()],
    }
    return Evt(eid, "project.cancelled", at, log_index, payload, publisher)


def returned(party: str, at: datetime, amount: int, n: int = 0, publisher: str = COMMITTEE) -> Evt:
    payload = {"project_id": PID, "party": party, "amount": mxn(amount), "returned_at": z(at)}
    return Evt(f"ev_ret_{party}_{n}_{at.isoformat()}", "project.funds_returned", at, None, payload, publisher)


def cancelled_project() -> list[Evt]:
    """Everyone paid by day 20, nothing spent; cancelled on day 60: all of it goes back."""
    events = [owned(registered())]
    for level in PARTIES:
        events += [pledged(level, day(30)), made(level, day(20))]
    return [*events, cancelled(day(60), {"club": SHARE, **dict.fromkeys(PARTIES, SHARE)})]


def test_funds_unreturned_after_the_return_period_until_returned_in_full() -> None:
    deadline = day(60) + TH.funds_return_period
    events = [*cancelled_project(), *(returned(p, day(70), SHARE) for p in ("club", "municipal", "state"))]
    events.append(returned("federal", day(80), 10_000_000))
    r = run(events, now=deadline)
    assert r.flags == [] and r.next_deadline == deadline + TICK
    r = run(events, now=deadline + TICK)
    f = only(r, "funds_unreturned")
    assert (f.key, f.accountable, f.severity, f.amount_at_stake) == ("federal", CLUB, "high", 15_000_000)
    assert (f.raised_at, f.resolved_at, f.detail["returned"]) == (deadline, None, 10_000_000)
    assert r.state.cancelled_at == day(60) and r.state.funds_returned == 85_000_000
    assert r.state.funds_received == 15_000_000
    r = run([*events, returned("federal", day(100), 15_000_000, n=1)])
    f = only(r, "funds_unreturned")
    assert (f.raised_at, f.resolved_at, f.amount_at_stake) == (deadline, day(100), 15_000_000)


def test_a_complete_return_at_the_deadline_is_on_time() -> None:
    deadline = day(60) + TH.funds_return_period
    events = [*cancelled_project(), *(returned(p, deadline, SHARE) for p in ("club", *PARTIES))]
    assert run(events).flags == []
    nothing = run(cancelled_project())
    assert {f.key for f in nothing.flags if f.flag_type == "funds_unreturned"} == {"club", *PARTIES}


def test_after_a_cancellation_deadlines_stop_and_open_ones_close() -> None:
    # Nobody but the club paid; m1 is due on day 90, the shares on day 30.
    events = [owned(registered()), *(pledged(level, day(50)) for level in PARTIES)]
    events.append(cancelled(day(40), {"club": SHARE}))
    r = run(events, [contribution(day(10))])
    shares = [f for f in r.flags if f.flag_type == "share_unpaid"]
    assert {f.key for f in shares} == set(PARTIES)
    for f in shares:  # opened on day 30, closed by the cancellation
        assert (f.raised_at, f.resolved_at, f.detail["resolved_by"]) == (day(30), day(40), "project.cancelled")
    # No milestone_overdue (m1 due day 90), no late_disbursement (due day 50), no
    # funds_without_milestone (day 130): those deadlines fall after the cancellation.
    assert types(r) == {"share_unpaid", "funds_unreturned"}


def test_only_the_registering_committee_cancels_or_returns() -> None:
    base = cancelled_project()[:-1]
    rogue = cancelled(day(60), {"club": SHARE}, eid="ev_rogue", publisher="cmt_otro")
    r = run([*base, rogue])
    f = only(r, "authority_violation")
    assert (f.key, f.accountable, f.detail["reason"]) == ("ev_rogue", "cmt_otro", "not_subject_owner")
    assert r.state.cancelled_at is None
    early = cancelled(T0 - timedelta(days=1), {"club": SHARE}, eid="ev_early")
    f = only(run([*base, early]), "authority_violation")
    assert (f.key, f.detail["reason"], f.detail["path"]) == ("ev_early", "time_before_origin", "/payload/cancelled_at")
    fake = returned("federal", day(70), SHARE, publisher="gob_otro")
    r = run([*cancelled_project(), fake], now=day(91))
    assert only(r, "authority_violation").key == fake.event_id
    assert r.state.funds_returned == 0


def test_the_first_cancellation_in_log_order_stands() -> None:
    second = cancelled(day(55), {"club": 1}, eid="ev_cancel_2", log_index=60)
    r = run([*cancelled_project(), second], now=day(91))
    assert r.state.cancellation_event_id == "ev_cancel"
    assert r.state.superseded_cancellation_ids == ("ev_cancel_2",)
    assert r.state.returns_due == {"club": SHARE, **dict.fromkeys(PARTIES, SHARE)}
