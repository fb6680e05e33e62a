"""RFC 8785 canonicalization and strict JSON parsing."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from schemas.canonical import MAX_SAFE_INTEGER, canonicalize, parse_json
from schemas.errors import MalformedInput

BIG = 1 << 20


def refused(data: bytes, reason: str, **kw: Any) -> MalformedInput:
    with pytest.raises(MalformedInput) as info:
        parse_json(data, max_bytes=kw.pop("max_bytes", BIG), **kw)
    assert info.value.reason == reason, (info.value.reason, str(info.value))
    assert str(info.value)  # every refusal says what is wrong
    return info.value


# --- RFC 8785 -------------------------------------------------------------------------


def test_rfc8785_section_3_2_2_example() -> None:
    # The input and output of RFC 8785 section 3.2.2 (numbers, string escapes, literals).
    data = (
        b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    expected = (
        b'{"literals":[null,true,false],'
        b'"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        b'"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(parse_json(data, max_bytes=BIG)) == expected


def _f(bits: int) -> float:
    return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])


@pytest.mark.parametrize(
    ("bits", "text"),
    [
        # RFC 8785 Appendix B: IEEE 754 bit patterns and their JCS number form.
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),  # -0 serializes as 0
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7FEFFFFFFFFFFFFF, "1.7976931348623157e+308"),
        (0xFFEFFFFFFFFFFFFF, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xC340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44B52D02C7E14AF5, "9.999999999999997e+22"),
        (0x44B52D02C7E14AF6, "1e+23"),
        (0x44B52D02C7E14AF7, "1.0000000000000001e+23"),
        (0x444B1AE4D6E2EF4E, "999999999999999700000"),
        (0x444B1AE4D6E2EF4F, "999999999999999900000"),
        (0x444B1AE4D6E2EF50, "1e+21"),
        (0x3EB0C6F7A0B5ED8C, "9.999999999999997e-7"),
        (0x3EB0C6F7A0B5ED8D, "0.000001"),
        (0x41B3DE4355555553, "333333333.3333332"),
        (0x41B3DE4355555554, "333333333.33333325"),
        (0x41B3DE4355555555, "333333333.3333333"),
        (0x41B3DE4355555556, "333333333.3333334"),
        (0x41B3DE4355555557, "333333333.33333343"),
        (0xBECBF647612F3696, "-0.0000033333333333333333"),
        (0x43143FF3C1CB0959, "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(bits: int, text: str) -> None:
    assert canonicalize(_f(bits)) == text.encode()


@pytest.mark.parametrize(
    ("source", "text"),
    [
        (b"1e21", b"1e+21"),
        (b"1E21", b"1e+21"),
        (b"1e20", b"100000000000000000000"),
        (b"1E-7", b"1e-7"),
        (b"1e-6", b"0.000001"),
        (b"-0", b"0"),
        (b"-0.0", b"0"),
        (b"5e-324", b"5e-324"),
        (b"4.50", b"4.5"),
        (b"100", b"100"),
        (b"9007199254740991", b"9007199254740991"),
        (b"-9007199254740991", b"-9007199254740991"),
    ],
)
def test_number_forms_through_the_parser(source: bytes, text: bytes) -> None:
    assert canonicalize(parse_json(source, max_bytes=BIG)) == text


def test_large_integers_are_refused_not_rounded() -> None:
    # Beyond 2^53 a double cannot hold every integer: refuse, never round silently.
    assert canonicalize(MAX_SAFE_INTEGER) == b"9007199254740991"
    for n in (MAX_SAFE_INTEGER + 1, -(MAX_SAFE_INTEGER + 1), 10**30):
        with pytest.raises(MalformedInput) as e:
            canonicalize(n)
        assert e.value.reason == "canonical"
    refused(b"9007199254740992", "number")
    refused(b"-9007199254740992", "number")
    refused(b"1" * 5000, "number")  # beyond int_max_str_digits, still a clean refusal
    refused(b"[1e400]", "number")
    refused(b"-1e400", "number")


def test_nan_and_infinity_cannot_be_canonicalized() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(MalformedInput) as e:
            canonicalize({"x": value})
        assert e.value.reason == "canonical"


def test_rfc8785_section_3_2_3_key_order_by_utf16_code_units() -> None:
    # The sorting example of RFC 8785 section 3.2.3.
    data = (
        b'{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With'
        b' Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        b' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    out = canonicalize(parse_json(data, max_bytes=BIG)).decode("utf-8")
    order = ["\\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    positions = [out.index(f'"{k}":') for k in order]
    assert positions == sorted(positions)
    # Code-point order would put U+FB33 before U+1F600; UTF-16 order puts the
    # surrogate pair (0xD83D...) first.
    assert sorted(["\ufb33", "\U0001f600"]) == ["\ufb33", "\U0001f600"]
    assert out.index("\U0001f600") < out.index("\ufb33")


def test_unicode_escapes_and_non_bmp() -> None:
    assert canonicalize(parse_json(b'"\\ud83d\\ude00"', max_bytes=BIG)) == b'"\xf0\x9f\x98\x80"'
    assert canonicalize(parse_json(b'"\\u00e9"', max_bytes=BIG)) == '"é"'.encode()
    assert canonicalize(parse_json('"é"'.encode(), max_bytes=BIG)) == '"é"'.encode()
    # Only controls, quote and backslash are escaped; DEL, U+2028 and bidi are not.
    assert canonicalize("\x1f\x7f\u2028\u202e") == b'"\\u001f\x7f\xe2\x80\xa8\xe2\x80\xae"'
    assert canonicalize("\b\f\n\r\t") == b'"\\b\\f\\n\\r\\t"'
    assert canonicalize("\u0000") == b'"\\u0000"'  # canonicalize itself is total
    assert canonicalize("/") == b'"/"'


def test_structures_and_literals() -> None:
    assert canonicalize({"b": [1, {"d": True, "c": None}], "a": "x"}) == (
        b'{"a":"x","b":[1,{"c":null,"d":true}]}'
    )
    assert canonicalize([]) == b"[]" and canonicalize({}) == b"{}"


def test_unsupported_values_are_malformed_input() -> None:
    for bad in ({1: "x"}, b"bytes", {1, 2}, "\ud800", object()):
        with pytest.raises(MalformedInput) as e:
            canonicalize(bad)
        assert e.value.reason == "canonical"


# --- parse_json strictness ------------------------------------------------------------


def test_duplicate_keys() -> None:
    e = refused(b'{"a": 1, "a": 2}', "duplicate_key")
    assert "'a'" in str(e)
    refused(b'{"x": {"b": 1, "c": 2, "b": 1}}', "duplicate_key")
    refused(b'[{"a": 1}, {"k": 1, "k": 1}]', "duplicate_key")
    # Same name through an escape is the same key.
    refused(b'{"a": 1, "\\u0061": 2}', "duplicate_key")
    assert parse_json(b'{"a": 1, "A": 2}', max_bytes=BIG) == {"a": 1, "A": 2}


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b'{"a": NaN}'])
def test_nan_and_infinity_literals(literal: bytes) -> None:
    refused(literal, "json")


def test_byte_order_mark_and_invalid_utf8() -> None:
    refused(b'\xef\xbb\xbf{"a": 1}', "encoding")
    refused(b'"\xff"', "encoding")
    refused(b'"\xc0\xaf"', "encoding")  # overlong "/"
    refused(b'"\xed\xa0\x80"', "encoding")  # a surrogate encoded as UTF-8 (CESU-8)
    refused(b'"\xe2\x82"', "encoding")  # truncated sequence
    refused('{"a": "é"}'.encode("latin-1"), "encoding")
    refused('{"a": 1}'.encode("utf-16"), "encoding")


def test_lone_surrogates() -> None:
    refused(b'"\\ud800"', "surrogate")
    refused(b'"\\udc00"', "surrogate")
    refused(b'"x\\ud83dy"', "surrogate")
    refused(b'{"\\ud800": 1}', "surrogate")
    refused(b'[["\\ude00\\ud83d"]]', "surrogate")  # pair in the wrong order
    assert parse_json(b'"\\ud83d\\ude00"', max_bytes=BIG) == "\U0001f600"


def test_nul_bytes() -> None:
    refused(b'{"a": "x\x00"}', "nul_byte")
    refused(b'{"a": 1}\x00', "nul_byte")
    refused(b'{"a": "x\\u0000y"}', "nul_byte")
    refused(b'{"\\u0000": 1}', "nul_byte")
    refused(b'[[{"k": ["\\u0000"]}]]', "nul_byte")


def test_depth_limit() -> None:
    assert parse_json(b"[" * 32 + b"]" * 32, max_bytes=BIG) is not None
    refused(b"[" * 33 + b"]" * 33, "depth")
    refused(b'{"a":' * 33 + b"1" + b"}" * 33, "depth")
    assert parse_json(b"[" * 5 + b"]" * 5, max_bytes=BIG, max_depth=5) is not None
    refused(b"[" * 6 + b"]" * 6, "depth", max_depth=5)
    # Brackets inside strings do not count.
    assert parse_json(b'["' + b"[{" * 100 + b'"]', max_bytes=BIG) == ["[{" * 100]
    assert parse_json(b'["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', max_bytes=BIG)
    # Far beyond the recursion limit: still a clean refusal.
    refused(b"[" * 200_000 + b"]" * 200_000, "depth", max_bytes=10**6)
    refused(b"[" * 200_000, "depth", max_bytes=10**6)


def test_size_limit() -> None:
    data = b'{"a": "' + b"x" * 100 + b'"}'
    assert parse_json(data, max_bytes=len(data)) == {"a": "x" * 100}
    e = refused(data, "oversize", max_bytes=len(data) - 1)
    assert str(len(data)) in str(e)


@pytest.mark.parametrize(
    "data",
    [b"", b" ", b"{", b'{"a": 1,}', b"[1,]", b"{'a': 1}", b'{"a": 1} x', b"01", b'"\t"', b"tru"],
)
def test_not_json(data: bytes) -> None:
    refused(data, "json")


def test_bytes_only() -> None:
    with pytest.raises(MalformedInput) as e:
        parse_json('{"a": 1}', max_bytes=BIG)  # type: ignore[arg-type]
    assert e.value.reason == "json"
    assert parse_json(bytearray(b"[1]"), max_bytes=BIG) == [1]
    assert parse_json(memoryview(b"[1]"), max_bytes=BIG) == [1]


def test_plain_values_come_back() -> None:
    assert parse_json(b' {"a": [1, 2.5, "x", true, null]} ', max_bytes=BIG) == {
        "a": [1, 2.5, "x", True, None]
    }
    assert type(parse_json(b"7", max_bytes=BIG)) is int
