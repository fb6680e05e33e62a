"""Every event type: valid samples round-trip; every kind of bad payload is refused precisely.

Also home of the shared samples (``SAMPLES``, ``KEYS``, ``signed``) used by
the other unit tests of the schemas package.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas import catalog, routing
from schemas.canonical import canonicalize
from schemas.envelope import (
    DOMAIN_SEPARATOR,
    Envelope,
    _canonical_validated,
    parse_envelope,
    sign_event,
    verify_envelope_signature,
)
from schemas.errors import MalformedInput
from schemas.keys import format_verifier_key, public_key_bytes
from schemas.money import ISO_4217_MINOR_UNITS, Money, bps, from_major, minor_units, to_major

# --- shared fixtures (imported by the other test modules) ----------------------


def key_for(name: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key per name, so failures are reproducible."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


AUTHORITY = "registry.cuentasclaras"
OPERATOR = "op.remesas-sol"
COMMITTEE = "club.jerez-zac"
GOV_MUNICIPAL = "gov.mx-zac-jerez"
GOV_STATE = "gov.mx-zac"
GOV_FEDERAL = "gov.mx-bienestar"
PLATFORM = "platform.cuentasclaras"
VERIFIER = "club.espejo-jerez"  # the hometown mirror club, a verifier of the sample project
T0 = "2025-05-01T12:00:00Z"
BEN = "ben_" + "a" * 26
SND = "snd_" + "b" * 26
REV = "rev_" + "c" * 26
DIGEST = hashlib.sha256(b"evidence").hexdigest()


class _Keyring(dict[str, Ed25519PrivateKey]):
    """Deterministic keys for any name, made on first use."""

    def __missing__(self, name: str) -> Ed25519PrivateKey:
        self[name] = key_for(name)
        return self[name]


KEYS = _Keyring()


def verifier(name: str, key_name: str | None = None) -> str:
    return format_verifier_key(name, public_key_bytes(KEYS[key_name or name]))


SAMPLES: dict[str, dict[str, Any]] = {
    "transfer.sent": {
        "transfer_id": "tx-20250501-0001",
        "operator": OPERATOR,
        "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 40000, "currency": "USD"},
        "fee": {"amount": 499, "currency": "USD"},
        "exchange_rate": "17.0512",
        "receive_promised": {"amount": 673527, "currency": "MXN"},
        "available_by": "2025-05-01T13:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": BEN},
        "sender": SND,
        "receipt_digest": DIGEST,
        "disclosed_cost_bps": 420,
    },
    "transfer.paid_out": {
        "transfer_id": "tx-20250501-0001",
        "paid": {"amount": 673527, "currency": "MXN"},
        "paid_at": "2025-05-01T12:40:00.250Z",
        "payout_ref": "po-77812",
    },
    "transfer.cancelled": {
        "transfer_id": "tx-20250501-0002",
        "cancelled_at": "2025-05-01T12:10:00Z",
        "reason_code": "sender_request",
    },
    "transfer.refunded": {
        "transfer_id": "tx-20250501-0002",
        "refunded": {"amount": 40499, "currency": "USD"},
        "refunded_at": "2025-05-02T09:00:00Z",
    },
    "project.registered": {
        "project_id": "prj-jerez-agua-2025",
        "club_id": COMMITTEE,
        "federation_id": "fed.zacatecanos-il",
        "country": "MX",
        "state": "MX-ZAC",
        "municipality": "mx-zac-020",
        "project_type": "water_sanitation",
        "budget": {"amount": 100000000, "currency": "MXN"},
        "shares": {"club": 2500, "municipal": 2500, "state": 2500, "federal": 2500},
        "parties": {"municipal": GOV_MUNICIPAL, "state": GOV_STATE, "federal": GOV_FEDERAL},
        "families_benefited": 120,
        "milestones": [
            {
                "milestone_id": "m1-pozo",
                "due": "2025-08-01T00:00:00Z",
                "amount": {"amount": 40000000, "currency": "MXN"},
            },
            {
                "milestone_id": "m2-red",
                "due": "2025-12-01T00:00:00Z",
                "amount": {"amount": 60000000, "currency": "MXN"},
            },
        ],
        "agreement_signed_at": "2025-04-15T17:00:00Z",
        "verifiers": [VERIFIER],
    },
    "milestone.reported": {
        "project_id": "prj-jerez-agua-2025",
        "milestone_id": "m1-pozo",
        "spent": {"amount": 39000000, "currency": "MXN"},
        "progress_pct": 100,
        "reported_at": "2025-07-30T18:00:00Z",
        "evidence": [DIGEST],
    },
    "milestone.verified": {
        "project_id": "prj-jerez-agua-2025",
        "milestone_id": "m1-pozo",
        "verified_at": "2025-08-03T15:00:00Z",
        "verifier_id": VERIFIER,
        "outcome": "confirmed",
    },
    "disbursement.pledged": {
        "project_id": "prj-jerez-agua-2025",
        "pledge_id": "pl-mun-1",
        "party_level": "municipal",
        "party_id": "mx-zac-020",
        "amount": {"amount": 25000000, "currency": "MXN"},
        "due": "2025-06-01T00:00:00Z",
    },
    "disbursement.made": {
        "project_id": "prj-jerez-agua-2025",
        "pledge_id": "pl-mun-1",
        "disbursement_id": "dsb-mun-1",
        "party_level": "municipal",
        "party_id": "mx-zac-020",
        "amount": {"amount": 25000000, "currency": "MXN"},
        "made_at": "2025-05-30T16:00:00Z",
        "reference": "spei-123456",
    },
    "publisher.registered": {
        "publisher_id": OPERATOR,
        "kind": "operator",
        "roles": ["transfer.sent", "transfer.paid_out", "transfer.cancelled", "transfer.refunded"],
        "public_key": verifier(OPERATOR),
        "valid_from": "2025-01-01T00:00:00Z",
    },
    "publisher.key_rotated": {
        "publisher_id": OPERATOR,
        "new_public_key": verifier(OPERATOR, COMMITTEE),
        "valid_from": "2025-06-01T00:00:00Z",
        "old_key_valid_until": "2025-06-08T00:00:00Z",
    },
    "publisher.revoked": {
        "publisher_id": OPERATOR,
        "key_id": None,
        "revoked_at": "2025-09-01T00:00:00Z",
        "reason_code": "retired",
    },
    "flag.changed": {
        "flag_id": "flg-short-0001",
        "flag_type": "short_payout",
        "status": "open",
        "previous_status": None,
        "subject": {"kind": "transfer", "id": "tx-20250501-0001"},
        "accountable": OPERATOR,
        "severity": "high",
        "amount_at_stake": {"amount": 10000, "currency": "MXN"},
        "evidence": [
            {"event_id": "a" * 26, "log_index": 17},
            {"event_id": "b" * 26, "log_index": None},
        ],
        "actor": "system",
        "reason_code": "auto_detected",
        "changed_at": "2025-05-01T14:00:00Z",
    },
    "project.cancelled": {
        "project_id": "prj-jerez-agua-2025",
        "cancelled_at": "2025-09-01T12:00:00Z",
        "returns": [
            {"party": "club", "amount": {"amount": 12000000, "currency": "MXN"}},
            {"party": "federal", "amount": {"amount": 9000000, "currency": "MXN"}},
        ],
    },
    "project.funds_returned": {
        "project_id": "prj-jerez-agua-2025",
        "party": "federal",
        "amount": {"amount": 9000000, "currency": "MXN"},
        "returned_at": "2025-09-20T12:00:00Z",
        "reference": "spei-9f3a",
    },
}

PUBLISHER_OF = {
    "transfer": OPERATOR,
    "project": COMMITTEE,
    "milestone": COMMITTEE,
    "disbursement": GOV_MUNICIPAL,
    "publisher": AUTHORITY,
    "flag": PLATFORM,
}


def sample(event_type: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[event_type])


def signed(
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    publisher: str | None = None,
    key: str | None = None,
    seq: int = 1,
    event_time: str = T0,
) -> Envelope:
    publisher = publisher or PUBLISHER_OF[event_type.split(".")[0]]
    return sign_event(
        KEYS[key or publisher],
        publisher_id=publisher,
        event_type=event_type,
        payload=sample(event_type) if payload is None else payload,
        seq=seq,
        event_time=event_time,
        event_id=None,
    )


def refusal(event_type: str, payload: object) -> MalformedInput:
    with pytest.raises(MalformedInput) as info:
        catalog.validate_payload(event_type, 1, payload)
    return info.value


# --- schema files ------------------------------------------------------------------

SCHEMA_FILES = {name: catalog._SCHEMAS[name] for name in catalog._SCHEMAS}


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def test_every_event_type_has_a_sample_and_a_schema() -> None:
    assert set(SAMPLES) == set(catalog.EVENT_TYPES)
    assert len(catalog.EVENT_TYPES) == 15


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schema_files_are_valid_draft_2020_12(name: str) -> None:
    schema = SCHEMA_FILES[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://cuentasclaras.org/schemas/{name}"


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_schemas_are_closed_and_hold_no_free_text(name: str) -> None:
    for path, node in _walk(SCHEMA_FILES[name]):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{name}{path} is open"
        types = node.get("type")
        if types == "string" or (isinstance(types, list) and "string" in types):
            # Privacy by construction: every string is a pattern, an enum or a const.
            assert {"pattern", "enum", "const"} & node.keys(), f"{name}{path} is free text"
        if types == "integer" or (isinstance(types, list) and "integer" in types):
            # Bounded within 2^53 so the fast canonical encoder equals RFC 8785.
            assert "minimum" in node and "maximum" in node, f"{name}{path} is unbounded"
            assert -(2**53) < node["minimum"] <= node["maximum"] < 2**53
        assert types != "number", f"{name}{path}: no floats on the wire"


def test_currency_enum_matches_the_iso_4217_table() -> None:
    enum = SCHEMA_FILES["common.v1.json"]["$defs"]["currency"]["enum"]
    assert enum == sorted(ISO_4217_MINOR_UNITS)
    assert all(re.fullmatch("[A-Z]{3}", c) for c in enum)
    for code in ("USD", "MXN", "GTQ", "HNL", "NIO", "DOP", "COP", "EUR", "CAD", "SVC"):
        assert code in enum
    for withdrawn in ("ANG", "HRK", "SLL", "ZWL", "CUC", "VEF", "MRO", "XAU", "XXX", "BOV"):
        assert withdrawn not in enum


def test_role_enum_lists_every_non_registry_event_type() -> None:
    roles = SCHEMA_FILES["common.v1.json"]["$defs"]["role"]["enum"]
    assert sorted(roles) == sorted(set(catalog.EVENT_TYPES) - set(catalog.REGISTRY_EVENT_TYPES))
    for kind, kind_roles in catalog.ROLES_BY_KIND.items():
        assert set(kind_roles) <= set(roles), kind
    assert catalog.ROLES_BY_KIND["operator"] == (
        "transfer.cancelled",
        "transfer.paid_out",
        "transfer.refunded",
        "transfer.sent",
    )


@pytest.mark.parametrize(
    ("event_type", "topic", "key"),
    [
        ("transfer.sent", "publish.transfers", b"tx-20250501-0001"),
        ("transfer.paid_out", "publish.transfers", b"tx-20250501-0001"),
        ("transfer.cancelled", "publish.transfers", b"tx-20250501-0002"),
        ("transfer.refunded", "publish.transfers", b"tx-20250501-0002"),
        ("project.registered", "publish.projects", b"prj-jerez-agua-2025"),
        ("milestone.reported", "publish.projects", b"prj-jerez-agua-2025"),
        ("milestone.verified", "publish.projects", b"prj-jerez-agua-2025"),
        ("disbursement.pledged", "publish.projects", b"prj-jerez-agua-2025"),
        ("disbursement.made", "publish.projects", b"prj-jerez-agua-2025"),
        ("publisher.registered", "publish.registry", OPERATOR.encode()),
        ("publisher.key_rotated", "publish.registry", OPERATOR.encode()),
        ("publisher.revoked", "publish.registry", OPERATOR.encode()),
        ("flag.changed", "publish.flags", b"flg-short-0001"),
    ],
)
def test_topics_and_partition_keys(event_type: str, topic: str, key: bytes) -> None:
    assert routing.topic_for(event_type) == topic
    assert routing.partition_key(event_type, SAMPLES[event_type]) == key


def test_topic_of_unknown_type() -> None:
    with pytest.raises(MalformedInput) as e:
        routing.topic_for("transfer.stolen")
    assert e.value.reason == "unknown_type"
    with pytest.raises(MalformedInput) as e:
        routing.partition_key("transfer.sent", {})
    assert e.value.reason == "schema"


# --- round trip ------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_sample_round_trips_sign_bytes_parse_verify(event_type: str) -> None:
    env = signed(event_type)
    wire = env.leaf_bytes()
    back = parse_envelope(wire)
    assert back == env
    assert back.leaf_bytes() == wire
    assert back.signed_bytes() == env.signed_bytes()
    verify_envelope_signature(back, public_key_bytes(KEYS[env.publisher_id]))
    # The fast encoder and the reference RFC 8785 implementation agree.
    assert wire == canonicalize(env.to_wire())
    body = {"header": env.header(), "payload": env.payload}
    assert env.signed_bytes() == DOMAIN_SEPARATOR + canonicalize(body)
    assert _canonical_validated(body) == canonicalize(body)
    # A hand-built envelope canonicalizes through rfc8785 to the same bytes.
    clone = Envelope(**{f: getattr(env, f) for f in _FIELDS})
    assert clone.leaf_bytes() == wire and clone == env


_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "publisher_id",
    "key_id",
    "seq",
    "event_time",
    "payload",
    "signature",
)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_sample_validates(event_type: str) -> None:
    catalog.validate_payload(event_type, 1, sample(event_type))


def test_optional_fields_may_be_left_out() -> None:
    p = sample("project.registered")
    del p["federation_id"], p["families_benefited"]
    catalog.validate_payload("project.registered", 1, p)
    f = sample("flag.changed")
    del f["amount_at_stake"]
    catalog.validate_payload("flag.changed", 1, f)


def test_project_fund_destination_and_zero_fee() -> None:
    p = sample("transfer.sent")
    p["destination"] = {
        "kind": "project_fund",
        "project_id": "prj-jerez-agua-2025",
        "club_id": COMMITTEE,
    }
    p["fee"]["amount"] = 0
    catalog.validate_payload("transfer.sent", 1, p)
    p["destination"]["beneficiary"] = BEN
    e = refusal("transfer.sent", p)
    assert (
        e.reason == "schema" and e.field is not None and e.field.startswith("/payload/destination")
    )


def test_unknown_type_and_version() -> None:
    assert refusal("transfer.stolen", {}).reason == "unknown_type"
    with pytest.raises(MalformedInput) as info:
        catalog.validate_payload("transfer.sent", 2, sample("transfer.sent"))
    assert info.value.reason == "unknown_type" and "version 2" in str(info.value)


# --- rejections for every type -----------------------------------------------------

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{2,63}$")


def _leaves(
    obj: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _money_paths(obj: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(obj, dict):
        if set(obj) == {"amount", "currency"}:
            yield path
            return
        for k, v in obj.items():
            yield from _money_paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _money_paths(v, (*path, i))


def _set(obj: Any, path: tuple[str | int, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def _pointer(path: tuple[str | int, ...]) -> str:
    return "/payload" + "".join(f"/{p}" for p in path)


def _expect(event_type: str, payload: Any, field: str) -> MalformedInput:
    e = refusal(event_type, payload)
    assert e.reason == "schema", (e.reason, str(e))
    assert e.field == field, (e.field, field, str(e))
    assert str(e).startswith(field.lstrip("/") + ":"), str(e)
    return e


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_missing_required_field(event_type: str) -> None:
    for name in catalog.load_schema(event_type)["required"]:
        p = sample(event_type)
        del p[name]
        e = _expect(event_type, p, f"/payload/{name}")
        assert "required" in str(e)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_extra_field_is_refused_even_with_free_text(event_type: str) -> None:
    for extra, value in [
        ("note", "Para María López, calle Hidalgo 12, tel 492 555 0101"),
        ("beneficiary_name", "María López"),
        ("phone", "+524925550101"),
        ("x", None),
    ]:
        p = sample(event_type)
        p[extra] = value
        e = _expect(event_type, p, f"/payload/{extra}")
        assert "not allowed" in str(e)
        assert "María" not in str(e)  # the value is not echoed into logs


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_free_text_in_nested_objects_is_refused(event_type: str) -> None:
    p = sample(event_type)
    for path in _money_paths(p):
        q = copy.deepcopy(p)
        _set(q, (*path, "memo"), "rent for mamá")
        _expect(event_type, q, _pointer((*path, "memo")))


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_wrong_types(event_type: str) -> None:
    base = sample(event_type)
    for path, value in _leaves(base):
        for wrong in ([value], {"v": value}, True, 1.5):
            q = copy.deepcopy(base)
            _set(q, path, wrong)
            e = refusal(event_type, q)
            assert e.reason == "schema"
            assert e.field is not None and e.field.startswith(_pointer(path)), (e.field, path)
    p = sample(event_type)
    p_wrong: Any = list(p.items())
    assert refusal(event_type, p_wrong).field == "/payload"
    assert refusal(event_type, None).field == "/payload"


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_bad_amounts(event_type: str) -> None:
    base = sample(event_type)
    for path in _money_paths(base):
        is_fee = path == ("fee",)
        bad: list[Any] = [-5, -1, 10**15 + 1, 2**53, 5.0, 499.99, "500", None, True]
        if not is_fee:
            bad.append(0)
        for amount in bad:
            q = copy.deepcopy(base)
            _set(q, (*path, "amount"), amount)
            _expect(event_type, q, _pointer((*path, "amount")))
        for currency in ("XXX", "usd", "US$", "USDT", "ANG", "", "МXN", 840):
            q = copy.deepcopy(base)
            _set(q, (*path, "currency"), currency)
            _expect(event_type, q, _pointer((*path, "currency")))
        q = copy.deepcopy(base)
        _set(q, (*path, "amount"), 10**15)  # the largest amount is fine
        catalog.validate_payload(event_type, 1, q)


def test_negative_amount_message_names_field_and_rule() -> None:
    p = sample("transfer.sent")
    p["send"]["amount"] = -5
    e = _expect("transfer.sent", p, "/payload/send/amount")
    assert str(e) == "payload/send/amount: -5 is less than the minimum of 1"


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_non_utc_and_malformed_times(event_type: str) -> None:
    base = sample(event_type)
    paths = [p for p, v in _leaves(base) if isinstance(v, str) and TIME_RE.match(v)]
    assert paths, event_type
    for path in paths:
        for bad in (
            "2025-05-01T12:00:00+02:00",
            "2025-05-01T12:00:00-06:00",
            "2025-05-01T12:00:00+00:00",
            "2025-05-01T12:00:00",
            "2025-05-01 12:00:00Z",
            "2025-05-01T12:00:00z",
            "2025-05-01t12:00:00Z",
            "2025-05-01T12:00:00.1234567Z",
            "2025-02-30T12:00:00Z",
            "2025-13-01T12:00:00Z",
            "2025-05-01T24:00:00Z",
            "2025-05-01T23:59:60Z",
            "2025-05-01T12:00:00Z\n",
            "2025-05-01",
            "1746100800",
        ):
            q = copy.deepcopy(base)
            _set(q, path, bad)
            _expect(event_type, q, _pointer(path))


LOOKALIKES = [
    "tx-2025\u202e1000",  # right-to-left override
    "tx-2025\u2066x\u2069",  # isolate controls
    "tx-2025\u200b0001",  # zero-width space
    "t\u0445-20250501",  # Cyrillic kha for x
    "\u0440rj-jerez",  # Cyrillic er for p
    "tx\uff0d20250501",  # fullwidth hyphen
    "tx-20250501-0001\n",  # trailing newline ($ in Python re)
    "TX-20250501",
    "tx 20250501",
    "tx/../../etc",
    "é-acute",
    "a",
    "x" * 65,
]


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_lookalike_and_bidi_ids_are_refused(event_type: str) -> None:
    base = sample(event_type)
    paths = [
        p
        for p, v in _leaves(base)
        if isinstance(v, str) and ID_RE.match(v) and not TIME_RE.match(v)
    ]
    assert paths, event_type
    for path in paths:
        for bad in LOOKALIKES:
            q = copy.deepcopy(base)
            _set(q, path, bad)
            e = _expect(event_type, q, _pointer(path))
            assert "\u202e" not in str(e)  # never echo a bidi control into a message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sender", "snd_" + "A" * 26),
        ("sender", "snd_" + "a" * 25),
        ("sender", "ben_" + "a" * 26),
        ("sender", "snd_" + "a" * 25 + "1"),
        ("receipt_digest", DIGEST.upper()),
        ("receipt_digest", DIGEST[:-1]),
        ("exchange_rate", 17.05),
        ("exchange_rate", "17,05"),
        ("exchange_rate", "017.05"),
        ("exchange_rate", "1e3"),
        ("exchange_rate", "-1"),
        ("exchange_rate", "1.12345678901"),
        ("disclosed_cost_bps", 10001),
        ("disclosed_cost_bps", -1),
        ("disclosed_cost_bps", 4.2),
    ],
)
def test_transfer_sent_field_rules(field: str, value: Any) -> None:
    p = sample("transfer.sent")
    p[field] = value
    _expect("transfer.sent", p, f"/payload/{field}")


def test_corridor_country_must_be_known() -> None:
    p = sample("transfer.sent")
    p["corridor"]["to"] = "mx"
    _expect("transfer.sent", p, "/payload/corridor/to")
    p["corridor"]["to"] = "ZZ"
    _expect("transfer.sent", p, "/payload/corridor/to")


# --- semantic rules in code ----------------------------------------------------------


def test_fee_currency_must_equal_send_currency() -> None:
    p = sample("transfer.sent")
    p["fee"]["currency"] = "MXN"
    e = _expect("transfer.sent", p, "/payload/fee/currency")
    assert "send currency" in str(e)


def test_exchange_rate_must_be_positive() -> None:
    p = sample("transfer.sent")
    p["exchange_rate"] = "0.0"
    _expect("transfer.sent", p, "/payload/exchange_rate")


def test_shares_must_sum_to_10000() -> None:
    p = sample("project.registered")
    p["shares"]["club"] = 2000
    e = _expect("project.registered", p, "/payload/shares")
    assert "10000" in str(e) and "9500" in str(e)
    p["shares"] = {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
    catalog.validate_payload("project.registered", 1, p)


def test_milestone_ids_must_be_unique() -> None:
    p = sample("project.registered")
    p["milestones"][1]["milestone_id"] = "m1-pozo"
    e = _expect("project.registered", p, "/payload/milestones/1/milestone_id")
    assert "duplicate" in str(e)


def test_milestone_currency_must_be_budget_currency() -> None:
    p = sample("project.registered")
    p["milestones"][0]["amount"]["currency"] = "USD"
    _expect("project.registered", p, "/payload/milestones/0/amount/currency")


def test_a_cancellation_names_each_party_once_in_one_currency() -> None:
    p = sample("project.cancelled")
    p["returns"][1]["party"] = "club"
    e = _expect("project.cancelled", p, "/payload/returns/1/party")
    assert "twice" in str(e)
    p = sample("project.cancelled")
    p["returns"][1]["amount"]["currency"] = "USD"
    _expect("project.cancelled", p, "/payload/returns")
    p["returns"] = []  # nothing received, nothing to return
    catalog.validate_payload("project.cancelled", 1, p)
    p = sample("project.funds_returned")
    p["party"] = "mirror_club"
    _expect("project.funds_returned", p, "/payload/party")


def test_fx_rate_is_a_decimal_string() -> None:
    p = sample("milestone.reported")
    p["spent"] = {"amount": 120000, "currency": "USD"}
    p["fx_rate"] = "17.0512"
    catalog.validate_payload("milestone.reported", 1, p)
    p["fx_rate"] = 17.05
    _expect("milestone.reported", p, "/payload/fx_rate")


def test_state_must_be_in_country() -> None:
    p = sample("project.registered")
    p["state"] = "GT-SA"
    _expect("project.registered", p, "/payload/state")


def test_milestone_count_limits() -> None:
    p = sample("project.registered")
    p["milestones"] = []
    _expect("project.registered", p, "/payload/milestones")
    m = p["milestones"]
    for i in range(51):
        m.append(
            {"milestone_id": f"m-{i:03d}", "due": T0, "amount": {"amount": 1, "currency": "MXN"}}
        )
    _expect("project.registered", p, "/payload/milestones")


def test_evidence_digests_unique_and_bounded() -> None:
    p = sample("milestone.reported")
    p["evidence"] = [DIGEST, DIGEST]
    _expect("milestone.reported", p, "/payload/evidence")
    p["evidence"] = [hashlib.sha256(bytes([i])).hexdigest() for i in range(21)]
    _expect("milestone.reported", p, "/payload/evidence")
    p["progress_pct"] = 101
    p["evidence"] = []
    _expect("milestone.reported", p, "/payload/progress_pct")


def test_publisher_key_name_must_match_publisher_id() -> None:
    p = sample("publisher.registered")
    p["public_key"] = verifier(COMMITTEE)
    e = _expect("publisher.registered", p, "/payload/public_key")
    assert "must equal publisher_id" in str(e)
    p["public_key"] = verifier(OPERATOR)[:-3] + "AAA"  # key id no longer matches the key
    _expect("publisher.registered", p, "/payload/public_key")
    r = sample("publisher.key_rotated")
    r["new_public_key"] = verifier(COMMITTEE)
    _expect("publisher.key_rotated", r, "/payload/new_public_key")


def test_government_publisher_needs_a_party() -> None:
    p = sample("publisher.registered")
    p.update(kind="government", roles=["disbursement.made"], publisher_id=OPERATOR)
    _expect("publisher.registered", p, "/payload/party")
    p["party"] = {"level": "municipal", "id": "mx-zac-020"}
    catalog.validate_payload("publisher.registered", 1, p)
    p["kind"] = "operator"
    _expect("publisher.registered", p, "/payload/party")


def test_committee_publisher_is_bound_to_a_club() -> None:
    p = sample("publisher.registered")
    p.update(kind="committee", roles=["project.registered"], publisher_id=OPERATOR)
    _expect("publisher.registered", p, "/payload/club_id")
    p["club_id"] = COMMITTEE
    catalog.validate_payload("publisher.registered", 1, p)
    p["kind"] = "operator"
    _expect("publisher.registered", p, "/payload/club_id")


def test_new_publisher_kinds_and_their_default_roles() -> None:
    assert catalog.ROLES_BY_KIND["verifier"] == ("milestone.verified",)
    assert catalog.ROLES_BY_KIND["payout_agent"] == ("transfer.paid_out",)
    # A committee reports on its projects; it never verifies its own reports.
    assert "milestone.verified" not in catalog.ROLES_BY_KIND["committee"]
    for kind in ("verifier", "payout_agent"):
        p = sample("publisher.registered")
        p.update(kind=kind, roles=list(catalog.ROLES_BY_KIND[kind]))
        catalog.validate_payload("publisher.registered", 1, p)


def test_backfill_until_is_a_time_not_before_valid_from() -> None:
    p = sample("publisher.registered")
    p["backfill_until"] = "2025-03-01T00:00:00Z"
    catalog.validate_payload("publisher.registered", 1, p)
    p["backfill_until"] = "2024-12-31T23:59:59Z"
    _expect("publisher.registered", p, "/payload/backfill_until")
    p["backfill_until"] = "2025-03-01"
    _expect("publisher.registered", p, "/payload/backfill_until")


def test_payout_agents_and_verifiers_are_unique_publisher_ids() -> None:
    t = sample("transfer.sent")
    t["payout_agents"] = ["agente.pagos-zac", "agente.pagos-jal"]
    catalog.validate_payload("transfer.sent", 1, t)
    t["payout_agents"] = ["agente.pagos-zac", "agente.pagos-zac"]
    _expect("transfer.sent", t, "/payload/payout_agents")
    t["payout_agents"] = [f"agente.n{i:02d}" for i in range(17)]
    _expect("transfer.sent", t, "/payload/payout_agents")
    t["payout_agents"] = ["Agente Pagos"]
    _expect("transfer.sent", t, "/payload/payout_agents/0")
    p = sample("project.registered")
    p["verifiers"] = []
    catalog.validate_payload("project.registered", 1, p)
    p["verifiers"] = [VERIFIER, VERIFIER]
    _expect("project.registered", p, "/payload/verifiers")


def test_registry_roles_cannot_be_granted() -> None:
    p = sample("publisher.registered")
    p["roles"] = ["publisher.registered"]
    _expect("publisher.registered", p, "/payload/roles/0")
    p["roles"] = []
    _expect("publisher.registered", p, "/payload/roles")


def test_flag_actor_and_reason_must_agree() -> None:
    p = sample("flag.changed")
    p["reason_code"] = "reviewer_resolved"
    _expect("flag.changed", p, "/payload/reason_code")
    p["actor"] = REV
    p["previous_status"] = "open"
    p["status"] = "resolved"
    catalog.validate_payload("flag.changed", 1, p)
    p["reason_code"] = "auto_resolved"
    _expect("flag.changed", p, "/payload/reason_code")
    p["actor"] = "someone"
    _expect("flag.changed", p, "/payload/actor")


def test_flag_status_must_change() -> None:
    p = sample("flag.changed")
    p["previous_status"] = "open"
    _expect("flag.changed", p, "/payload/status")


def test_revocation_key_id_is_hex_or_null() -> None:
    p = sample("publisher.revoked")
    p["key_id"] = "0a1b2c3d"
    catalog.validate_payload("publisher.revoked", 1, p)
    p["key_id"] = "0A1B2C3D"
    _expect("publisher.revoked", p, "/payload/key_id")


# --- the fast validator agrees with jsonschema -----------------------------------

WEIRD: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    10**15,
    10**15 + 1,
    2**53,
    0.0,
    1.0,
    1.5,
    "",
    "x",
    "abc",
    "ABC",
    "abc\n",
    "USD",
    "MX",
    "system",
    "beneficiary",
    "project_fund",
    "open",
    T0,
    "2025-02-30T00:00:00Z",
    BEN,
    SND,
    REV,
    DIGEST,
    "a" * 26,
    "0a1b2c3d",
    [],
    [1],
    ["x"],
    [DIGEST, DIGEST],
    {},
    {"amount": 1, "currency": "USD"},
    {"kind": "beneficiary", "beneficiary": BEN},
]


def _mutations(obj: Any) -> Iterator[Any]:
    yield obj
    for path, _ in _leaves(obj):
        if not path:
            continue
        for w in WEIRD:
            q = copy.deepcopy(obj)
            _set(q, path, w)
            yield q
        q = copy.deepcopy(obj)
        parent: Any = q
        for p in path[:-1]:
            parent = parent[p]
        if isinstance(parent, dict):
            del parent[path[-1]]
            yield q
            q2 = copy.deepcopy(obj)
            parent2: Any = q2
            for p in path[:-1]:
                parent2 = parent2[p]
            parent2["extra"] = 1
            yield q2


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_fast_validator_agrees_with_jsonschema(event_type: str) -> None:
    compiled = catalog._COMPILED[(event_type, 1)]
    n = 0
    for candidate in _mutations(sample(event_type)):
        expected = compiled.validator.is_valid(candidate)
        assert compiled.is_valid(candidate) == expected, candidate
        assert compiled.fast_is_valid(candidate) == expected, candidate
        n += 1
    assert n > 50


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.sampled_from(WEIRD[:31]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["amount", "currency", "kind", "id", "x"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_fast_validator_agrees_on_random_mutations(event_type: str, data: st.DataObject) -> None:
    compiled = catalog._COMPILED[(event_type, 1)]
    payload = sample(event_type)
    path = data.draw(st.sampled_from([p for p, _ in _leaves(payload) if p]))
    _set(payload, path, data.draw(_json_values))
    expected = compiled.validator.is_valid(payload)
    assert compiled.is_valid(payload) == expected
    assert compiled.fast_is_valid(payload) == expected


def test_envelope_shape_validators_agree() -> None:
    env = signed("transfer.sent").to_wire()
    compiled = catalog._ENVELOPE
    for candidate in _mutations(env):
        expected = compiled.validator.is_valid(candidate)
        assert compiled.is_valid(candidate) == expected, candidate
        assert compiled.fast_is_valid(candidate) == expected, candidate


# --- money ---------------------------------------------------------------------------


def test_money_helpers() -> None:
    assert minor_units("USD") == 2 and minor_units("JPY") == 0 and minor_units("KWD") == 3
    assert to_major(Money(12345, "USD")) == Decimal("123.45")
    assert to_major(Money(500, "CLP")) == Decimal("500")
    assert to_major(Money(1, "BHD")) == Decimal("0.001")
    assert from_major("123.45", "USD") == Money(12345, "USD")
    assert from_major(Decimal("7"), "JPY") == Money(7, "JPY")
    with pytest.raises(MalformedInput):
        from_major("1.001", "USD")
    with pytest.raises(MalformedInput):
        from_major(0.1, "USD")  # type: ignore[arg-type]
    with pytest.raises(MalformedInput) as e:
        minor_units("XXX")
    assert e.value.reason == "currency"
    assert Money.from_payload({"amount": 5, "currency": "MXN"}) == Money(5, "MXN")
    assert Money(5, "MXN").to_payload() == {"amount": 5, "currency": "MXN"}


def test_bps_rounds_half_up_with_integers_only() -> None:
    assert bps(Money(499, "USD"), Money(40000, "USD")) == 125  # 124.75 -> 125
    assert bps(1, 3) == 3333
    assert bps(2, 3) == 6667
    assert bps(1, 20000) == 1  # 0.5 -> 1
    assert bps(0, 5) == 0
    assert bps(-1, 20000) == -1
    assert bps(10, 10) == 10000
    with pytest.raises(MalformedInput):
        bps(Money(1, "USD"), Money(1, "MXN"))
    with pytest.raises(MalformedInput):
        bps(1, 0)


def test_json_dump_of_samples_is_stable() -> None:
    # Samples are JSON documents (no tuples, floats or non-string keys).
    for p in SAMPLES.values():
        assert json.loads(json.dumps(p)) == p


def test_compiled_validator_refuses_a_float_integer() -> None:
    """jsonschema-rs alone counts 1.0 as an integer (JSON Schema Validation 6.1.1); ours must not."""
    payload = sample("transfer.sent")
    payload["send"]["amount"] = float(payload["send"]["amount"])
    compiled = catalog._COMPILED[("transfer.sent", 1)]
    assert not compiled.is_valid(payload)
    assert not compiled.fast_is_valid(payload)
    with pytest.raises(MalformedInput) as e:
        catalog.validate_payload("transfer.sent", 1, payload)
    assert e.value.reason == "schema" and e.value.field == "/payload/send/amount"


def test_compiled_validator_falls_back_on_values_it_cannot_take() -> None:
    """A lone surrogate or a 70-bit integer in a hand-built payload: judged by the closures."""
    compiled = catalog._COMPILED[("transfer.sent", 1)]
    for value in ("\ud800", 2**70):
        payload = sample("transfer.sent")
        payload["payout_note"] = value
        payload["send"]["amount"] = value
        assert compiled.is_valid(payload) == compiled.validator.is_valid(payload)
