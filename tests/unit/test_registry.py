"""The trust registry: registration, rotation, revocation and every refusal reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import Envelope, parse_envelope, sign_event
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import VerifierKey, public_key_bytes
from schemas.registry import Party, TrustRegistry
from tests.unit.test_schemas_roundtrip import (
    AUTHORITY,
    COMMITTEE,
    GOV_MUNICIPAL,
    GOV_STATE,
    KEYS,
    OPERATOR,
    PLATFORM,
    VERIFIER,
    key_for,
    sample,
    signed,
    verifier,
)

AUTH_KEY = VerifierKey(AUTHORITY, public_key_bytes(KEYS[AUTHORITY]))
ROTATED = "op.remesas-sol/2"  # name of the operator's second key in the test keyring
_seq = iter(range(1, 10**6))


def registry_event(event_type: str, payload: dict[str, Any], *, key: str = AUTHORITY) -> Envelope:
    return sign_event(
        KEYS[key],
        publisher_id=AUTHORITY,
        event_type=event_type,
        payload=payload,
        seq=next(_seq),
        event_time="2025-01-01T00:00:00Z",
    )


def register(
    reg: TrustRegistry,
    publisher_id: str,
    kind: str,
    *,
    party: dict[str, str] | None = None,
    valid_from: str = "2025-01-01T00:00:00Z",
) -> None:
    payload: dict[str, Any] = {
        "publisher_id": publisher_id,
        "kind": kind,
        "roles": list(ROLES_BY_KIND[kind]),
        "public_key": verifier(publisher_id),
        "valid_from": valid_from,
    }
    if party is not None:
        payload["party"] = party
    if kind == "committee":
        payload["club_id"] = COMMITTEE  # the sample project's club
    reg.apply(registry_event("publisher.registered", payload))


@pytest.fixture
def reg() -> TrustRegistry:
    r = TrustRegistry(AUTH_KEY)
    register(r, OPERATOR, "operator")
    register(r, COMMITTEE, "committee")
    register(r, GOV_MUNICIPAL, "government", party={"level": "municipal", "id": "mx-zac-020"})
    register(r, GOV_STATE, "government", party={"level": "state", "id": "mx-zac"})
    register(r, PLATFORM, "platform")
    register(r, VERIFIER, "verifier")
    return r


def refused(reg: TrustRegistry, env: Envelope, reason: str) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        reg.authorize(env)
    assert info.value.reason == reason, (info.value.reason, str(info.value))
    return info.value


def rotated_key_event(valid_from: str, until: str) -> Envelope:
    from schemas.keys import format_verifier_key

    return registry_event(
        "publisher.key_rotated",
        {
            "publisher_id": OPERATOR,
            "new_public_key": format_verifier_key(OPERATOR, public_key_bytes(KEYS[ROTATED])),
            "valid_from": valid_from,
            "old_key_valid_until": until,
        },
    )


def with_new_key(event_type: str, event_time: str) -> Envelope:
    return sign_event(
        KEYS[ROTATED],
        publisher_id=OPERATOR,
        event_type=event_type,
        payload=sample(event_type),
        seq=next(_seq),
        event_time=event_time,
    )


# --- happy paths ------------------------------------------------------------------------


def test_each_kind_may_publish_its_events(reg: TrustRegistry) -> None:
    for event_type, publisher in [
        ("transfer.sent", OPERATOR),
        ("transfer.paid_out", OPERATOR),
        ("transfer.cancelled", OPERATOR),
        ("transfer.refunded", OPERATOR),
        ("project.registered", COMMITTEE),
        ("milestone.reported", COMMITTEE),
        ("milestone.verified", VERIFIER),
        ("disbursement.pledged", GOV_MUNICIPAL),
        ("disbursement.made", GOV_MUNICIPAL),
        ("flag.changed", PLATFORM),
    ]:
        info = reg.authorize(signed(event_type, publisher=publisher))
        assert info.publisher_id == publisher
    gov = reg.publisher(GOV_MUNICIPAL)
    assert gov is not None and gov.party == Party("municipal", "mx-zac-020")
    assert gov.kind == "government"


def test_registry_events_are_authorized_against_the_authority(reg: TrustRegistry) -> None:
    env = registry_event("publisher.revoked", sample("publisher.revoked"))
    info = reg.authorize(env)
    assert info.publisher_id == AUTHORITY and info.kind == "authority"


# --- refusals, one per reason -----------------------------------------------------------


def test_unknown_publisher(reg: TrustRegistry) -> None:
    env = signed("transfer.sent", publisher="op.unregistered", key=OPERATOR)
    refused(reg, env, "unknown_publisher")


def test_unknown_key_including_another_publishers_key(reg: TrustRegistry) -> None:
    # The committee's key signing as the operator: its key id under the
    # operator's name is not one the operator registered.
    env = signed("transfer.sent", publisher=OPERATOR, key=COMMITTEE)
    e = refused(reg, env, "unknown_key")
    assert e.got == env.key_id


def test_bad_signature_even_with_the_right_key_id(reg: TrustRegistry) -> None:
    good = signed("transfer.sent")
    w = good.to_wire()
    w["payload"]["send"]["amount"] += 1
    refused(reg, parse_envelope(json.dumps(w).encode()), "bad_signature")
    # A forgery claiming a key id is a forgery first, whatever the key's state.
    forged = signed("transfer.sent", publisher=OPERATOR, key=COMMITTEE)
    w = forged.to_wire()
    w["header"]["key_id"] = good.key_id
    refused(reg, parse_envelope(json.dumps(w).encode()), "bad_signature")


def test_key_not_yet_valid(reg: TrustRegistry) -> None:
    register(reg, "op.future", "operator", valid_from="2026-01-01T00:00:00Z")
    env = signed("transfer.sent", publisher="op.future", event_time="2025-12-31T23:59:59Z")
    refused(reg, env, "key_not_yet_valid")
    reg.authorize(signed("transfer.sent", publisher="op.future", event_time="2026-01-01T00:00:00Z"))


def test_key_revoked_keeps_earlier_events_valid(reg: TrustRegistry) -> None:
    before = signed("transfer.sent", event_time="2025-08-31T23:59:59.999999Z")
    at = signed("transfer.sent", event_time="2025-09-01T00:00:00Z")
    after = signed("transfer.sent", event_time="2025-10-01T00:00:00Z")
    info = reg.publisher(OPERATOR)
    assert info is not None
    reg.apply(
        registry_event(
            "publisher.revoked",
            {
                "publisher_id": OPERATOR,
                "key_id": info.keys[0].key_id,
                "revoked_at": "2025-09-01T00:00:00Z",
                "reason_code": "key_compromise",
            },
        )
    )
    reg.authorize(before)
    refused(reg, at, "key_revoked")
    refused(reg, after, "key_revoked")


def test_backdated_revocation_covers_a_compromise_window(reg: TrustRegistry) -> None:
    # Compromise found on 1 Sep, began on 1 Aug: revoked_at is 1 Aug.
    aug = signed("transfer.sent", event_time="2025-08-15T00:00:00Z")
    info = reg.publisher(OPERATOR)
    assert info is not None
    reg.apply(
        registry_event(
            "publisher.revoked",
            {
                "publisher_id": OPERATOR,
                "key_id": info.keys[0].key_id,
                "revoked_at": "2025-08-01T00:00:00Z",
                "reason_code": "key_compromise",
            },
        )
    )
    refused(reg, aug, "key_revoked")


def test_publisher_revoked(reg: TrustRegistry) -> None:
    reg.apply(
        registry_event("publisher.revoked", sample("publisher.revoked"))
    )  # 1 Sep, whole publisher
    reg.authorize(signed("transfer.sent", event_time="2025-08-31T00:00:00Z"))
    e = refused(
        reg, signed("transfer.sent", event_time="2025-09-01T00:00:00Z"), "publisher_revoked"
    )
    assert e.expected == "2025-09-01T00:00:00Z"
    # No rotation after revocation.
    with pytest.raises(VerificationError) as info:
        reg.apply(rotated_key_event("2025-10-01T00:00:00Z", "2025-10-02T00:00:00Z"))
    assert info.value.reason == "publisher_revoked"


def test_role_not_allowed(reg: TrustRegistry) -> None:
    refused(reg, signed("disbursement.made", publisher=OPERATOR), "role_not_allowed")
    refused(reg, signed("transfer.sent", publisher=COMMITTEE), "role_not_allowed")
    refused(reg, signed("flag.changed", publisher=GOV_STATE), "role_not_allowed")
    # The authority signs registry events only.
    refused(reg, signed("transfer.sent", publisher=AUTHORITY), "role_not_allowed")


def test_party_mismatch(reg: TrustRegistry) -> None:
    for event_type in ("disbursement.pledged", "disbursement.made"):
        p = sample(event_type)
        p["party_id"] = "mx-zac-021"  # another municipality
        refused(reg, signed(event_type, p, publisher=GOV_MUNICIPAL), "party_mismatch")
        p = sample(event_type)
        p["party_level"] = "state"  # right id, wrong level
        refused(reg, signed(event_type, p, publisher=GOV_MUNICIPAL), "party_mismatch")
        # The state government cannot pay the municipality's share.
        refused(reg, signed(event_type, publisher=GOV_STATE), "party_mismatch")
        p = sample(event_type)
        p.update(party_level="state", party_id="mx-zac")
        reg.authorize(signed(event_type, p, publisher=GOV_STATE))


def test_not_authority(reg: TrustRegistry) -> None:
    # A registered publisher cannot register others or rotate its own key.
    env = sign_event(
        KEYS[OPERATOR],
        publisher_id=OPERATOR,
        event_type="publisher.registered",
        payload=sample("publisher.registered"),
        seq=1,
        event_time="2025-01-01T00:00:00Z",
    )
    with pytest.raises(VerificationError) as e:
        reg.apply(env)
    assert e.value.reason == "not_authority"
    refused(reg, env, "not_authority")
    # Another key using the authority's name.
    env = registry_event("publisher.revoked", sample("publisher.revoked"), key="intruder")
    with pytest.raises(VerificationError) as e:
        reg.apply(env)
    assert e.value.reason == "not_authority"
    assert reg.publisher(OPERATOR) is not None and reg.publisher(OPERATOR).revoked_at is None  # type: ignore[union-attr]


def test_authority_bad_signature(reg: TrustRegistry) -> None:
    env = registry_event("publisher.revoked", sample("publisher.revoked"))
    forged = Envelope(**{**_fields(env), "signature": bytes(64)})
    with pytest.raises(VerificationError) as e:
        reg.apply(forged)
    assert e.value.reason == "bad_signature"


def _fields(env: Envelope) -> dict[str, Any]:
    names = ("event_id", "event_type", "schema_version", "publisher_id", "key_id", "seq")
    return {
        **{n: getattr(env, n) for n in names},
        "event_time": env.event_time,
        "payload": env.payload,
        "signature": env.signature,
    }


# --- two clocks: revocations and rotations are judged at the arrival too ----------------


def _at(text: str) -> Any:
    from schemas.times import parse_time

    return parse_time(text)


def _revoke_operator_key(reg: TrustRegistry, revoked_at: str) -> None:
    info = reg.publisher(OPERATOR)
    assert info is not None
    reg.apply(
        registry_event(
            "publisher.revoked",
            {
                "publisher_id": OPERATOR,
                "key_id": info.keys[0].key_id,
                "revoked_at": revoked_at,
                "reason_code": "key_compromise",
            },
        )
    )


def test_a_revoked_key_cannot_backdate_an_event_that_arrives_after_the_revocation(
    reg: TrustRegistry,
) -> None:
    # Regression (issue 13): revocation was judged by the claimed time only, so a
    # thief holding the key signed events dated before the revocation, and they
    # were accepted whenever they arrived.
    _revoke_operator_key(reg, "2025-09-01T00:00:00Z")
    backdated = signed("transfer.sent", event_time="2025-08-31T23:00:00Z")
    e = refused_at(reg, backdated, "2025-09-02T00:00:00Z", "key_revoked")
    assert e.got == "2025-09-02T00:00:00Z" and "arrived at" in str(e)
    # The same bytes, had they arrived before the revocation took effect, stand.
    reg.authorize(backdated, arrived_at=_at("2025-08-31T23:30:00Z"))
    # Offline (no arrival): judged at the claimed time, as the log recorded it.
    reg.authorize(backdated)


def test_a_rotated_out_key_is_refused_once_its_overlap_ended_at_arrival(reg: TrustRegistry) -> None:
    reg.apply(rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z"))
    inside = signed("transfer.sent", event_time="2025-06-05T00:00:00Z")
    reg.authorize(inside, arrived_at=_at("2025-06-08T00:00:00Z"))
    refused_at(reg, inside, "2025-06-08T00:00:01Z", "key_expired")
    # The new key is unaffected.
    reg.authorize(with_new_key("transfer.sent", "2025-06-05T00:00:00Z"), arrived_at=_at("2025-07-01T00:00:00Z"))


def test_a_revoked_publisher_refuses_backdated_events_at_arrival(reg: TrustRegistry) -> None:
    reg.apply(registry_event("publisher.revoked", sample("publisher.revoked")))  # 1 Sep
    old = signed("transfer.sent", event_time="2025-08-01T00:00:00Z")
    refused_at(reg, old, "2025-09-01T00:00:00Z", "publisher_revoked")
    reg.authorize(old, arrived_at=_at("2025-08-31T23:59:59Z"))


def test_a_scheduled_revocation_takes_effect_at_its_time(reg: TrustRegistry) -> None:
    # Revoked from 1 Sep, applied earlier: events arriving before 1 Sep stand.
    _revoke_operator_key(reg, "2025-09-01T00:00:00Z")
    reg.authorize(signed("transfer.sent", event_time="2025-08-20T00:00:00Z"), arrived_at=_at("2025-08-20T00:01:00Z"))


def refused_at(reg: TrustRegistry, env: Envelope, arrived: str, reason: str) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        reg.authorize(env, arrived_at=_at(arrived))
    assert info.value.reason == reason, (info.value.reason, str(info.value))
    return info.value


def test_authenticate_then_check_policy_is_authorize(reg: TrustRegistry) -> None:
    env = signed("transfer.sent")
    info, key = reg.authenticate(env)
    assert info.publisher_id == OPERATOR and key.key_id == env.key_id
    reg.check_policy(env, info, key)
    # A policy refusal needs a genuine signature first: a forgery is a forgery.
    w = signed("disbursement.made", publisher=OPERATOR).to_wire()
    w["payload"]["amount"]["amount"] += 1
    with pytest.raises(VerificationError) as e:
        reg.authenticate(parse_envelope(json.dumps(w).encode()))
    assert e.value.reason == "bad_signature"
    info, key = reg.authenticate(signed("disbursement.made", publisher=OPERATOR))
    with pytest.raises(VerificationError) as e:
        reg.check_policy(signed("disbursement.made", publisher=OPERATOR), info, key)
    assert e.value.reason == "role_not_allowed"


# --- what the gate needs: arrival, backfill, a committee's club -------------------------


def test_a_registration_records_its_arrival_club_and_backfill() -> None:
    r = TrustRegistry(AUTH_KEY)
    payload = {
        "publisher_id": COMMITTEE,
        "kind": "committee",
        "roles": list(ROLES_BY_KIND["committee"]),
        "public_key": verifier(COMMITTEE),
        "valid_from": "2024-01-01T00:00:00Z",
        "club_id": "club.jerez-chicago",
    }
    r.apply(registry_event("publisher.registered", payload), arrived_at=_at("2025-03-01T10:00:00Z"))
    info = r.publisher(COMMITTEE)
    assert info is not None and info.club_id == "club.jerez-chicago"
    assert info.registered_at == _at("2025-03-01T10:00:00Z") and info.backfill_end == info.registered_at
    assert info.in_backfill(_at("2024-01-01T00:00:00Z")) and info.in_backfill(_at("2025-03-01T10:00:00Z"))
    assert not info.in_backfill(_at("2023-12-31T23:59:59Z"))
    assert not info.in_backfill(_at("2025-03-01T10:00:01Z"))
    # Without an arrival (a test, an offline replay) the event's own time stands in.
    register(r, OPERATOR, "operator")
    op = r.publisher(OPERATOR)
    assert op is not None and op.registered_at == _at("2025-01-01T00:00:00Z") and op.club_id is None


def test_backfill_until_can_only_end_the_backfill_earlier() -> None:
    r = TrustRegistry(AUTH_KEY)
    for pid, until in ((OPERATOR, "2024-06-01T00:00:00Z"), (GOV_STATE, "2026-01-01T00:00:00Z")):
        payload = {
            "publisher_id": pid,
            "kind": "operator",
            "roles": list(ROLES_BY_KIND["operator"]),
            "public_key": verifier(pid),
            "valid_from": "2024-01-01T00:00:00Z",
            "backfill_until": until,
        }
        r.apply(registry_event("publisher.registered", payload), arrived_at=_at("2025-03-01T00:00:00Z"))
    early, late = r.publisher(OPERATOR), r.publisher(GOV_STATE)
    assert early is not None and late is not None
    assert early.backfill_end == _at("2024-06-01T00:00:00Z")
    assert late.backfill_end == _at("2025-03-01T00:00:00Z")  # never beyond the arrival
    again = TrustRegistry.from_state(r.to_state(), authority=AUTH_KEY)
    assert again.publishers == r.publishers


# --- rotation ---------------------------------------------------------------------------


def test_rotation_old_key_valid_until_old_key_valid_until(reg: TrustRegistry) -> None:
    reg.apply(rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z"))
    info = reg.publisher(OPERATOR)
    assert info is not None and len(info.keys) == 2
    # Old key: fine up to and including the end of the overlap, refused after.
    reg.authorize(signed("transfer.sent", event_time="2025-06-05T00:00:00Z"))
    reg.authorize(signed("transfer.sent", event_time="2025-06-08T00:00:00Z"))
    e = refused(reg, signed("transfer.sent", event_time="2025-06-08T00:00:01Z"), "key_expired")
    assert e.expected == "2025-06-08T00:00:00Z"
    # New key: not before its valid_from, fine from then on, after the overlap too.
    refused(reg, with_new_key("transfer.sent", "2025-05-31T23:59:59Z"), "key_not_yet_valid")
    reg.authorize(with_new_key("transfer.sent", "2025-06-01T00:00:00Z"))
    reg.authorize(with_new_key("transfer.sent", "2026-01-01T00:00:00Z"))


def test_rotating_to_an_existing_key_is_refused(reg: TrustRegistry) -> None:
    reg.apply(rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z"))
    with pytest.raises(VerificationError) as e:
        reg.apply(rotated_key_event("2025-07-01T00:00:00Z", "2025-07-08T00:00:00Z"))
    assert e.value.reason == "already_registered"


def test_second_rotation_never_extends_an_old_key(reg: TrustRegistry) -> None:
    reg.apply(rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z"))
    from schemas.keys import format_verifier_key

    third = key_for("third")
    reg.apply(
        registry_event(
            "publisher.key_rotated",
            {
                "publisher_id": OPERATOR,
                "new_public_key": format_verifier_key(OPERATOR, public_key_bytes(third)),
                "valid_from": "2025-12-01T00:00:00Z",
                "old_key_valid_until": "2025-12-31T00:00:00Z",
            },
        )
    )
    info = reg.publisher(OPERATOR)
    assert info is not None
    assert [k.valid_until is not None for k in info.keys] == [True, True, False]
    refused(reg, signed("transfer.sent", event_time="2025-07-01T00:00:00Z"), "key_expired")


# --- apply refusals and idempotency -----------------------------------------------------


def test_apply_refusals(reg: TrustRegistry) -> None:
    with pytest.raises(VerificationError) as e:
        register(reg, OPERATOR, "operator")
    assert e.value.reason == "already_registered"
    with pytest.raises(VerificationError) as e:
        register(reg, AUTHORITY, "platform")
    assert e.value.reason == "already_registered"
    p = sample("publisher.revoked")
    p["publisher_id"] = "op.unregistered"
    with pytest.raises(VerificationError) as e:
        reg.apply(registry_event("publisher.revoked", p))
    assert e.value.reason == "unknown_publisher"
    p = sample("publisher.revoked")
    p["key_id"] = "00000000"
    with pytest.raises(VerificationError) as e:
        reg.apply(registry_event("publisher.revoked", p))
    assert e.value.reason == "unknown_key"
    with pytest.raises(MalformedInput) as m:
        reg.apply(signed("transfer.sent"))
    assert m.value.reason == "unknown_type"


def test_apply_is_idempotent_per_event(reg: TrustRegistry) -> None:
    env = rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z")
    reg.apply(env)
    reg.apply(env)  # a replay of the registry topic is a no-op
    info = reg.publisher(OPERATOR)
    assert info is not None and len(info.keys) == 2


# --- snapshots ----------------------------------------------------------------------------


def test_state_round_trip(reg: TrustRegistry) -> None:
    reg.apply(rotated_key_event("2025-06-01T00:00:00Z", "2025-06-08T00:00:00Z"))
    reg.apply(registry_event("publisher.revoked", sample("publisher.revoked")))
    state = reg.to_state()
    text = json.dumps(state, sort_keys=True)
    again = TrustRegistry.from_state(json.loads(text), authority=AUTH_KEY)
    assert json.dumps(again.to_state(), sort_keys=True) == text
    assert again.publishers == reg.publishers
    again.authorize(signed("transfer.sent", event_time="2025-06-05T00:00:00Z"))
    refused(again, signed("transfer.sent", event_time="2025-06-09T00:00:00Z"), "key_expired")
    refused(again, with_new_key("transfer.sent", "2025-09-02T00:00:00Z"), "publisher_revoked")
    assert set(state["applied"]) and state["authority"] == str(AUTH_KEY)


def test_state_under_another_authority_is_refused(reg: TrustRegistry) -> None:
    other = VerifierKey(AUTHORITY, public_key_bytes(key_for("other")))
    with pytest.raises(VerificationError) as e:
        TrustRegistry.from_state(reg.to_state(), authority=other)
    assert e.value.reason == "not_authority"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("publishers"),
        lambda s: s.update(version=2),
        lambda s: s["publishers"][OPERATOR]["keys"][0].update(public_key="nope"),
        lambda s: s["publishers"][OPERATOR]["keys"][0].update(valid_from="yesterday"),
        lambda s: s["publishers"][OPERATOR].pop("kind"),
        lambda s: s["publishers"][OPERATOR]["keys"][0].update(public_key=verifier(COMMITTEE)),
    ],
)
def test_malformed_state(reg: TrustRegistry, mutate: Any) -> None:
    state = json.loads(json.dumps(reg.to_state()))
    mutate(state)
    with pytest.raises(MalformedInput) as e:
        TrustRegistry.from_state(state, authority=AUTH_KEY)
    assert e.value.reason == "state"
