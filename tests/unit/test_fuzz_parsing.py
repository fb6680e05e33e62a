"""Fuzzing the parsers of untrusted input: only ``CuentasError`` may ever come out.

Arbitrary bytes and text, and structured mutations of valid envelopes, signed
checkpoints, receipts, tile paths and entry bundles, go through

* ``schemas.envelope.parse_envelope`` + ``verify_envelope_signature``,
* ``schemas.note.parse_note`` / ``parse_checkpoint`` / ``open_checkpoint`` (+ cosignatures),
* ``schemas.receipt.parse_receipt`` / ``verify_receipt``,
* ``schemas.tiles.parse_tile_path`` / ``decode_entry_bundle``,

and every refusal must be a ``CuentasError`` (``MalformedInput``, ``VerificationError``,
``ProofError``), never a ``KeyError``, ``TypeError``, ``UnicodeError``, ``RecursionError``...
A mutated envelope whose canonical form changed never verifies; a mutated note or
receipt that still verifies says exactly what the original said.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.canonical import canonicalize
from schemas.envelope import Envelope, parse_envelope, verify_envelope_signature
from schemas.errors import CuentasError, MalformedInput, VerificationError
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, public_key_bytes
from schemas.merkle import inclusion_proof, root_hash
from schemas.note import (
    Checkpoint,
    add_signatures,
    cosign,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    verify_cosignatures,
)
from schemas.receipt import build_receipt, parse_receipt, verify_receipt
from schemas.tiles import decode_entry_bundle, encode_entry_bundle, parse_tile_path
from tests.hostile.corpus import Corpus, private_key

FUZZ = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------- valid inputs

_CORPUS = Corpus(datetime(2026, 1, 1, tzinfo=UTC))
_OP = "mto-hostile"
_OP_KEY = private_key(_OP)
_OP_PUB = public_key_bytes(_OP_KEY)
ENVELOPES: list[Envelope] = [
    _CORPUS.fresh("fuzz/sent", "sent"),
    _CORPUS.fresh("fuzz/paid", "paid"),
    _CORPUS.sign("fuzz/project", _OP, "project.registered", _CORPUS.project_payload(), key=_OP_KEY),
    _CORPUS.sign("fuzz/disb", _OP, "disbursement.made", _CORPUS.disb_payload(), key=_OP_KEY),
]
assert all(e.publisher_id == _OP for e in ENVELOPES)

LOG = "cuentasclaras.example/log"
LOG_KEY, W_KEY = private_key("log"), private_key("witness")
LOG_VK = VerifierKey(LOG, public_key_bytes(LOG_KEY))
W_VK = VerifierKey("witness.fuzz", public_key_bytes(W_KEY), ALG_COSIGNATURE_V1)
LEAVES = [e.leaf_bytes() for e in ENVELOPES]
CP = Checkpoint(LOG, len(LEAVES), root_hash(LEAVES))
NOTE = add_signatures(sign_checkpoint(CP, LOG_KEY),
                      [cosign(format_checkpoint(CP), W_VK.name, W_KEY, 1_767_225_600)])
RECEIPT = build_receipt(LEAVES[1], 1, len(LEAVES), inclusion_proof(1, LEAVES), NOTE,
                        f"{_OP}+{ENVELOPES[0].key_id}+{base64.b64encode(bytes([1]) + _OP_PUB).decode()}")
RECEIPT_JSON = json.loads(RECEIPT.to_json())
assert verify_receipt(RECEIPT.to_json().encode(), LOG_VK, [W_VK], 1).publisher_signature_checked

# --------------------------------------------------------------------------- strategies

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Characters that matter to the formats: JSON and note syntax, escapes, look-alikes, controls.
SPICY = st.sampled_from([*list('{}[]",:\\/ \n\r\t\x00\x7f—+=-.0123456789aAzZ_'), "\u202e", "а", "ｍ", "\ufeff", "é", "💸", "\\u0000", "\\ud800", "—"])
TEXT_NO_SURROGATES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def structured_mutation(draw: st.DrawFn, obj: Any) -> Any:
    """``obj`` with one member replaced, removed, added, retyped or wrapped."""
    obj = copy.deepcopy(obj)
    paths = _paths(obj)[1:]
    path = draw(st.sampled_from(paths))
    parent = obj
    for p in path[:-1]:
        parent = parent[p]
    key = path[-1]
    op = draw(st.sampled_from(["replace", "delete", "add", "wrap", "retype", "tweak"]))
    value = parent[key]
    if op == "replace":
        parent[key] = draw(JSON_VALUES)
    elif op == "delete":
        del parent[key]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
    elif op == "wrap":
        parent[key] = [value]
    elif op == "retype":
        parent[key] = str(value) if not isinstance(value, str) else (int(value) if value.isdigit() else None)
    elif isinstance(value, str) and value:
        i = draw(st.integers(0, len(value) - 1))
        parent[key] = value[:i] + draw(SPICY) + value[i + 1 :]
    elif isinstance(value, int) and not isinstance(value, bool):
        parent[key] = value + draw(st.sampled_from([1, -1, 2**53, -(2**63), 10**15]))
    else:
        parent[key] = draw(JSON_VALUES)
    return obj


@st.composite
def similar_mutation(draw: st.DrawFn, obj: Any) -> Any:
    """``obj`` with one or two scalars changed within their kind (a letter for a letter, a digit
    for a digit, n for n +- k), so the result mostly still matches the schema: the changes a
    forger would make to an otherwise valid event."""
    obj = copy.deepcopy(obj)
    leaves = [p for p in _paths(obj)[1:] if not isinstance(_at(obj, p), dict | list)]
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=2, unique=True)):
        parent = _at(obj, path[:-1])
        value = parent[path[-1]]
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int):
            parent[path[-1]] = max(0, value + draw(st.sampled_from([1, -1, 7, 100, -100, 10**6])))
        elif isinstance(value, str) and value:
            i = draw(st.integers(0, len(value) - 1))
            c = value[i]
            pool = ("abcdefghijklmnopqrstuvwxyz" if c.islower() else "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c.isupper()
                    else "0123456789" if c.isdigit() else c)
            parent[path[-1]] = value[:i] + draw(st.sampled_from(pool)) + value[i + 1 :]
    return obj


def _at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes replaced, inserted or deleted."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, max(0, len(buf) - 1)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if op == "flip" and buf:
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[i] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=8) | SPICY.map(lambda c: c.encode("utf-8", "surrogatepass")))
        elif buf:
            del buf[i : i + draw(st.integers(1, 8))]
    return bytes(buf)


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters replaced, inserted or deleted."""
    s = text
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, max(0, len(s) - 1)))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        if op == "set" and s:
            s = s[:i] + draw(SPICY) + s[i + 1 :]
        elif op == "insert":
            s = s[:i] + draw(SPICY) + s[i:]
        elif s:
            s = s[:i] + s[i + draw(st.integers(1, 6)) :]
    return s


def _dump(obj: Any, ascii_only: bool) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


# --------------------------------------------------------------------------- envelopes


@FUZZ
@given(st.binary(max_size=4096))
@example(b"")
@example(b"[" * 100000)
@example(b'{"header":{},"payload":{},"signature":""}')
def test_parse_envelope_arbitrary_bytes(data: bytes) -> None:
    try:
        env = parse_envelope(data)
    except MalformedInput:
        return
    with pytest.raises(VerificationError):
        verify_envelope_signature(env, _OP_PUB)


@FUZZ
@given(st.sampled_from(ENVELOPES).flatmap(
    lambda e: st.tuples(st.just(e), structured_mutation(json.loads(e.leaf_bytes())), st.booleans())))
def test_structured_mutations_of_envelopes_never_verify(args: tuple[Envelope, Any, bool]) -> None:
    original, mutated, ascii_only = args
    _check_envelope(original, _dump(mutated, ascii_only))


@FUZZ
@given(st.sampled_from(ENVELOPES).flatmap(
    lambda e: st.tuples(st.just(e), similar_mutation(json.loads(e.leaf_bytes())), st.booleans())))
def test_schema_preserving_mutations_of_envelopes_never_verify(args: tuple[Envelope, Any, bool]) -> None:
    original, mutated, ascii_only = args
    _check_envelope(original, _dump(mutated, ascii_only))


@FUZZ
@given(st.sampled_from(ENVELOPES).flatmap(lambda e: st.tuples(st.just(e), byte_mutation(e.leaf_bytes()))))
def test_byte_mutations_of_envelopes_never_verify(args: tuple[Envelope, bytes]) -> None:
    original, data = args
    _check_envelope(original, data)


def _check_envelope(original: Envelope, data: bytes) -> None:
    try:
        env = parse_envelope(data)
    except MalformedInput:
        return
    if env.leaf_bytes() == original.leaf_bytes():
        verify_envelope_signature(env, _OP_PUB)  # the same event, spelt otherwise: still valid
        return
    with pytest.raises(VerificationError):
        verify_envelope_signature(env, _OP_PUB)
    with pytest.raises(VerificationError):  # and never with another key either
        verify_envelope_signature(env, public_key_bytes(private_key("intruder")))


# --------------------------------------------------------------------------- notes and checkpoints


@FUZZ
@given(st.binary(max_size=2048) | st.text(max_size=600) | TEXT_NO_SURROGATES)
@example("\ud800\n\n\u2014 a AAAA\n")
@example("x\n\n" + "\u2014 a AAAAAAA=\n" * 101)
def test_parse_note_and_checkpoint_arbitrary_input(data: bytes | str) -> None:
    for fn in (parse_note, parse_checkpoint):
        with contextlib.suppress(MalformedInput):
            fn(data)
    with contextlib.suppress(MalformedInput, VerificationError):
        open_checkpoint(data, LOG_VK)


@FUZZ
@given(text_mutation(NOTE) | byte_mutation(NOTE.encode()))
def test_mutated_signed_checkpoints_never_say_something_else(data: str | bytes) -> None:
    try:
        cp, note = open_checkpoint(data, LOG_VK)
        witnesses = verify_cosignatures(note, [W_VK], 1)
    except CuentasError:
        return
    # what still verifies is exactly what the log and the witness signed
    assert cp == CP and note.text == format_checkpoint(CP)
    assert [k for k, _ in witnesses] == [W_VK]


# --------------------------------------------------------------------------- receipts


@FUZZ
@given(st.binary(max_size=4096) | TEXT_NO_SURROGATES)
@example(b'{"format": "cuentas-claras/receipt/v1", "event": {}, "leaf_index": 0, "tree_size": 1,'
         b' "inclusion_proof": [], "checkpoint": ""}')
def test_parse_and_verify_receipt_arbitrary_input(data: bytes | str) -> None:
    with contextlib.suppress(MalformedInput):
        parse_receipt(data)
    with pytest.raises(CuentasError):
        verify_receipt(data, LOG_VK, [W_VK], 1)


@FUZZ
@given(structured_mutation(RECEIPT_JSON).map(lambda o: _dump(o, False))
       | similar_mutation(RECEIPT_JSON).map(lambda o: _dump(o, False))
       | byte_mutation(RECEIPT.to_json().encode()))
def test_mutated_receipts_never_prove_something_else(data: bytes) -> None:
    try:
        v = verify_receipt(data, LOG_VK, [W_VK], 1)
    except CuentasError:
        return
    assert canonicalize(v.receipt.event) == LEAVES[1]
    assert (v.receipt.leaf_index, v.receipt.tree_size, v.checkpoint) == (1, len(LEAVES), CP)
    assert v.publisher_signature_checked == bool(v.receipt.publisher_key)


# --------------------------------------------------------------------------- tiles


TILE_PATHS = st.from_regex(r"tile/(entries|[0-9]{1,3})/(x[0-9]{3}/){0,8}[0-9]{1,4}(\.p/[0-9]{1,4})?", fullmatch=True)


@FUZZ
@given(TILE_PATHS | st.text(max_size=80) | TILE_PATHS.flatmap(text_mutation))
@example("tile/0/x000/001")
@example("tile/entries/000.p/256")
def test_parse_tile_path(path: str) -> None:
    try:
        level, index, width = parse_tile_path(path)
    except MalformedInput:
        return
    assert level >= -1 and index >= 0 and 1 <= width <= 256


@FUZZ
@given(st.binary(max_size=3000), st.none() | st.integers(-3, 300))
@example(b"\x00", None)
@example(b"\x00\x00" * 257, None)
@example(b"\xff\xff" + b"x" * 10, None)
def test_decode_entry_bundle(data: bytes, width: int | None) -> None:
    try:
        entries = decode_entry_bundle(data, width=width)
    except MalformedInput:
        return
    assert encode_entry_bundle(entries) == data  # one bundle, one spelling
    assert width is None or len(entries) == width


# --------------------------------------------------------------------------- known bugs


def test_regression_receipt_text_with_a_lone_surrogate_is_malformed_input() -> None:
    """Regression: parse_receipt raised UnicodeEncodeError on a lone surrogate."""
    with pytest.raises(MalformedInput):
        parse_receipt("\ud800")


def test_regression_tile_path_with_thousands_of_index_digits_is_malformed_input() -> None:
    """Regression: an unbounded index pattern let int() raise ValueError past 4,300 digits."""
    with pytest.raises(MalformedInput):
        parse_tile_path("tile/0/" + "x001/" * 1500 + "000")
