"""Money as integer minor units of an ISO 4217 currency.

Amounts on the wire and in memory are always integers counted in the minor
unit of their currency (cents for USD, centavos for MXN, whole units for
JPY or CLP).  Floats never carry money: a binary float cannot hold 0.10
exactly, and two parties rounding differently would sign different numbers.

``ISO_4217_MINOR_UNITS`` is the one table of currencies the platform knows,
read from the maintained ``iso4217`` package (ISO 4217 with its minor units),
not written by hand.  The ``currency`` enum in ``schemas/events/common.v1.json``
is written from it by ``python -m schemas.codegen`` (``--check`` and
``tests/unit/test_schemas_roundtrip.py`` assert that they agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Final, NamedTuple

import iso4217

from schemas.errors import MalformedInput

__all__ = [
    "ISO_4217_MINOR_UNITS",
    "MAX_AMOUNT",
    "Money",
    "bps",
    "display_exponent",
    "div_round_half_away",
    "from_major",
    "major_fraction",
    "minor_units",
    "parse_rate",
    "round_half_away",
    "to_major",
    "to_major_float",
]

#: Largest amount of minor units one event may carry (10^15, below 2^53 so it
#: survives any JSON reader that uses IEEE 754 doubles; RFC 8785 section 3.2.2.3).
MAX_AMOUNT = 10**15

def _iso_4217_minor_units() -> dict[str, int]:
    """Current ISO 4217 currencies with a defined minor unit, from the maintained
    ``iso4217`` package (the SIX/ISO list it ships, ``iso4217.__published__``).

    Left out on purpose, by the list's own data rather than by a hand-written table:
    codes whose minor unit is "N.A." (precious metals XAU/XAG/XPD/XPT, bond-market
    units XBA-XBD, XDR, XSU, XUA, the test and "no currency" codes XTS/XXX) and the
    fund codes the list marks ``IsFund`` (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI),
    which no remittance or matching fund settles in.  Withdrawn codes (ANG, HRK,
    SLL, ZWL, CUC...) are not on the current list, so they are refused for new events.
    """
    funds = {
        code.text
        for entry in iso4217.raw_xml.iter("CcyNtry")
        if (name := entry.find("CcyNm")) is not None
        and name.attrib.get("IsFund")
        and (code := entry.find("Ccy")) is not None
    }
    return {
        c.code: int(c.exponent)
        for c in sorted(iso4217.Currency, key=lambda c: c.code)
        if c.exponent is not None and c.code not in funds
    }


#: ISO 4217 alphabetic code -> minor-unit exponent (2 for USD, 0 for JPY, 3 for KWD).
ISO_4217_MINOR_UNITS: Final[Mapping[str, int]] = MappingProxyType(_iso_4217_minor_units())


def minor_units(currency: str) -> int:
    """The ISO 4217 minor-unit exponent of ``currency`` (2 for USD, 0 for JPY)."""
    try:
        return ISO_4217_MINOR_UNITS[currency]
    except KeyError:
        raise MalformedInput(
            f"{currency!r} is not an active ISO 4217 currency code",
            reason="currency",
            field="currency",
        ) from None


class Money(NamedTuple):
    """An amount of minor units of one ISO 4217 currency."""

    amount: int
    currency: str

    @classmethod
    def from_payload(cls, obj: Mapping[str, object]) -> Money:
        """Build from a payload's ``{"amount": int, "currency": str}`` (already schema-valid)."""
        amount, currency = obj["amount"], obj["currency"]
        if type(amount) is not int or not isinstance(currency, str):
            raise MalformedInput(
                "money must be {amount: integer, currency: code}", reason="schema", field="amount"
            )
        return cls(amount, currency)

    def to_payload(self) -> dict[str, object]:
        return {"amount": self.amount, "currency": self.currency}


def to_major(money: Money) -> Decimal:
    """The amount in major units, exactly (``Money(12345, "USD")`` -> ``Decimal("123.45")``)."""
    return Decimal(money.amount).scaleb(-minor_units(money.currency))


def major_fraction(amount: int, currency: str) -> Fraction:
    """Minor units -> exact major units as a ``Fraction`` (the rules' and cost formulas' form).

    ``major_fraction(12345, "USD") == Fraction(12345, 100)``; an unknown currency is
    ``MalformedInput(reason="currency")``, a ``ValueError``.
    """
    return Fraction(amount, 10 ** minor_units(currency))


def display_exponent(currency: str) -> int:
    """Decimals to show for ``currency``: its ISO 4217 exponent, 2 for a code not in the table.

    Display only (a row written before a currency left the table still shows);
    arithmetic uses ``minor_units``, which refuses unknown codes.
    """
    return ISO_4217_MINOR_UNITS.get(currency, 2)


def to_major_float(amount: int, currency: str) -> float:
    """Minor units -> major units as a float, for chart geometry only (bar lengths, axes).

    Every amount shown as text is formatted exactly from the integer instead.
    """
    scale: int = 10 ** display_exponent(currency)
    return int(amount) / scale


def parse_rate(value: object) -> Fraction:
    """A decimal-string exchange rate (``"17.0512"``) -> exact positive ``Fraction``; never a float.

    Raises ``MalformedInput(reason="currency")`` (a ``ValueError``) for anything else.
    """
    if not isinstance(value, str):
        raise MalformedInput(
            f"exchange rate must be a decimal string: {value!r}", reason="currency"
        )
    try:
        dec = Decimal(value)
    except InvalidOperation as e:
        raise MalformedInput(f"bad exchange rate {value!r}", reason="currency") from e
    if not dec.is_finite() or dec <= 0:
        raise MalformedInput(f"exchange rate must be positive: {value!r}", reason="currency")
    return Fraction(dec)


def div_round_half_away(num: int, den: int) -> int:
    """``num / den`` rounded to the nearest integer, halves away from zero (``den > 0``).

    Integer arithmetic only, symmetric for negatives, so every party computing a
    ratio from the same amounts gets the same number.
    """
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def round_half_away(x: Fraction) -> int:
    """``x`` rounded to the nearest integer, halves away from zero (as ``bps``)."""
    return div_round_half_away(x.numerator, x.denominator)


def from_major(value: Decimal | str | int, currency: str) -> Money:
    """Exact conversion from major units; more decimals than the currency has is an error.

    Floats are refused on purpose: ``from_major(0.1, ...)`` would hide a
    binary rounding error.  Pass a ``Decimal`` or a decimal string.
    """
    if isinstance(value, float):
        raise MalformedInput("money must not be given as a float", reason="currency")
    try:
        dec = Decimal(value)
    except InvalidOperation as e:
        raise MalformedInput(f"{value!r} is not a decimal amount", reason="currency") from e
    exp = minor_units(currency)
    scaled = dec.scaleb(exp)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise MalformedInput(
            f"{value} has more decimals than {currency} allows ({exp})", reason="currency"
        )
    return Money(int(scaled), currency)


def bps(part: Money | int, whole: Money | int) -> int:
    """``part / whole`` in basis points (1/100 of a percent), rounded half up.

    Integer arithmetic only, so every party computing a cost ratio from the
    same amounts gets the same number.  Both must be in the same currency
    when given as ``Money``; ``whole`` must be positive.
    """
    if isinstance(part, Money) and isinstance(whole, Money) and part.currency != whole.currency:
        raise MalformedInput(
            f"cannot compare {part.currency} with {whole.currency}", reason="currency"
        )
    p = part.amount if isinstance(part, Money) else part
    w = whole.amount if isinstance(whole, Money) else whole
    if w <= 0:
        raise MalformedInput(
            "basis points of a non-positive whole are undefined", reason="currency"
        )
    return div_round_half_away(p * 10_000, w)
