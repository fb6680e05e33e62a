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

from schemas.registry import signature_key
from stream_processors.gate.decision import (
    AUTHENTICATED_REJECTIONS,
    INTEGRITY_REASONS,
    needs_registry_reload,
)
from stream_processors.integrity import integrity_spec
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
    assert outcomes(d) == [
        ("rejected", "key_expired"), ("accepted", None), ("rejected", "key_not_yet_valid"),
        ("rejected", "key_revoked"), ("accepted", None), ("rejected", "publisher_revoked"),
    ]
    assert {x.reason for x in d.integrity()} == {"key_expired", "key_revoked", "publisher_revoked"}
    assert all(INTEGRITY_REASONS[x.reason][0] == "revoked_key_used" for x in d.integrity())


def test_event_time_out_of_range(world: World) -> None:
    ahead = world.sign(OP, "transfer.sent", event_time=NOW + LIMITS.max_future_skew + timedelta(seconds=1))
    just = world.sign(OP, "transfer.sent", event_time=NOW + LIMITS.max_future_skew)
    world_old = World()
    world_old.register(OP, "operator", valid_from="2000-01-01T00:00:00Z")
    old = world_old.sign(OP, "transfer.sent", event_time=NOW - LIMITS.max_age - timedelta(seconds=1))
    d = decide(batch(ahead, just), world.registry)
    assert outcomes(d) == [("rejected", "time_out_of_range"), ("accepted", None)]
    assert d.decisions[0].message == f"event_time {ahead.event_time} is more than 0:05:00 in the future"
    (x,) = decide(batch(old), world_old.registry).decisions
    assert (x.reason, x.message) == ("time_out_of_range", f"event_time {old.event_time} is older than 3650 days")
    assert d.integrity() == []


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
