"""Authority over subjects in the pure rules: what a publisher may not say is disregarded and flagged.

The gate refuses what it can judge on arrival; an event that reached the log
before its subject's owner was known is judged here, once the owner is known:
it changes nothing and raises ``authority_violation`` (key: the event id,
accountable: its publisher), the very flag the gate would have raised.
Regressions of issue 13 are named after the attack they stop.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from stream_processors.rules import (
    Contribution,
    Evt,
    FlagSpec,
    reconcile_project,
    reconcile_transfer,
)
from stream_processors.rules.authority import authority_flag
from tests.unit import test_rules_projects as prj
from tests.unit import test_rules_transfers as trf

OP, OTHER, AGENT = "op_remesas", "op_rival", "agente_pagos"
COMMITTEE, MIRROR, STRANGER = "comite_jerez", prj.MIRROR, "espejo_otro"
GOV = {level: pid for level, pid in prj.PARTIES.items()}


def by(e: Evt, publisher: str, log_index: int | None = None) -> Evt:
    return replace(e, publisher_id=publisher, log_index=log_index if log_index is not None else e.log_index)


def authority(flags: list[FlagSpec]) -> dict[str, FlagSpec]:
    return {f.key: f for f in flags if f.flag_type == "authority_violation"}


def kinds(flags: list[FlagSpec]) -> set[str]:
    return {f.flag_type for f in flags}


# --- transfers ----------------------------------------------------------------------------------


def sent(**kw: object) -> Evt:
    return by(trf.sent(**kw), OP)  # type: ignore[arg-type]


def test_a_payout_by_another_operator_is_disregarded_and_silences_nothing() -> None:
    # Regression: operator B's payout for A's transfer was counted and silenced
    # its late and missing payout flags.
    intruder = by(trf.payout(trf.AVAIL - timedelta(minutes=5), eid="ev_intruder"), OTHER, 20)
    r = reconcile_transfer(trf.TID, [sent(), intruder], trf.LATER, trf.TH)
    assert r.state.status == "sent" and r.state.paid_amount == 0 and r.state.payout_count == 0
    assert r.state.disregarded_event_ids == ("ev_intruder",)
    assert {"late_payout", "missing_payout", "authority_violation"} <= kinds(r.flags)
    f = authority(r.flags)["ev_intruder"]
    assert (f.subject_kind, f.subject_id, f.accountable, f.severity) == ("transfer", trf.TID, OTHER, "high")
    assert f.detail == {"reason": "not_subject_owner", "path": "/header/publisher_id"}
    assert f.evidence == ("ev_intruder",) and f.raised_at == intruder.event_time
    # The same flag the gate raises when it already knows the owner (one flag id, never two).
    assert f.flag_id == authority_flag("transfer", trf.TID, "ev_intruder", OTHER, "not_subject_owner",
                                       "/header/publisher_id", intruder.event_time).flag_id


def test_a_payout_agent_the_operator_named_may_pay_but_not_cancel() -> None:
    named = replace(sent(), payload={**trf.sent().payload, "payout_agents": [AGENT]})
    paid = by(trf.payout(trf.T0 + timedelta(minutes=20)), AGENT)
    cancel = by(trf.cancelled(trf.T0 + timedelta(minutes=30)), AGENT)
    r = reconcile_transfer(trf.TID, [named, paid, cancel], trf.LATER, trf.TH)
    assert r.state.status == "paid" and r.state.paid_amount == trf.PROMISED
    assert set(authority(r.flags)) == {cancel.event_id}
    # Not named: the same payout is an intrusion.
    r = reconcile_transfer(trf.TID, [sent(), paid], trf.LATER, trf.TH)
    assert r.state.paid_amount == 0 and set(authority(r.flags)) == {paid.event_id}


def test_a_backdated_second_registration_never_replaces_the_first_in_the_log() -> None:
    # Regression: the earliest claimed time won, so a backdated transfer.sent
    # with a smaller promise made a short payout disappear.
    first = by(trf.sent(eid="ev_first"), OP, 10)
    smaller = by(trf.sent(eid="ev_backdated", at=trf.T0 - timedelta(hours=2), promised=300_000), OP, 50)
    paid = by(trf.payout(trf.T0 + timedelta(minutes=20), 300_000), OP)
    for events in ([first, smaller, paid], [paid, smaller, first]):
        r = reconcile_transfer(trf.TID, events, trf.LATER, trf.TH)
        assert r.state.sent_event_id == "ev_first" and r.state.promised_amount == trf.PROMISED
        assert "short_payout" in kinds(r.flags)
        f = authority(r.flags)["ev_backdated"]
        assert f.detail["reason"] == "subject_exists" and f.accountable == OP
    # An event not logged yet sorts after every logged one.
    unlogged = by(trf.sent(eid="ev_unlogged", at=trf.T0 - timedelta(days=1)), OP)
    unlogged = replace(unlogged, log_index=None)
    r = reconcile_transfer(trf.TID, [unlogged, first], trf.LATER, trf.TH)
    assert r.state.sent_event_id == "ev_first" and set(authority(r.flags)) == {"ev_unlogged"}


def test_a_transfer_sent_naming_another_operator_owns_nothing() -> None:
    foreign = by(trf.sent(eid="ev_foreign"), OTHER, 3)  # payload.operator is OP, publisher OTHER
    r = reconcile_transfer(trf.TID, [foreign], trf.LATER, trf.TH)
    assert r.state.status == "pending_sent"
    assert authority(r.flags)["ev_foreign"].detail == {"reason": "not_subject_owner", "path": "/payload/operator"}
    r = reconcile_transfer(trf.TID, [foreign, by(trf.sent(), OP, 9)], trf.LATER, trf.TH)
    assert r.state.sent_event_id == "ev_sent" and set(authority(r.flags)) == {"ev_foreign"}


def test_a_settlement_dated_before_the_transfer_it_settles_is_disregarded() -> None:
    early = by(trf.payout(trf.T0 - timedelta(minutes=1), eid="ev_early"), OP)
    r = reconcile_transfer(trf.TID, [sent(), early], trf.LATER, trf.TH)
    assert r.state.paid_amount == 0 and {"late_payout", "missing_payout"} <= kinds(r.flags)
    assert authority(r.flags)["ev_early"].detail == {"reason": "time_before_origin", "path": "/payload/paid_at"}
    # Paid after the sending, but published (event_time) before it.
    published_early = by(trf.payout(trf.T0 + timedelta(minutes=5), eid="ev_pub_early",
                                    published=trf.T0 - timedelta(seconds=1)), OP)
    r = reconcile_transfer(trf.TID, [sent(), published_early], trf.LATER, trf.TH)
    assert authority(r.flags)["ev_pub_early"].detail["path"] == "/header/event_time"
    refund = by(trf.refunded(trf.T0 - timedelta(hours=1)), OP)
    r = reconcile_transfer(trf.TID, [sent(), refund], trf.LATER, trf.TH)
    assert r.state.status == "sent" and set(authority(r.flags)) == {refund.event_id}


def test_without_publisher_ids_only_the_payload_is_judged() -> None:
    # Events whose publisher is unknown (stored before publishers were recorded).
    r = reconcile_transfer(trf.TID, [trf.sent(), trf.payout(trf.T0 + timedelta(minutes=20))], trf.LATER, trf.TH)
    assert r.state.status == "paid" and not authority(r.flags)


def test_the_operators_contribution_names_its_operator() -> None:
    r = reconcile_transfer(trf.TID, [by(trf.sent(project=True), OP),
                                     by(trf.payout(trf.T0 + timedelta(minutes=20)), OP)], trf.LATER, trf.TH)
    assert r.contribution is not None and r.contribution.operator == OP
    assert r.contribution.evidence[0] == "ev_sent"


# --- projects -------------------------------------------------------------------------------------


def pev(e: Evt, publisher: str, log_index: int | None = None) -> Evt:
    return by(e, publisher, log_index)


def project_events() -> list[Evt]:
    out = [pev(prj.registered(), COMMITTEE, 1)]
    for level in prj.PARTIES:
        out += [pev(prj.pledged(level, prj.day(30)), GOV[level]), pev(prj.made(level, prj.day(20)), GOV[level])]
    out += [pev(prj.reported("m1", prj.day(80)), COMMITTEE), pev(prj.verified("m1", prj.day(100)), MIRROR)]
    return out


def club_money() -> list[Contribution]:
    return [replace(prj.contribution(prj.day(10)), operator=OP)]


def run(events: list[Evt], contributions: list[Contribution] | None = None) -> tuple[object, list[FlagSpec]]:
    r = reconcile_project(prj.PID, events, club_money() if contributions is None else contributions,
                          prj.day(150), prj.TH)
    return r, r.flags


def test_the_projects_own_facts_raise_nothing() -> None:
    _, flags = run(project_events())
    assert flags == []


def test_a_committee_verifying_its_own_report_counts_for_nothing() -> None:
    # Regression: a committee could verify its own milestone reports.
    selfie = prj.verified("m1", prj.day(100))
    selfie = pev(replace(selfie, event_id="ev_selfie", payload={**selfie.payload, "verifier_id": COMMITTEE}),
                 COMMITTEE)
    reg = prj.registered()
    named_self = pev(replace(reg, payload={**reg.payload, "verifiers": [MIRROR, COMMITTEE]}), COMMITTEE, 1)
    events = [named_self, *project_events()[1:-1], selfie]
    _r, flags = run(events)
    assert "spending_unverified" in kinds(flags)  # the report stays unverified
    f = authority(flags)["ev_selfie"]
    assert (f.subject_kind, f.subject_id, f.accountable) == ("project", prj.PID, COMMITTEE)


def test_only_a_verifier_the_project_names_verifies_it() -> None:
    v = prj.verified("m1", prj.day(100))
    stranger = pev(replace(v, event_id="ev_stranger", payload={**v.payload, "verifier_id": STRANGER}), STRANGER)
    signed_for_another = pev(replace(v, event_id="ev_for_another"), STRANGER)  # names MIRROR
    _, flags = run([*project_events()[:-1], stranger, signed_for_another])
    assert authority(flags)["ev_stranger"].detail["path"] == "/header/publisher_id"
    assert authority(flags)["ev_for_another"].detail["path"] == "/payload/verifier_id"
    assert "spending_unverified" in kinds(flags)
    # No verifier named at all: no verification can count.
    reg = prj.registered()
    unnamed = pev(replace(reg, payload={k: v for k, v in reg.payload.items() if k != "verifiers"}), COMMITTEE, 1)
    _, flags = run([unnamed, *project_events()[1:]])
    assert "spending_unverified" in kinds(flags) and len(authority(flags)) == 1


def test_only_the_registering_committee_reports_milestones() -> None:
    foreign = pev(replace(prj.reported("m2", prj.day(85), spent=prj.HALF * 3), event_id="ev_foreign_report"),
                  "comite_otro")
    _, flags = run([*project_events(), foreign])
    assert set(authority(flags)) == {"ev_foreign_report"}
    assert "spending_above_funds" not in kinds(flags)


def test_a_second_registration_of_a_project_is_disregarded_whatever_time_it_claims() -> None:
    later = pev(prj.registered({"club": 9700, "municipal": 100, "state": 100, "federal": 100},
                               at=prj.T0 - timedelta(days=5), eid="ev_rereg"), COMMITTEE, 40)
    r, flags = run([later, *project_events()])
    assert r.state.registered_event_id == "ev_reg" and r.state.registration_count == 2  # type: ignore[attr-defined]
    assert authority(flags)["ev_rereg"].detail["reason"] == "subject_exists"


def test_a_contribution_for_another_club_raises_no_ones_debt() -> None:
    # Regression: a transfer credited to another club's project raised what
    # each government owed it.
    foreign = replace(prj.contribution(prj.day(12), amount=prj.SHARE * 3, tid="trf_fake"),
                      club_id="club_otro", operator=OTHER)
    base, _ = run(project_events())
    r, flags = run(project_events(), [*club_money(), foreign])
    assert r.parties == base.parties  # type: ignore[attr-defined]
    f = authority(flags)["s_trf_fake"]
    assert (f.accountable, f.detail["path"]) == (OTHER, "/payload/destination/club_id")


def test_a_disbursement_dated_before_its_pledge_does_not_count() -> None:
    early = pev(prj.made("municipal", prj.T0 - timedelta(days=1), n=9), GOV["municipal"])
    events = [e for e in project_events() if not (e.event_type == "disbursement.made"
                                                   and e.payload["party_level"] == "municipal")]
    r, flags = run([*events, early], [])
    assert authority(flags)[early.event_id].detail == {"reason": "time_before_origin", "path": "/payload/made_at"}
    assert r.state.disbursed == 2 * prj.SHARE  # type: ignore[attr-defined]
