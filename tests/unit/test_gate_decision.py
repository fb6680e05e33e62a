"""The ingestion gate's pure decision (``decide_batch``), with real Ed25519 keys.

No broker, no database: what the log already holds is a ``LogKnowledge``
value, the registry a ``TrustRegistry`` value, signature verdicts a mapping.
The integration tests (test_end_to_end, test_integrity, test_hostile) run the
same decision on the real platform.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from schemas.envelope import Envelope
from schemas.registry import signature_key
from stream_processors.gate.decision import (
    AUTHENTICATED_REJECTIONS,
    INTEGRITY_REASONS,
    Decision,
    needs_registry_reload,
)
from stream_processors.integrity import integrity_spec, late_spec
from stream_processors.rules.authority import authority_flag
from tests.gate_builder import LIMITS, NOW, World, batch, decide, key_for, logged, outcomes
from tests.unit.test_schemas_roundtrip import sample

OP = "mto-remesas-sol"
OTHER_OP = "mto-envios-luna"
CLUB = "club.jerez-zac"
GOV = "gov.mx-zac-jerez"


@pytest.fixture
def world() -> World:
    w = World()
    w.register(OP, "operator")
    w.register(OTHER_OP, "operator")
    w.register(CLUB, "committee")
    w.register(GOV, "government", party={"level": "municipal", "id": "mx-zac-020"})
    return w


def _disbursement(party_id: str) -> dict[str, object]:
    p = sample("disbursement.made")
    p["party_id"] = party_id
    return p


# --- accepted, duplicates, equivocation, sequence reuse -----------------------------------


def test_new_events_are_accepted_in_order_and_logged_with_their_indices(world: World) -> None:
    a, b, c = (world.sign(OP, "transfer.sent") for _ in range(3))
    d = decide(batch(a, b, c), world.registry)
    assert outcomes(d) == [("accepted", None)] * 3
    assert [x.envelope for x in d.accepted()] == [a, b, c]
    assert all(x.log_index is None for x in d.decisions)  # not appended yet
    assert [x.log_index for x in d.logged([10, 11, 12]).decisions] == [10, 11, 12]
    assert d.integrity() == [] and d.registry is world.registry and d.applied == ()
    with pytest.raises(ValueError):
        d.logged([10])


def test_the_same_bytes_again_are_a_duplicate_of_the_logged_event(world: World) -> None:
    e = world.sign(OP, "transfer.sent")
    d = decide(batch(e), world.registry, logged(e, first_index=41))
    (x,) = d.decisions
    assert (x.outcome, x.reason, x.log_index) == ("duplicate", "duplicate", 41)
    assert d.accepted() == [] and d.duplicates() == [x] and d.integrity() == []
    # a duplicate is not news about the publisher's numbering
    assert d.sequence_evidence() == []


def test_the_same_bytes_twice_in_one_batch_are_accepted_once(world: World) -> None:
    e = world.sign(OP, "transfer.sent")
    d = decide(batch(e, e), world.registry)
    assert outcomes(d) == [("accepted", None), ("duplicate", "duplicate")]
    assert d.decisions[1].log_index is None and len(d.accepted()) == 1


def test_a_duplicate_is_acknowledged_even_after_its_key_was_revoked(world: World) -> None:
    e = world.sign(OP, "transfer.sent", event_time=NOW - timedelta(days=2))
    world.revoke(OP, NOW - timedelta(days=3))
    assert outcomes(decide(batch(e), world.registry, logged(e))) == [("duplicate", "duplicate")]


def test_the_same_id_with_other_bytes_is_equivocation(world: World) -> None:
    first = world.sign(OP, "transfer.sent")
    p = sample("transfer.sent")
    p["fee"] = {"amount": 1, "currency": "USD"}
    other = world.sign(OP, "transfer.sent", p, seq=first.seq, event_id=first.event_id)
    d = decide(batch(other), world.registry, logged(first))
    (x,) = d.decisions
    assert (x.outcome, x.reason) == ("rejected", "equivocation")
    assert "already logged with different content" in x.message
    assert d.integrity() == [x] and INTEGRITY_REASONS[x.reason] == ("equivocation", "critical")
    spec = integrity_spec(x)
    assert spec is not None and (spec.accountable, spec.key) == (OP, first.event_id)
    # within one batch too
    assert outcomes(decide(batch(first, other), world.registry)) == [("accepted", None), ("rejected", "equivocation")]


def test_a_sequence_number_reused_by_another_event_is_refused(world: World) -> None:
    first = world.sign(OP, "transfer.sent")
    again = world.sign(OP, "transfer.paid_out", seq=first.seq)
    d = decide(batch(again), world.registry, logged(first))
    (x,) = d.decisions
    assert (x.outcome, x.reason) == ("rejected", "seq_reused")
    assert x.message == f"sequence number {first.seq} of {OP} already belongs to event {first.event_id}"
    assert d.integrity() == [x]
    assert outcomes(decide(batch(first, again), world.registry)) == [("accepted", None), ("rejected", "seq_reused")]
    # another publisher's number is its own
    assert outcomes(decide(batch(world.sign(OTHER_OP, "transfer.sent", seq=first.seq)), world.registry,
                           logged(first))) == [("accepted", None)]


# --- authentication and authorisation ---------------------------------------------------------


def test_unknown_publisher_and_unknown_key(world: World) -> None:
    stranger = world.sign("mto-nadie", "transfer.sent")
    wrong_key = world.sign(OP, "transfer.sent", key=key_for("not-ops-key"))
    d = decide(batch(stranger, wrong_key), world.registry)
    assert outcomes(d) == [("rejected", "unknown_publisher"), ("rejected", "unknown_key")]
    # nobody to blame for an unknown publisher; an unknown key is a forgery in OP's name
    assert d.integrity() == [d.decisions[1]]
    spec = integrity_spec(d.decisions[1])
    assert spec is not None and (spec.flag_type, spec.accountable) == ("forged_signature", "unattributed")


def test_a_forged_signature_is_a_forgery_never_the_named_publishers_misconduct(world: World) -> None:
    genuine = world.sign(OP, "transfer.sent")
    # bytes changed after signing, under OP's own key id
    p = sample("transfer.sent")
    p["fee"] = {"amount": 0, "currency": "USD"}
    forged = replace(genuine, payload=p, _body=b"")  # re-canonicalized body, OP's old signature
    # a forgery claiming a role OP does not have, a revoked key, a reused number, a logged id
    forged_role = replace(world.sign(OP, "project.registered"), signature=genuine.signature)
    forged_seq = replace(world.sign(OP, "transfer.paid_out", seq=genuine.seq), signature=b"\x00" * 64)
    forged_equivocation = replace(genuine, payload=p, _body=b"", signature=b"\x01" * 64)
    d = decide(batch(forged, forged_role, forged_seq, forged_equivocation), world.registry, logged(genuine))
    assert outcomes(d) == [("rejected", "bad_signature")] * 4
    for x in d.integrity():
        spec = integrity_spec(x)
        assert spec is not None
        assert (spec.flag_type, spec.accountable, spec.subject_id) == ("forged_signature", "unattributed", OP)
    # nor do forgeries open or close gaps in OP's numbering
    assert d.sequence_evidence() == []
    # and a forgery of a revoked key reads as a forgery too
    world.revoke(OP, NOW - timedelta(days=10))
    late = world.sign(OP, "transfer.sent", key=key_for("thief"), event_time=NOW - timedelta(days=1))
    late = replace(late, key_id=world.key_id(OP), _body=b"")  # claims OP's revoked key
    assert outcomes(decide(batch(late), world.registry)) == [("rejected", "bad_signature")]


def test_role_not_allowed_and_party_mismatch(world: World) -> None:
    d = decide(batch(world.sign(OP, "project.registered"), world.sign(GOV, "disbursement.made",
                                                                      _disbursement("mx-zac-099")),
                     world.sign(GOV, "disbursement.made", _disbursement("mx-zac-020"))), world.registry)
    assert outcomes(d) == [("rejected", "role_not_allowed"), ("rejected", "party_mismatch"), ("accepted", None)]
    for x in d.integrity():
        spec = integrity_spec(x)
        assert spec is not None and (spec.flag_type, spec.accountable) == ("role_violation", x.publisher_id)


def test_revoked_expired_and_not_yet_valid_keys(world: World) -> None:
    old_key = world.keys[OP]
    world.rotate(OP, key_for("op-second-key"), valid_from=NOW - timedelta(days=20),
                 old_key_valid_until=NOW - timedelta(days=10))
    expired = world.sign(OP, "transfer.sent", key=old_key, event_time=NOW - timedelta(days=5))
    before_rotation = world.sign(OP, "transfer.sent", key=old_key, event_time=NOW - timedelta(days=15))
    too_early = world.sign(OP, "transfer.sent", event_time=NOW - timedelta(days=25))
    world.revoke(OTHER_OP, NOW - timedelta(days=2), key_id=world.key_id(OTHER_OP))
    revoked = world.sign(OTHER_OP, "transfer.sent", event_time=NOW - timedelta(days=1))
    signed_before = world.sign(OTHER_OP, "transfer.sent", event_time=NOW - timedelta(days=3))
    world.revoke(CLUB, NOW - timedelta(days=2))
    publisher_revoked = world.sign(CLUB, "project.registered", event_time=NOW - timedelta(hours=2))
    d = decide(batch(expired, before_rotation, too_early, revoked, signed_before, publisher_revoked), world.registry)
    # Revocation and rotation are judged at arrival too (issue 13): events dated
    # before them but arriving after them are refused like the others.
    assert outcomes(d) == [
        ("rejected", "key_expired"), ("rejected", "key_expired"), ("rejected", "key_not_yet_valid"),
        ("rejected", "key_revoked"), ("rejected", "key_revoked"), ("rejected", "publisher_revoked"),
    ]
    assert {x.reason for x in d.integrity()} == {"key_expired", "key_revoked", "publisher_revoked"}
    assert all(INTEGRITY_REASONS[x.reason][0] == "revoked_key_used" for x in d.integrity())
    # Had they arrived before the revocation and the rotation's end, they would stand.
    earlier = NOW - timedelta(days=12)
    assert outcomes(decide(batch(before_rotation), world.registry, now=earlier)) == [("accepted", None)]
    assert outcomes(decide(batch(signed_before), world.registry, now=NOW - timedelta(days=2, hours=12))) == [
        ("accepted", None)]


def test_a_revoked_key_that_backdates_is_refused_whatever_time_it_claims(world: World) -> None:
    # Regression (issue 13): a key revoked now still signed events dated before
    # the revocation, and they were accepted (revocation was judged by claimed time).
    world.revoke(OP, NOW - timedelta(minutes=1), key_id=world.key_id(OP))
    for days in (1, 7, 29):
        backdated = world.sign(OP, "transfer.sent", event_time=NOW - timedelta(days=days))
        (x,) = decide(batch(backdated), world.registry).decisions
        assert (x.outcome, x.reason) == ("rejected", "key_revoked") and "arrived at" in x.message


def test_event_time_out_of_range_outside_the_declared_backfill(world: World) -> None:
    ahead = world.sign(OP, "transfer.sent", event_time=NOW + LIMITS.max_future_skew + timedelta(seconds=1))
    just = world.sign(OP, "transfer.sent", event_time=NOW + LIMITS.max_future_skew)
    d = decide(batch(ahead, just), world.registry)
    assert outcomes(d) == [("rejected", "time_out_of_range"), ("accepted", None)]
    assert d.decisions[0].message == f"event_time {ahead.event_time} is more than 0:05:00 in the future"
    assert d.integrity() == []
    # MAX_EVENT_AGE (30 days) applies outside the publisher's declared backfill:
    # valid since 2000, history declared up to 60 days ago.
    w = World()
    w.register(OP, "operator", valid_from="2000-01-01T00:00:00Z", backfill_until=NOW - timedelta(days=60))
    old = w.sign(OP, "transfer.sent", event_time=NOW - LIMITS.max_age - timedelta(seconds=1))
    history = w.sign(OP, "transfer.sent", event_time=NOW - timedelta(days=400))
    (x, y) = decide(batch(old, history), w.registry).decisions
    assert (x.reason, x.message) == ("time_out_of_range", f"event_time {old.event_time} is more than 30 days before "
                                     "its arrival at 2025-06-01T12:00:00Z, outside the publisher's declared backfill")
    assert (y.outcome, y.late) == ("accepted", False)  # declared history: neither too old nor late


def test_late_publication_is_accepted_and_flagged_outside_the_backfill() -> None:
    w = World()
    w.register(OP, "operator", arrived_at=NOW - timedelta(days=90))  # backfill ends 90 days ago
    late = w.sign(OP, "transfer.sent", event_time=NOW - LIMITS.late_publication - timedelta(seconds=1))
    on_time = w.sign(OP, "transfer.sent", event_time=NOW - LIMITS.late_publication)
    backfill = w.sign(OP, "transfer.sent", event_time=NOW - timedelta(days=91))
    d = decide(batch(late, on_time, backfill), w.registry)
    assert outcomes(d) == [("accepted", None)] * 3
    assert d.late() == [d.decisions[0]] and d.integrity() == []
    spec = late_spec(d.decisions[0], NOW)
    assert spec is not None
    assert (spec.flag_type, spec.subject_kind, spec.subject_id, spec.key, spec.accountable, spec.severity) == (
        "published_late", "publisher", OP, late.event_id, OP, "low")
    assert spec.detail["delay_seconds"] == int((LIMITS.late_publication + timedelta(seconds=1)).total_seconds())
    assert late_spec(d.decisions[1], NOW) is None
    # The authority's own events are judged by arrival alone.
    reg = w.registration("mto-nuevo", "operator")
    old_reg = w.registry_event("publisher.revoked", {"publisher_id": OP, "key_id": None,
                                                    "revoked_at": "2030-01-01T00:00:00Z", "reason_code": "retired"},
                               event_time=NOW - timedelta(days=400))
    assert outcomes(decide(batch(reg, old_reg), w.registry)) == [("accepted", None)] * 2


def test_unparseable_bytes_are_rejected_with_the_parsers_reason(world: World) -> None:
    d = decide(batch(b"{not json", b"x" * (LIMITS.max_event_bytes + 1)), world.registry)
    assert [x.outcome for x in d.decisions] == ["rejected", "rejected"]
    assert all(x.reason and x.message and x.envelope is None for x in d.decisions)
    assert d.integrity() == [] and d.sequence_evidence() == []


# --- the registry in the batch ------------------------------------------------------------


def test_a_registration_and_the_new_publishers_first_events_in_one_batch(world: World) -> None:
    before = world.registry.copy()
    reg = world.registration("mto-nuevo", "operator")
    first = world.sign("mto-nuevo", "transfer.sent")
    assert needs_registry_reload([first], world.registry)
    assert not needs_registry_reload([first, reg], world.registry)
    d = decide(batch(first, reg), world.registry)
    assert outcomes(d) == [("accepted", None), ("accepted", None)]
    # the registration goes first into the log; the caller's registry is untouched
    assert [x.envelope for x in d.accepted()] == [reg, first]
    assert d.applied == (reg,)
    assert d.registry.knows("mto-nuevo", first.key_id) and not world.registry.knows("mto-nuevo", first.key_id)
    assert world.registry.to_state() == before.to_state()
    assert [x.log_index for x in d.logged([7, 8]).decisions] == [8, 7]


def test_a_registry_event_refused_when_applied(world: World) -> None:
    again = world.registration(OP, "operator")  # OP is already registered
    d = decide(batch(again), world.registry)
    (x,) = d.decisions
    assert (x.outcome, x.reason) == ("rejected", "already_registered")
    assert d.registry is world.registry or d.registry.to_state() == world.registry.to_state()
    assert d.sequence_evidence() == [again]  # the authority really sent it


def test_needs_registry_reload_only_for_unknown_publishers_and_keys(world: World) -> None:
    assert not needs_registry_reload([world.sign(OP, "transfer.sent")], world.registry)
    assert needs_registry_reload([world.sign("mto-nadie", "transfer.sent")], world.registry)
    assert needs_registry_reload([world.sign(OP, "transfer.sent", key=key_for("new"))], world.registry)
    # the authority comes from configuration: reloading cannot teach anything about it
    forged_authority = world.sign(world.authority, "transfer.sent", key=key_for("new"))
    assert not needs_registry_reload([forged_authority], world.registry)


# --- signatures verified ahead, sequences ------------------------------------------------------


def test_signature_verdicts_are_a_value_not_registry_state(world: World) -> None:
    e = world.sign(OP, "transfer.sent")
    pk = world.registry.signature_jobs([e])[0][1]
    refused = decide(batch(e), world.registry, signatures={signature_key(e, pk): False})
    assert outcomes(refused) == [("rejected", "bad_signature")]
    # nothing was remembered: without the verdict the signature is verified again
    assert outcomes(decide(batch(e), world.registry)) == [("accepted", None)]
    # a verdict about other bytes or another key does not apply
    other = world.sign(OP, "transfer.sent")
    assert outcomes(decide(batch(other), world.registry, signatures={signature_key(e, pk): False})) == [
        ("accepted", None)]


def test_authenticated_rejections_count_for_sequence_gaps(world: World) -> None:
    accepted = world.sign(OP, "transfer.sent")
    role = world.sign(OP, "project.registered")
    late = world.sign(OP, "transfer.sent", event_time=NOW + timedelta(hours=1))
    forged = world.sign(OP, "transfer.sent", key=key_for("someone"))
    unknown = world.sign("mto-nadie", "transfer.sent")
    d = decide(batch(accepted, role, late, forged, unknown, accepted), world.registry)
    assert [x.reason or x.outcome for x in d.decisions] == [
        "accepted", "role_not_allowed", "time_out_of_range", "unknown_key", "unknown_publisher", "duplicate"]
    assert d.sequence_evidence() == [accepted, role, late]
    assert {"role_not_allowed", "time_out_of_range"} <= AUTHENTICATED_REJECTIONS


# --- authority over subjects (issue 13) ---------------------------------------------------------

AGENT = "agente.pagos-zac"
MIRROR = "espejo.jerez"


@pytest.fixture
def owners(world: World) -> World:
    world.register(AGENT, "payout_agent")
    world.register(MIRROR, "verifier")
    # A club committee that may also verify (a mirror club for its sister projects).
    world.register("comite.verifica", "committee", roles=["project.registered", "milestone.reported",
                                                          "milestone.verified"])
    return world


def _authority(d: Decision) -> tuple[str, str, str, str]:
    spec = integrity_spec(d)
    assert spec is not None and d.envelope is not None
    return (spec.flag_type, spec.subject_kind, spec.key, spec.accountable)


def test_a_transfer_sent_naming_another_operator_is_refused_and_flagged_on_the_intruder(owners: World) -> None:
    # Regression: operator B published a transfer.sent naming operator A, and
    # A became the accountable party of its flags.
    p = owners.payload(OTHER_OP, "transfer.sent")
    p["operator"] = OP
    foreign = owners.sign(OTHER_OP, "transfer.sent", p)
    (x,) = decide(batch(foreign), owners.registry).decisions
    assert (x.outcome, x.reason, x.field) == ("rejected", "not_subject_owner", "/payload/operator")
    assert OP not in x.message and p["transfer_id"] not in x.message  # a path and a rule, never a value
    assert _authority(x) == ("authority_violation", "transfer", foreign.event_id, OTHER_OP)
    spec = integrity_spec(x)
    assert spec is not None and spec.subject_id == p["transfer_id"] and spec.severity == "high"
    assert spec.detail["path"] == "/payload/operator" and spec.detail["raised_by"] == "gate"
    # the same flag id the rules give the event if it reached the log first
    assert spec.flag_id == authority_flag("transfer", p["transfer_id"], foreign.event_id, OTHER_OP,
                                          "not_subject_owner", "/payload/operator", foreign.time()).flag_id


def _payout(world: World, publisher: str, sent: Envelope, **kw: object) -> Envelope:
    p = sample("transfer.paid_out")
    p["transfer_id"] = sent.payload["transfer_id"]
    p["paid_at"] = str(kw.pop("paid_at", sent.event_time))
    return world.sign(publisher, "transfer.paid_out", p, **kw)  # type: ignore[arg-type]


def test_a_payout_by_another_operator_is_refused_once_the_transfer_is_known(owners: World) -> None:
    # Regression: operator B's payout for A's transfer was accepted and silenced
    # its late and missing payout flags.
    sent = owners.sign(OP, "transfer.sent")
    intruder = _payout(owners, OTHER_OP, sent)
    (x,) = decide(batch(intruder), owners.registry, logged(sent)).decisions
    assert (x.reason, x.field) == ("not_subject_owner", "/header/publisher_id")
    assert _authority(x) == ("authority_violation", "transfer", intruder.event_id, OTHER_OP)
    # in the same batch, after the transfer
    assert outcomes(decide(batch(sent, intruder), owners.registry))[1] == ("rejected", "not_subject_owner")
    # Not known yet: accepted; the rules disregard it once the transfer arrives.
    assert outcomes(decide(batch(intruder), owners.registry)) == [("accepted", None)]


def test_payout_agents_named_by_the_operator_may_pay_and_only_pay(owners: World) -> None:
    p = owners.payload(OP, "transfer.sent")
    p["payout_agents"] = [AGENT]
    sent = owners.sign(OP, "transfer.sent", p)
    paid = _payout(owners, AGENT, sent)
    own = _payout(owners, OP, sent)
    d = decide(batch(paid, own), owners.registry, logged(sent))
    assert outcomes(d) == [("accepted", None)] * 2
    other = owners.sign(OP, "transfer.sent")
    assert outcomes(decide(batch(_payout(owners, AGENT, other)), owners.registry, logged(other))) == [
        ("rejected", "not_subject_owner")]
    cancel = sample("transfer.cancelled")
    cancel["transfer_id"] = p["transfer_id"]
    cancel["cancelled_at"] = sent.event_time
    owners.register(AGENT + "-op", "operator")
    refused = owners.sign(AGENT + "-op", "transfer.cancelled", cancel)
    assert outcomes(decide(batch(refused), owners.registry, logged(sent))) == [("rejected", "not_subject_owner")]


def test_a_second_registration_is_refused_whoever_sends_it_the_first_in_the_log_wins(owners: World) -> None:
    # Regression: a second, backdated transfer.sent for an existing id replaced the first.
    first = owners.sign(OP, "transfer.sent")
    p = dict(first.payload)
    p["receive_promised"] = {"amount": 1, "currency": "MXN"}
    backdated = owners.sign(OP, "transfer.sent", p, event_time=NOW - timedelta(days=2))
    (x,) = decide(batch(backdated), owners.registry, logged(first)).decisions
    assert (x.reason, x.field) == ("subject_exists", "/payload/transfer_id")
    assert _authority(x) == ("authority_violation", "transfer", backdated.event_id, OP)
    # within one batch, the first in batch order wins whatever time either claims
    assert outcomes(decide(batch(first, backdated), owners.registry)) == [
        ("accepted", None), ("rejected", "subject_exists")]
    assert outcomes(decide(batch(backdated, first), owners.registry)) == [
        ("accepted", None), ("rejected", "subject_exists")]
    # the very same bytes are a duplicate, not a second registration
    assert outcomes(decide(batch(first), owners.registry, logged(first))) == [("duplicate", "duplicate")]
    proj = owners.sign(CLUB, "project.registered")
    again = owners.sign(CLUB, "project.registered", dict(proj.payload))
    (y,) = decide(batch(again), owners.registry, logged(proj)).decisions
    assert (y.reason, y.field) == ("subject_exists", "/payload/project_id")


def test_a_settlement_dated_before_the_transfer_it_settles_is_refused(owners: World) -> None:
    sent = owners.sign(OP, "transfer.sent", event_time=NOW - timedelta(hours=2))
    early = _payout(owners, OP, sent, paid_at="2025-06-01T09:59:59Z")
    published_early = _payout(owners, OP, sent, event_time=NOW - timedelta(hours=3))
    fine = _payout(owners, OP, sent)
    d = decide(batch(early, published_early, fine), owners.registry, logged(sent))
    assert [(x.reason, x.field) for x in d.decisions] == [
        ("time_before_origin", "/payload/paid_at"), ("time_before_origin", "/header/event_time"), ("", "")]
    assert _authority(d.decisions[0]) == ("authority_violation", "transfer", early.event_id, OP)


def test_projects_belong_to_the_committee_bound_to_their_club(owners: World) -> None:
    # Regression: a committee could register another club's project.
    p = owners.payload(CLUB, "project.registered")
    p["club_id"] = "club.otro"
    (x,) = decide(batch(owners.sign(CLUB, "project.registered", p)), owners.registry).decisions
    assert (x.reason, x.field) == ("not_subject_owner", "/payload/club_id")
    assert integrity_spec(x) is not None and integrity_spec(x).subject_kind == "project"  # type: ignore[union-attr]
    # ... and report on any project
    proj = owners.sign(CLUB, "project.registered")
    rep = sample("milestone.reported")
    rep["project_id"] = proj.payload["project_id"]
    foreign = owners.sign("comite.verifica", "milestone.reported", rep)
    assert outcomes(decide(batch(foreign), owners.registry, logged(proj))) == [("rejected", "not_subject_owner")]
    assert outcomes(decide(batch(owners.sign(CLUB, "milestone.reported", rep)), owners.registry,
                           logged(proj))) == [("accepted", None)]


def test_only_a_verifier_the_project_names_verifies_never_its_committee(owners: World) -> None:
    # Regression: a committee verified its own milestone reports; verifier_id was never checked.
    p = owners.payload("comite.verifica", "project.registered")
    p["verifiers"] = [MIRROR, "comite.verifica"]
    proj = owners.sign("comite.verifica", "project.registered", p)

    def verification(publisher: str, verifier_id: str | None = None) -> Envelope:
        v = sample("milestone.verified")
        v["project_id"] = p["project_id"]
        v["verifier_id"] = verifier_id or publisher
        return owners.sign(publisher, "milestone.verified", v)

    selfie, mirror = verification("comite.verifica"), verification(MIRROR)
    owners.register("espejo.otro", "verifier")
    stranger, impostor = verification("espejo.otro"), verification("espejo.otro", MIRROR)
    d = decide(batch(selfie, mirror, stranger, impostor), owners.registry, logged(proj))
    assert [(x.reason or x.outcome, x.field) for x in d.decisions] == [
        ("not_subject_owner", "/header/publisher_id"), ("accepted", ""),
        ("not_subject_owner", "/header/publisher_id"), ("not_subject_owner", "/payload/verifier_id")]
    # the committee kind no longer verifies by default
    (x,) = decide(batch(owners.sign(CLUB, "milestone.verified")), owners.registry).decisions
    assert x.reason == "role_not_allowed"
    # a verification signed for someone else is refused even before the project is known
    assert outcomes(decide(batch(verification("espejo.otro", MIRROR)), owners.registry)) == [
        ("rejected", "not_subject_owner")]


def test_authority_refusals_are_authenticated_and_registered_subjects_are_reported(owners: World) -> None:
    p = owners.payload(OTHER_OP, "transfer.sent")
    p["operator"] = OP
    foreign = owners.sign(OTHER_OP, "transfer.sent", p)
    sent, proj = owners.sign(OP, "transfer.sent"), owners.sign(CLUB, "project.registered")
    d = decide(batch(foreign, sent, proj), owners.registry)
    assert d.sequence_evidence() == [foreign, sent, proj]
    assert {"not_subject_owner", "subject_exists", "time_before_origin"} <= AUTHENTICATED_REJECTIONS
    subjects = d.logged([5, 6]).subjects()
    assert [(s.kind, s.owner, s.log_index) for s in subjects] == [("transfer", OP, 5), ("project", CLUB, 6)]
    assert subjects[1].club_id == CLUB


def test_only_the_registering_committee_cancels_a_project_or_reports_returns(owners: World) -> None:
    # issue 15.6: project.cancelled and project.funds_returned are the project owner's word.
    owners.register("comite.otro", "committee")
    proj = owners.sign(CLUB, "project.registered", event_time=NOW - timedelta(days=10))
    pid = proj.payload["project_id"]
    cancel = {**sample("project.cancelled"), "project_id": pid,
              "cancelled_at": "2025-05-25T12:00:00Z"}
    back = {**sample("project.funds_returned"), "project_id": pid, "returned_at": "2025-05-30T12:00:00Z"}
    mine = owners.sign(CLUB, "project.cancelled", cancel)
    returned = owners.sign(CLUB, "project.funds_returned", back)
    foreign = owners.sign("comite.otro", "project.cancelled", cancel)
    foreign_return = owners.sign("comite.otro", "project.funds_returned", back)
    before = owners.sign(CLUB, "project.cancelled", {**cancel, "cancelled_at": "2025-05-01T12:00:00Z"})
    d = decide(batch(mine, returned, foreign, foreign_return, before), owners.registry, logged(proj))
    assert [(x.reason or x.outcome, x.field) for x in d.decisions] == [
        ("accepted", ""), ("accepted", ""),
        ("not_subject_owner", "/header/publisher_id"), ("not_subject_owner", "/header/publisher_id"),
        ("time_before_origin", "/payload/cancelled_at")]
    assert _authority(d.decisions[2]) == ("authority_violation", "project", foreign.event_id, "comite.otro")
    # Before the project is known, the gate cannot judge: the rules will.
    assert outcomes(decide(batch(foreign), owners.registry)) == [("accepted", None)]
