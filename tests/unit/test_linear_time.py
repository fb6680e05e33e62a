"""Untrusted bytes are refused in linear time, whatever their shape (issue 14, item 5).

Anyone who can write to a topic hands the gate up to 64 KiB per record, and
anyone can hand `cuentas verify` a receipt.  Each adversarial shape below is
64 KiB and must be refused in under 50 ms.  This is a complexity check, not a
benchmark: the time is the best of three runs (a loaded machine only ever adds
time), and the 64 KiB time must also scale about linearly from a 16 KiB input
of the same shape (4x the input, less than 10x the time), which a quadratic
scan (16x) cannot meet.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from schemas.envelope import MAX_ENVELOPE_BYTES, Envelope, parse_envelope, sign_event
from schemas.errors import MalformedInput
from schemas.keys import format_verifier_key, public_key_bytes
from schemas.receipt import parse_receipt
from tests.hostile.corpus import private_key

SIZE = MAX_ENVELOPE_BYTES  # 64 KiB: what the gate accepts per record
LIMIT_S = 0.050
FLOOR_S = 0.002  # below this, timer noise is larger than any trend
KEY = private_key("linear-time")


def _signed(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    env: Envelope = sign_event(
        KEY,
        publisher_id="op.linear",
        event_type=event_type,
        payload=payload,
        seq=1,
        event_time="2026-01-01T00:00:00Z",
    )
    return env.to_wire()


SENT = _signed(
    "transfer.sent",
    {
        "transfer_id": "tr-linear-1",
        "operator": "op.linear",
        "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 20000, "currency": "USD"},
        "fee": {"amount": 500, "currency": "USD"},
        "exchange_rate": "17.25",
        "receive_promised": {"amount": 336375, "currency": "MXN"},
        "available_by": "2026-01-01T01:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": "ben_" + "a" * 26},
        "sender": "snd_" + "b" * 26,
        "receipt_digest": "0" * 64,
        "disclosed_cost_bps": 400,
    },
)
REGISTERED = _signed(
    "publisher.registered",
    {
        "publisher_id": "op.other",
        "kind": "operator",
        "roles": ["transfer.sent"],
        "public_key": format_verifier_key("op.other", public_key_bytes(private_key("op.other"))),
        "valid_from": "2026-01-01T00:00:00Z",
    },
)


def _fill(prefix: bytes, unit: bytes, suffix: bytes, size: int) -> bytes:
    n = (size - len(prefix) - len(suffix)) // len(unit)
    return prefix + unit * n + suffix


def _in_payload(
    wire: dict[str, Any],
    path: tuple[str, ...],
    unit: bytes,
    size: int,
    *,
    opening: bytes = b"",
    closing: bytes = b"",
) -> bytes:
    """``wire`` with the value at ``path`` replaced by ``opening unit*n closing``, ``size`` bytes in all."""
    token = "@@filler@@"
    obj = json.loads(json.dumps(wire))
    node = obj
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = token
    head, tail = json.dumps(obj, separators=(",", ":")).encode().split(b'"' + token.encode() + b'"')
    return _fill(head + opening, unit, closing + tail, size)


def _many_keys(size: int) -> bytes:
    head, tail = (
        b'{"header":' + json.dumps(SENT["header"]).encode() + b',"payload":{',
        b'},"signature":"x"}',
    )
    members, n = [], 0
    while len(head) + len(tail) + n + 12 < size:
        m = b'"k%d":1' % len(members)
        members.append(m)
        n += len(m) + 1
    return head + b",".join(members) + tail


#: name -> (input of a given size, parser).  Envelope shapes go through the
#: gate's parser; receipt shapes through `cuentas verify`'s.
SHAPES: dict[str, tuple[Callable[[int], bytes], Callable[[bytes], object]]] = {
    "nesting": (lambda n: _fill(b'{"payload":', b"[", b"", n), parse_envelope),
    "nesting-objects": (lambda n: _fill(b"", b'{"a":', b"", n), parse_envelope),
    "nesting-and-escaped-quotes": (
        lambda n: _fill(b'{"payload":', b'[\\"', b"", n),
        parse_envelope,
    ),
    "escaped-quotes-and-nesting": (
        lambda n: _fill(b'{"payload":', b'\\"[', b"", n),
        parse_envelope,
    ),
    "quotes": (lambda n: _fill(b"", b'"', b"", n), parse_envelope),
    "escapes-in-a-string": (
        lambda n: _in_payload(
            SENT, ("payload", "transfer_id"), b'\\"', n, opening=b'"', closing=b'"'
        ),
        parse_envelope,
    ),
    "unicode-escapes": (
        lambda n: _in_payload(
            SENT, ("payload", "transfer_id"), b"\\u00e9", n, opening=b'"', closing=b'"'
        ),
        parse_envelope,
    ),
    "long-integer": (
        lambda n: _in_payload(SENT, ("payload", "send", "amount"), b"9", n),
        parse_envelope,
    ),
    "long-fraction": (
        lambda n: _in_payload(SENT, ("payload", "send", "amount"), b"1", n, opening=b"1."),
        parse_envelope,
    ),
    "long-exponent": (
        lambda n: _in_payload(SENT, ("payload", "send", "amount"), b"1", n, opening=b"1e"),
        parse_envelope,
    ),
    "many-keys": (_many_keys, parse_envelope),
    "many-duplicate-keys": (
        lambda n: _fill(b'{"payload":{', b'"k":1,', b'"k":1}}', n),
        parse_envelope,
    ),
    "long-string": (
        lambda n: _in_payload(
            SENT, ("payload", "transfer_id"), b"a", n, opening=b'"', closing=b'"'
        ),
        parse_envelope,
    ),
    "long-array-of-bad-items": (
        lambda n: _in_payload(
            REGISTERED, ("payload", "roles"), b"1,", n, opening=b"[", closing=b"1]"
        ),
        parse_envelope,
    ),
    "long-array-of-objects": (
        lambda n: _in_payload(
            REGISTERED, ("payload", "roles"), b'{"a":1},', n, opening=b"[", closing=b"{}]"
        ),
        parse_envelope,
    ),
    "receipt-nesting-and-escaped-quotes": (
        lambda n: _fill(b'{"event":', b'[\\"', b"", n),
        parse_receipt,
    ),
    "receipt-long-proof": (
        lambda n: _fill(b'{"inclusion_proof":[', b'"AAAA",', b'"A"]}', n),
        parse_receipt,
    ),
}


def _refusal_time(data: bytes, parse: Callable[[bytes], object]) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises(MalformedInput):
            parse(data)
        best = min(best, time.perf_counter() - start)
        if best > 20 * LIMIT_S:  # hopeless: do not spend minutes proving it
            break
    return best


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_adversarial_64_kib_inputs_are_refused_quickly(shape: str) -> None:
    make, parse = SHAPES[shape]
    big, small = make(SIZE), make(SIZE // 4)
    assert SIZE - 64 <= len(big) <= SIZE, len(big)
    t_big = _refusal_time(big, parse)
    assert t_big < LIMIT_S, f"{shape}: {t_big * 1000:.1f} ms to refuse 64 KiB"
    t_small = _refusal_time(small, parse)
    assert t_big < 10 * max(t_small, FLOOR_S), (
        f"{shape}: 4x the input took {t_big / max(t_small, 1e-9):.1f}x the time "
        f"({t_small * 1000:.2f} ms -> {t_big * 1000:.2f} ms): not linear"
    )


def test_regression_depth_precheck_rescanned_the_input_from_every_quote() -> None:
    """Regression: the depth pre-check's regex retried a string match from every quote, to the end
    of the input; a 64 KiB envelope of nested brackets and escaped quotes took 14 s to refuse and one
    such unsigned record stalled the gate."""
    data = _fill(b'{"payload":', b'[\\"', b"", SIZE)
    assert _refusal_time(data, parse_envelope) < LIMIT_S


def test_regression_schema_message_read_every_bad_array_item() -> None:
    """Regression: after the fast validator said no, jsonschema listed an error for every item of an
    over-long array and best_match read them all: 40 KiB of bad roles took 1.5 s to refuse."""
    data = _in_payload(REGISTERED, ("payload", "roles"), b"1,", SIZE, opening=b"[", closing=b"1]")
    with pytest.raises(MalformedInput) as e:
        parse_envelope(data)
    assert e.value.reason == "schema" and e.value.field == "/payload/roles"
    assert _refusal_time(data, parse_envelope) < LIMIT_S


def test_depth_is_still_counted_outside_strings_only() -> None:
    # The linear scan still skips brackets inside strings, escaped quotes included.
    from schemas.canonical import parse_json

    assert parse_json(b'["\\"' + b"[" * 100 + b'"]', max_bytes=SIZE) == ['"' + "[" * 100]
    with pytest.raises(MalformedInput) as e:
        parse_json(b'["\\\\"' + b"," + b"[" * 40 + b"]" * 40 + b"]", max_bytes=SIZE)
    assert e.value.reason == "depth"


def test_numbers_are_bounded_in_length() -> None:
    from schemas.canonical import MAX_NUMBER_CHARS, parse_json

    assert parse_json(b"1." + b"0" * (MAX_NUMBER_CHARS - 2), max_bytes=SIZE) == 1.0
    with pytest.raises(MalformedInput) as e:
        parse_json(b"1." + b"0" * (MAX_NUMBER_CHARS - 1), max_bytes=SIZE)
    assert e.value.reason == "number"
