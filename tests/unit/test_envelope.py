"""The signed envelope: signing, strict parsing, canonical bytes and tamper resistance."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.canonical import canonicalize
from schemas.envelope import (
    DOMAIN_SEPARATOR,
    MAX_ENVELOPE_BYTES,
    Envelope,
    event_id_from,
    new_event_id,
    parse_envelope,
    sign_event,
    verify_envelope_signature,
)
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import key_id, public_key_bytes
from schemas.times import format_time, parse_time
from tests.unit.test_schemas_roundtrip import (
    COMMITTEE,
    KEYS,
    OPERATOR,
    SAMPLES,
    T0,
    sample,
    signed,
)

EVENT_ID_RE = re.compile(r"^[a-z2-7]{26}$")
OP_PUB = public_key_bytes(KEYS[OPERATOR])


def refused(data: bytes, reason: str, field: str | None = None, **kw: Any) -> MalformedInput:
    with pytest.raises(MalformedInput) as info:
        parse_envelope(data, **kw)
    assert info.value.reason == reason, (info.value.reason, str(info.value))
    if field is not None:
        assert info.value.field == field, (info.value.field, str(info.value))
    return info.value


def wire(env: Envelope) -> dict[str, Any]:
    return env.to_wire()


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- ids and times ----------------------------------------------------------------------


def test_event_ids() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(EVENT_ID_RE.match(i) for i in ids)
    assert event_id_from(b"seed") == event_id_from(b"seed")
    assert event_id_from(b"seed") != event_id_from(b"seed2")
    assert EVENT_ID_RE.match(event_id_from(b""))


def test_format_and_parse_time() -> None:
    assert format_time(datetime(2025, 5, 1, 12, 0, tzinfo=UTC)) == "2025-05-01T12:00:00Z"
    mx = timezone(timedelta(hours=-6))
    assert format_time(datetime(2025, 5, 1, 6, 0, tzinfo=mx)) == "2025-05-01T12:00:00Z"
    assert format_time(datetime(2025, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)) == (
        "2025-05-01T12:00:00.5Z"
    )
    assert format_time(datetime(2025, 5, 1, 12, 0, 0, 7, tzinfo=UTC)) == (
        "2025-05-01T12:00:00.000007Z"
    )
    assert parse_time("2025-05-01T12:00:00.5Z") == datetime(
        2025, 5, 1, 12, 0, 0, 500000, tzinfo=UTC
    )
    with pytest.raises(MalformedInput):
        format_time(datetime(2025, 5, 1, 12, 0))
    with pytest.raises(MalformedInput):
        parse_time("yesterday")


# --- signing ----------------------------------------------------------------------------


def test_sign_event_fills_the_header() -> None:
    env = sign_event(
        KEYS[OPERATOR],
        publisher_id=OPERATOR,
        event_type="transfer.sent",
        payload=sample("transfer.sent"),
        seq=7,
        event_time=datetime(2025, 5, 1, 6, 0, tzinfo=timezone(timedelta(hours=-6))),
        event_id=event_id_from(b"x"),
    )
    assert env.header() == {
        "event_id": event_id_from(b"x"),
        "type": "transfer.sent",
        "schema_version": 1,
        "publisher_id": OPERATOR,
        "key_id": key_id(OPERATOR, OP_PUB).hex(),
        "seq": 7,
        "event_time": T0,
    }
    assert env.signed_bytes().startswith(DOMAIN_SEPARATOR)
    assert env.signed_bytes() == DOMAIN_SEPARATOR + canonicalize(
        {"header": env.header(), "payload": sample("transfer.sent")}
    )
    assert env.leaf_bytes() == canonicalize(wire(env))
    assert env.time() == datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert len(env.signature) == 64
    verify_envelope_signature(env, OP_PUB)


def test_sign_event_copies_the_payload() -> None:
    payload = sample("transfer.sent")
    env = signed("transfer.sent", payload)
    payload["send"]["amount"] = 1
    assert env.payload["send"]["amount"] == 40000
    verify_envelope_signature(env, OP_PUB)
    # Tuples are accepted for arrays and signed as arrays.
    p = sample("milestone.reported")
    p["evidence"] = tuple(p["evidence"])
    assert (
        signed("milestone.reported", p).payload["evidence"]
        == SAMPLES["milestone.reported"]["evidence"]
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"publisher_id": "Op.Remesas"}, "/header/publisher_id"),
        ({"publisher_id": "op\u202eremesas"}, "/header/publisher_id"),
        ({"publisher_id": "op remesas"}, "/header/publisher_id"),
        ({"seq": 0}, "/header/seq"),
        ({"seq": -1}, "/header/seq"),
        ({"seq": 2**53}, "/header/seq"),
        ({"seq": 1.0}, "/header/seq"),
        ({"event_time": "2025-05-01T12:00:00+01:00"}, "/header/event_time"),
        ({"event_time": "2025-05-01T12:00:00.1234567Z"}, "/header/event_time"),
        ({"event_time": datetime(2025, 5, 1)}, "/header/event_time"),
        ({"event_id": "A" * 26}, "/header/event_id"),
        ({"event_id": "a" * 25}, "/header/event_id"),
        ({"event_type": "Transfer.Sent"}, "/header/type"),
        ({"schema_version": 0}, "/header/schema_version"),
    ],
)
def test_sign_event_validates_the_header_before_signing(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "publisher_id": OPERATOR,
        "event_type": "transfer.sent",
        "payload": sample("transfer.sent"),
        "seq": 1,
        "event_time": T0,
    }
    args.update(kwargs)
    with pytest.raises(MalformedInput) as e:
        sign_event(KEYS[OPERATOR], **args)
    assert e.value.reason == "envelope"
    assert e.value.field == field, (e.value.field, str(e.value))
    assert str(e.value).startswith(field.lstrip("/"))


def test_sign_event_validates_the_payload_before_signing() -> None:
    p = sample("transfer.sent")
    p["send"]["amount"] = -5
    with pytest.raises(MalformedInput) as e:
        signed("transfer.sent", p)
    assert (e.value.reason, e.value.field) == ("schema", "/payload/send/amount")
    assert str(e.value) == "payload/send/amount: -5 is less than the minimum of 1"
    with pytest.raises(MalformedInput) as e:
        signed(
            "transfer.sent",
            {**sample("transfer.sent"), "send": {"amount": float("nan"), "currency": "USD"}},
        )
    assert e.value.reason == "schema"
    with pytest.raises(MalformedInput) as e:
        signed("transfer.sent", {**sample("transfer.sent"), "x": object()})
    assert e.value.reason == "schema"
    with pytest.raises(MalformedInput) as e:
        sign_event(
            KEYS[OPERATOR],
            publisher_id=OPERATOR,
            event_type="transfer.stolen",
            payload={},
            seq=1,
            event_time=T0,
        )
    assert (e.value.reason, e.value.field) == ("unknown_type", "/header/type")
    with pytest.raises(MalformedInput) as e:
        sign_event(
            KEYS[OPERATOR],
            publisher_id=OPERATOR,
            event_type="transfer.sent",
            payload=sample("transfer.sent"),
            seq=1,
            event_time=T0,
            schema_version=2,
        )
    assert e.value.reason == "unknown_type"


# --- parsing ----------------------------------------------------------------------------


def test_non_canonical_input_is_accepted_and_canonicalized() -> None:
    env = signed("transfer.sent")
    w = wire(env)
    variants = [
        json.dumps(w, indent=4).encode(),
        json.dumps(w, ensure_ascii=True).encode(),
        json.dumps(
            {"signature": w["signature"], "payload": w["payload"], "header": w["header"]}
        ).encode(),
        env.leaf_bytes().replace(b'"transfer_id"', b'"\\u0074ransfer_id"'),
        b"\n\t " + env.leaf_bytes() + b"\r\n",
    ]
    for data in variants:
        back = parse_envelope(data)
        assert back == env
        assert back.leaf_bytes() == env.leaf_bytes()
        verify_envelope_signature(back, OP_PUB)


def test_structural_errors_name_the_field() -> None:
    w = wire(signed("transfer.sent"))
    refused(dumps([w]), "envelope", "")
    refused(dumps({k: v for k, v in w.items() if k != "signature"}), "envelope", "/signature")
    refused(dumps({k: v for k, v in w.items() if k != "header"}), "envelope", "/header")
    refused(dumps({**w, "comment": "hola"}), "envelope", "/comment")
    refused(dumps({**w, "header": {**w["header"], "note": "x"}}), "envelope", "/header/note")
    refused(dumps({**w, "header": "x"}), "envelope", "/header")
    refused(dumps({**w, "payload": []}), "envelope", "/payload")
    refused(dumps({**w, "signature": w["signature"][:-4]}), "envelope", "/signature")
    refused(
        dumps({**w, "signature": base64.b64encode(b"\x00" * 65).decode()}), "envelope", "/signature"
    )
    refused(dumps({**w, "signature": w["signature"].rstrip("=")}), "envelope", "/signature")
    refused(
        dumps({**w, "signature": base64.urlsafe_b64encode(b"\xff" * 64).decode()}),
        "envelope",
        "/signature",
    )
    refused(dumps({**w, "header": {**w["header"], "seq": "1"}}), "envelope", "/header/seq")
    refused(
        dumps({**w, "header": {**w["header"], "key_id": "ABCDEF01"}}), "envelope", "/header/key_id"
    )
    refused(
        dumps({**w, "header": {**w["header"], "type": "transfer.stolen"}}),
        "unknown_type",
        "/header/type",
    )
    refused(
        dumps({**w, "header": {**w["header"], "schema_version": 9}}), "unknown_type", "/header/type"
    )


def test_non_canonical_base64_signature_is_refused() -> None:
    # 64 bytes leave 4 padding bits in the last character; only one spelling is allowed,
    # otherwise one event could have two different leaves in the log.
    w = wire(signed("transfer.sent"))
    sig = w["signature"]
    last = sig[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    twin = alphabet[alphabet.index(last) | 1]
    assert base64.b64decode(sig[:-3] + twin + "==") == base64.b64decode(sig)
    refused(dumps({**w, "signature": sig[:-3] + twin + "=="}), "envelope", "/signature")


def test_payload_errors_via_parse() -> None:
    w = wire(signed("transfer.sent"))
    w["payload"]["send"]["amount"] = 5.0
    refused(dumps(w), "schema", "/payload/send/amount")
    w["payload"]["send"]["amount"] = 500
    w["payload"]["note"] = "para mi mamá"
    refused(dumps(w), "schema", "/payload/note")


def test_parse_strictness_reasons() -> None:
    data = signed("transfer.sent").leaf_bytes()
    refused(data, "oversize", max_bytes=len(data) - 1)
    assert parse_envelope(data, max_bytes=len(data))
    refused(b'{"header": {}, "header": {}}', "duplicate_key")
    refused(data[:-1], "json")
    refused(data.replace(b'"op.remesas-sol"', b'"op.remesas-sol\\u0000"', 1), "nul_byte")
    refused(b"\xef\xbb\xbf" + data, "encoding")
    refused(b"x" * (MAX_ENVELOPE_BYTES + 1), "oversize")


# --- signatures and tampering ---------------------------------------------------------


def test_verify_reasons() -> None:
    env = signed("transfer.sent")
    verify_envelope_signature(env, OP_PUB)
    with pytest.raises(VerificationError) as e:
        verify_envelope_signature(env, public_key_bytes(KEYS[COMMITTEE]))
    assert e.value.reason == "key_mismatch"
    assert e.value.got == env.key_id
    forged = Envelope(**{**_fields(env), "signature": bytes(64)})
    with pytest.raises(VerificationError) as e:
        verify_envelope_signature(forged, OP_PUB)
    assert e.value.reason == "bad_signature"


def _fields(env: Envelope) -> dict[str, Any]:
    names = (
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
    return {n: getattr(env, n) for n in names}


@pytest.mark.parametrize("mask", [0x01, 0x20, 0xFF])
def test_flipping_any_byte_is_never_accepted(mask: int) -> None:
    env = signed("transfer.paid_out")
    data = env.leaf_bytes()
    accepted = []
    for i in range(len(data)):
        tampered = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
        try:
            got = parse_envelope(tampered)
            verify_envelope_signature(got, OP_PUB)
        except (MalformedInput, VerificationError):
            continue
        accepted.append(i)
    assert accepted == []


def test_swapping_payloads_between_envelopes_fails() -> None:
    a = wire(signed("transfer.paid_out", seq=1))
    p = sample("transfer.paid_out")
    p["paid"]["amount"] = 1
    b = wire(signed("transfer.paid_out", p, seq=2))
    a["payload"], b["payload"] = b["payload"], a["payload"]
    for w in (a, b):
        with pytest.raises(VerificationError) as e:
            verify_envelope_signature(parse_envelope(dumps(w)), OP_PUB)
        assert e.value.reason == "bad_signature"
    # Swapping whole headers fails the same way.
    c, d = wire(signed("transfer.paid_out", seq=3)), wire(signed("transfer.paid_out", seq=4))
    c["header"], d["header"] = d["header"], c["header"]
    with pytest.raises(VerificationError):
        verify_envelope_signature(parse_envelope(dumps(c)), OP_PUB)


def test_resigning_with_another_publishers_key_fails() -> None:
    # The committee signs an event claiming to be the operator.
    forged = signed("transfer.paid_out", publisher=OPERATOR, key=COMMITTEE)
    with pytest.raises(VerificationError) as e:
        verify_envelope_signature(forged, OP_PUB)
    assert e.value.reason == "key_mismatch"
    # Relabelled to carry the operator's key id: the signature then fails.
    w = wire(forged)
    w["header"]["key_id"] = key_id(OPERATOR, OP_PUB).hex()
    with pytest.raises(VerificationError) as e:
        verify_envelope_signature(parse_envelope(dumps(w)), OP_PUB)
    assert e.value.reason == "bad_signature"
    # An operator event relabelled as the committee's: key ids are name-bound.
    w = wire(signed("transfer.paid_out"))
    w["header"]["publisher_id"] = COMMITTEE
    with pytest.raises(VerificationError) as e:
        verify_envelope_signature(parse_envelope(dumps(w)), OP_PUB)
    assert e.value.reason == "key_mismatch"


def test_envelope_value_semantics() -> None:
    env = signed("transfer.sent")
    again = parse_envelope(env.leaf_bytes())
    assert env == again and hash(env) == hash(again)
    assert len({env, again}) == 1
    with pytest.raises(AttributeError):
        env.seq = 2  # type: ignore[misc]
    assert "signature" in json.loads(env.leaf_bytes())
    assert env.signature_b64() == json.loads(env.leaf_bytes())["signature"]


# --- fuzzing: only MalformedInput ever escapes parse_envelope ---------------------------


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        parse_envelope(data)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SAMPLES)), st.sampled_from(["header", "payload", "signature"]), _json)
def test_structured_garbage_only_raises_malformed_input(
    event_type: str, part: str, junk: Any
) -> None:
    w = wire(signed(event_type))
    if part == "payload" and isinstance(w["payload"], dict) and isinstance(junk, dict):
        w["payload"].update(junk)
    else:
        w[part] = junk
    try:
        data = json.dumps(w).encode()
    except ValueError:
        return
    with contextlib.suppress(MalformedInput):
        parse_envelope(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_valid_bytes_only_raise_malformed_input(data: st.DataObject) -> None:
    raw = bytearray(signed("project.registered").leaf_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(MalformedInput):
        parse_envelope(bytes(raw))


# --- the canonical fast path (issue 16: orjson, no second serialisation) --------------------


def _canonical_bytes(obj: Any) -> bytes:
    """``obj`` spelt as the fast path would produce it (sorted keys, no whitespace)."""
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_canonical_input_takes_the_fast_path_with_the_strict_outcome(event_type: str) -> None:
    from schemas import envelope as module

    env = signed(event_type)
    leaf = env.leaf_bytes()
    assert module._parse_canonical(leaf, MAX_ENVELOPE_BYTES) is not None
    fast = parse_envelope(leaf)
    assert fast.leaf_bytes() == leaf and fast.signed_bytes() == env.signed_bytes()
    assert fast.signed_bytes() == DOMAIN_SEPARATOR + canonicalize({"header": env.header(), "payload": wire(env)["payload"]})
    if env.publisher_id in KEYS:
        verify_envelope_signature(fast, public_key_bytes(KEYS[env.publisher_id]))
    # The same bytes with one space: not canonical, the strict path, the same envelope.
    spaced = leaf.replace(b'{"header":', b'{ "header":', 1)
    assert module._parse_canonical(spaced, MAX_ENVELOPE_BYTES) is None
    assert parse_envelope(spaced) == fast and parse_envelope(spaced).leaf_bytes() == leaf


def test_fast_path_refusals_keep_their_reasons() -> None:
    """Inputs orjson would take but the strict parser refuses keep the strict reason."""
    w = wire(signed("transfer.sent"))
    leaf = _canonical_bytes(w)
    # A duplicate member (orjson keeps the last): not canonical, strict path.
    dup = leaf.replace(b'"seq":', b'"seq":7,"seq":', 1)
    refused(dup, "duplicate_key")
    # An integer beyond 2^53-1, spelt canonically.
    big = json.loads(leaf)
    big["header"]["seq"] = 2**60
    refused(_canonical_bytes(big), "number")
    # Nesting deeper than the limit, spelt canonically.
    deep = json.loads(leaf)
    nested: Any = 1
    for _ in range(40):
        nested = [nested]
    deep["payload"]["x"] = nested
    refused(_canonical_bytes(deep), "depth")
    # A float where an integer is expected: valid JSON, canonical, refused by the schema.
    flt = json.loads(leaf)
    flt["payload"]["send"]["amount"] = 100.0
    refused(_canonical_bytes(flt), "schema", "/payload/send/amount")
    # A NUL through an escape.
    nul = json.loads(leaf)
    nul["payload"]["transfer_id"] = "a\x00b"
    refused(_canonical_bytes(nul), "nul_byte")
