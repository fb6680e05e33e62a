"""Strict JSON parsing and RFC 8785 (JCS) canonical serialization.

Two halves of one contract: ``parse_json`` turns untrusted bytes into plain
Python values or refuses them with a precise reason; ``canonicalize`` turns
values back into the one byte string RFC 8785 defines for them, which is what
gets signed and what becomes a leaf of the audit log.

``parse_json`` is stricter than RFC 8259 wherever leniency would let two
readers disagree about what was signed (I-JSON, RFC 7493):

==================  ===========================================================
reason              refused input
==================  ===========================================================
``oversize``        more than ``max_bytes`` bytes
``encoding``        not UTF-8 (RFC 8259 section 8.1), or a byte order mark
``nul_byte``        a NUL byte, raw or as ``\\u0000``, anywhere
``surrogate``       a lone UTF-16 surrogate escape (``\\ud800``) (RFC 7493 2.1)
``duplicate_key``   an object with the same member name twice (RFC 7493 2.3)
``json``            not JSON at all, or ``NaN`` / ``Infinity`` literals
``number``          a number outside IEEE 754 double range, or an integer
                    outside +-(2^53 - 1) that a double cannot hold exactly
                    (RFC 7493 2.2, RFC 8785 section 3.2.2.3), or a number
                    spelt with more than ``MAX_NUMBER_CHARS`` characters
``depth``           arrays/objects nested deeper than ``max_depth``
==================  ===========================================================

Every step is linear in the input, whatever its shape, because these bytes
come from anyone who can write to a topic: one record must not stall the
gate.  The depth pre-check removes strings with one possessive regex pass
(no retry from every quote: that rescanning made a 64 KiB record of nested
brackets and escaped quotes take 14 s to refuse) and counts the brackets
left; the decoder itself (CPython's C scanner) is linear; numbers are
bounded in length before they are converted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import rfc8785

from schemas.errors import MalformedInput

__all__ = ["MAX_NUMBER_CHARS", "MAX_SAFE_INTEGER", "canonicalize", "parse_json"]

#: Largest integer an IEEE 754 double holds exactly (RFC 8785 section 3.2.2.3, RFC 7493 2.2).
MAX_SAFE_INTEGER = 2**53 - 1
#: Longest spelling of a number accepted.  The shortest round-trip form of any
#: double (RFC 8785 3.2.2.3) has at most 24 characters; 64 leaves room for
#: harmless non-canonical spellings ("4.50", "1E30") and refuses the rest
#: before any conversion.
MAX_NUMBER_CHARS = 64

_BOM = b"\xef\xbb\xbf"
# Any code point a lone surrogate escape can produce, plus NUL.
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# A JSON string, for the depth pre-scan.  Possessive quantifiers never give
# back what they matched, and the closing quote is optional, so the match
# from an opening quote always succeeds and ends where the string ends (or at
# the end of the input): each byte is looked at once.  A pattern that must
# find the closing quote rescans the rest of the input from every quote of a
# string that never closes -- quadratic.  Only valid JSON must be split
# exactly; anything else is refused by the decoder anyway.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
# Every byte but the four brackets, deleted by bytes.translate.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def canonicalize(obj: Any) -> bytes:
    """The RFC 8785 (JSON Canonicalization Scheme) serialization of ``obj``.

    Keys sorted by UTF-16 code units (section 3.2.3), numbers in the ECMAScript
    shortest form (section 3.2.2.3), minimal string escaping (3.2.2.2), no
    whitespace, UTF-8 output.  Anything JCS cannot represent (NaN, integers
    beyond 2^53, lone surrogates, non-string keys, other Python types) is a
    ``MalformedInput`` with reason ``canonical``.
    """
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as e:
        raise MalformedInput(f"cannot canonicalize (RFC 8785): {e}", reason="canonical") from e
    except RecursionError as e:
        raise MalformedInput("cannot canonicalize: nested too deeply", reason="canonical") from e


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise MalformedInput(
                    f"duplicate key {_show(k)} in a JSON object", reason="duplicate_key", field=k
                )
            seen.add(k)
    return obj


def _parse_constant(name: str) -> Any:
    raise MalformedInput(f"{name} is not JSON (RFC 8259 section 6)", reason="json")


def _parse_int(text: str) -> int:
    # Length guard first: int() of thousands of digits is slow (quadratic) and,
    # past sys.int_max_str_digits, raises ValueError.
    if len(text) > 17 or abs(n := int(text)) > MAX_SAFE_INTEGER:
        raise MalformedInput(
            f"integer {text[:24]}{'...' if len(text) > 24 else ''} is outside +-(2^53-1) "
            "(RFC 7493 section 2.2)",
            reason="number",
        )
    return n


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise MalformedInput(
            f"number {text[:24]}... is spelt with {len(text)} characters, more than "
            f"{MAX_NUMBER_CHARS}",
            reason="number",
        )
    value = float(text)
    if not math.isfinite(value):
        raise MalformedInput(
            f"number {text[:24]} is outside the IEEE 754 double range", reason="number"
        )
    return value


# Built once: json.loads with hooks would build a new decoder on every call.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs_hook,
    parse_constant=_parse_constant,
    parse_int=_parse_int,
    parse_float=_parse_float,
)


def _show(s: str) -> str:
    # Repr escapes control and bidi characters; cap the length so an attacker
    # cannot make error messages (which get logged) arbitrarily large.
    r = repr(s)
    return r if len(r) <= 64 else r[:60] + "...'"


def _deeper_than(data: bytes, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, brackets in strings not counted.

    Linear: one regex pass removes the strings, ``translate`` keeps only the
    brackets (both in C), and the loop stops as soon as the limit is passed.
    """
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    opening = _OPENING
    for b in brackets:
        if b in opening:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _check_strings(obj: Any) -> None:
    """Find NUL and lone surrogates in keys and values (only reachable via escapes)."""
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            strings: list[str] = [o]
        elif isinstance(o, dict):
            strings = list(o)
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
            continue
        else:
            continue
        for s in strings:
            m = _BAD_CHAR.search(s)
            if m is None:
                continue
            if m.group() == "\x00":
                raise MalformedInput(
                    f"string {_show(s)} contains a NUL character", reason="nul_byte"
                )
            raise MalformedInput(
                f"string {_show(s)} contains a lone UTF-16 surrogate (RFC 7493 section 2.1)",
                reason="surrogate",
            )


def parse_json(data: bytes | bytearray | memoryview, *, max_bytes: int, max_depth: int = 32) -> Any:
    """Parse untrusted JSON strictly; every refusal is a ``MalformedInput`` with a reason.

    Returns plain ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInput(f"expected bytes, got {type(data).__name__}", reason="json")
    data = bytes(data)
    if len(data) > max_bytes:
        raise MalformedInput(
            f"input is {len(data)} bytes, more than the limit of {max_bytes}", reason="oversize"
        )
    if data.startswith(_BOM):
        raise MalformedInput(
            "input starts with a UTF-8 byte order mark (RFC 8259 section 8.1)", reason="encoding"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedInput(
            f"invalid UTF-8 at byte {e.start}: {e.reason}", reason="encoding"
        ) from e
    if b"\x00" in data:
        raise MalformedInput(f"NUL byte at offset {data.index(0)}", reason="nul_byte")
    # Cheap bound first: depth can't exceed the number of opening brackets.
    if data.count(b"[") + data.count(b"{") > max_depth and _deeper_than(data, max_depth):
        raise MalformedInput(f"JSON nested deeper than {max_depth} levels", reason="depth")
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise MalformedInput(
            f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}", reason="json"
        ) from e
    except RecursionError as e:  # pragma: no cover - the pre-scan catches this first
        raise MalformedInput(f"JSON nested deeper than {max_depth} levels", reason="depth") from e
    # NUL and lone surrogates can only appear through \u escapes (raw NUL is
    # refused above, and raw surrogates are invalid UTF-8), so skip the walk
    # when there are none: the common case on the hot path.
    if b"\\u" in data:
        _check_strings(obj)
    return obj
