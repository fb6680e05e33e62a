"""schemas.money's conversion helpers: the one place amounts change units or get rounded."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import MalformedInput
from schemas.money import (
    ISO_4217_MINOR_UNITS,
    Money,
    bps,
    display_exponent,
    div_round_half_away,
    major_fraction,
    parse_rate,
    round_half_away,
    to_major,
    to_major_float,
)

codes = st.sampled_from(sorted(ISO_4217_MINOR_UNITS))
amounts = st.integers(-(10**15), 10**15)


@given(amounts, codes)
def test_major_fraction_is_the_exact_decimal_conversion(amount: int, currency: str) -> None:
    assert major_fraction(amount, currency) == Fraction(to_major(Money(amount, currency)))


def test_unknown_currency_is_refused_where_it_counts_and_shown_with_two_decimals() -> None:
    with pytest.raises(MalformedInput) as e:
        major_fraction(100, "XXX")
    assert e.value.reason == "currency" and isinstance(e.value, ValueError)
    assert display_exponent("XXX") == 2
    assert display_exponent("JPY") == 0 and display_exponent("KWD") == 3
    assert to_major_float(12345, "USD") == 123.45
    assert to_major_float(500, "CLP") == 500.0
    assert to_major_float(12345, "XXX") == 123.45


@given(amounts, st.one_of(codes, st.just("ZZZ")))
def test_to_major_float_is_the_dashboards_former_formula(amount: int, currency: str) -> None:
    assert to_major_float(amount, currency) == float(
        int(amount) / (10 ** ISO_4217_MINOR_UNITS.get(currency, 2))
    )


def _old_round_half_away(x: Fraction) -> int:
    # The rules' former implementation (stream_processors/rules/model.py).
    n = abs(x)
    q = n.numerator // n.denominator
    if 2 * (n - q) >= 1:
        q += 1
    return q if x >= 0 else -q


@given(st.fractions())
def test_round_half_away_is_unchanged(x: Fraction) -> None:
    assert round_half_away(x) == _old_round_half_away(x)


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**20))
def test_integer_rounding_is_symmetric_and_ties_go_away_from_zero(num: int, den: int) -> None:
    got = div_round_half_away(num, den)
    assert got == round_half_away(Fraction(num, den))
    assert div_round_half_away(-num, den) == -got
    assert abs(Fraction(num, den) - got) <= Fraction(1, 2)


def test_halves() -> None:
    assert [div_round_half_away(n, 2) for n in (-3, -1, 1, 3)] == [-2, -1, 1, 2]
    assert bps(1, 20_000) == 1 and bps(-1, 20_000) == -1  # 0.5 bps either way


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**15))
def test_bps_is_unchanged(part: int, whole: int) -> None:
    num = part * 10_000
    q, r = divmod(abs(num), whole)
    if 2 * r >= whole:
        q += 1
    assert bps(part, whole) == (q if num >= 0 else -q)


def test_parse_rate() -> None:
    assert parse_rate("17.0512") == Fraction(170512, 10000)
    assert parse_rate("1") == 1
    for bad in ("0", "-1", "NaN", "Infinity", "abc", "", 17.05, 17, Decimal("17"), None):
        with pytest.raises(MalformedInput):
            parse_rate(bad)
