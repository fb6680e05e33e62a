"""schemas.l10n: numbers, money, percentages, dates, zones and plurals by locale (Babel, CLDR)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import l10n
from schemas.money import ISO_4217_MINOR_UNITS

LOCALES = ["es_MX", "es_US", "en_US", "fr_FR", "pt_BR"]
MAY_1_2025_20H05 = datetime(2025, 5, 1, 20, 5, tzinfo=UTC)
MEXICO = l10n.viewer_zone("America/Mexico_City")


@pytest.mark.parametrize(("locale", "usd", "mxn_negative", "jpy"), [
    ("es_MX", "USD\u00a01,234,567.89", "-MXN\u00a00.05", "JPY\u00a01,500"),
    ("es_US", "USD\u00a01,234,567.89", "-MXN\u00a00.05", "JPY\u00a01,500"),
    ("en_US", "USD\u00a01,234,567.89", "-MXN\u00a00.05", "JPY\u00a01,500"),
    ("fr_FR", "1\u202f234\u202f567,89\u00a0USD", "-0,05\u00a0MXN", "1\u202f500\u00a0JPY"),
    ("pt_BR", "USD\u00a01.234.567,89", "-MXN\u00a00,05", "JPY\u00a01.500"),
])
def test_money_by_locale_with_the_iso_code(locale: str, usd: str, mxn_negative: str, jpy: str) -> None:
    assert l10n.format_money(123456789, "USD", locale) == usd
    assert l10n.format_money(-5, "MXN", locale) == mxn_negative
    assert l10n.format_money(1500, "JPY", locale) == jpy


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        l10n.format_money(12.5, "USD", "en_US")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        l10n.format_money(True, "USD", "en_US")


@given(amount=st.integers(min_value=-(10**15), max_value=10**15),
       currency=st.sampled_from(sorted(ISO_4217_MINOR_UNITS)), locale=st.sampled_from(LOCALES))
def test_money_shows_every_minor_unit_exactly(amount: int, currency: str, locale: str) -> None:
    """No float, no rounding: the digits shown are the integer's, with the currency's exponent."""
    text = l10n.format_money(amount, currency, locale)
    assert currency in text
    digits = re.sub(r"\D", "", text)
    assert int(digits) == abs(amount)
    decimals = ISO_4217_MINOR_UNITS[currency]
    if decimals:
        point = "." if locale in ("es_MX", "es_US", "en_US") else ","
        assert re.search(re.escape(point) + r"\d{" + str(decimals) + r"}(\D|$)", text), text
    assert text.startswith("-") == (amount < 0)


def test_numbers_and_percentages() -> None:
    assert l10n.format_integer(1234567, "fr_FR") == "1\u202f234\u202f567"
    assert l10n.format_integer(1234567, "pt_BR") == "1.234.567"
    assert l10n.format_number(Decimal("2.345"), 2, "en_US") == "2.35"  # half up, not half even
    assert l10n.format_number(Fraction(1, 3), 3, "pt_BR") == "0,333"
    assert l10n.format_percent(Fraction(3, 4), 1, "es_MX") == "75.0%"
    assert l10n.format_percent(Decimal("0.0125"), 1, "fr_FR") == "1,3\u00a0%"
    assert l10n.format_bps(470, 2, "pt_BR") == "4,70%"
    assert l10n.format_bps(5, 0, "en_US") == "0%"


def test_dates_and_times_in_a_named_zone() -> None:
    assert l10n.format_datetime(MAY_1_2025_20H05, "es_MX", MEXICO) == "1 may 2025, 2:05\u202fp.m. hora estándar central"
    assert l10n.format_datetime(MAY_1_2025_20H05, "en_US", MEXICO) == "May 1, 2025, 2:05\u202fPM Central Standard Time"
    assert l10n.format_datetime(MAY_1_2025_20H05, "pt_BR", MEXICO) == "1 de mai. de 2025 14:05 Horário Padrão Central"
    assert l10n.format_datetime(MAY_1_2025_20H05, "fr_FR") == "1 mai 2025, 20:05 UTC"
    # Los Angeles keeps summer time, Mexico City no longer does (since 2022): the name says which
    la = l10n.viewer_zone("America/Los_Angeles")
    assert l10n.zone_name(MAY_1_2025_20H05, la, "es_US") == "hora de verano del Pacífico"
    # a date near midnight UTC is the previous day in Mexico
    late = datetime(2025, 5, 2, 3, 0, tzinfo=UTC)
    assert l10n.format_date(late, "es_MX", MEXICO) == "1 may 2025"
    assert l10n.format_date(date(2025, 5, 2), "es_MX", MEXICO) == "2 may 2025"  # a date alone is not moved
    # a naive datetime is read as UTC
    assert l10n.format_time_of_day(datetime(2025, 5, 1, 20, 5), "fr_FR", MEXICO) == "14:05"


@pytest.mark.parametrize(("name", "offset", "expected_offset"), [
    ("America/Mexico_City", None, timedelta(hours=-6)), ("Nowhere/Atlantis", 360, timedelta(hours=-6)),
    ("../../etc/passwd", None, timedelta(0)), (None, -120, timedelta(hours=2)), (None, None, timedelta(0)),
    ("", 99999, timedelta(0)),
])
def test_viewer_zone_from_what_the_browser_says(name: str | None, offset: int | None,
                                                expected_offset: timedelta) -> None:
    assert l10n.viewer_zone(name, offset).utcoffset(datetime(2025, 1, 15)) == expected_offset


def test_a_bare_offset_is_named_by_its_offset() -> None:
    tz = timezone(timedelta(hours=-6))
    assert l10n.zone_name(MAY_1_2025_20H05, tz, "en_US") == "GMT-06:00"
    assert l10n.zone_name(MAY_1_2025_20H05, UTC, "es_MX") == "UTC"


def test_durations_in_their_two_largest_units() -> None:
    assert l10n.format_duration(0, "es_MX") == "0 min"
    assert l10n.format_duration(20, "es_MX") == "1 min"
    assert l10n.format_duration(55 * 60, "en_US") == "55 min"  # never rounded up to "1 hr"
    assert l10n.format_duration(3600, "en_US") == "1 hr"
    assert l10n.format_duration(7 * 86400, "es_MX") == "7 días"  # never "1 semana"
    assert l10n.format_duration(86400 + 3 * 3600, "pt_BR") == "1 dia 3 h"


@pytest.mark.parametrize(("tag", "lang", "expected"), [
    ("es-US", None, "es_US"), ("es_MX.UTF-8", None, "es_MX"), ("C", None, "en_US"), ("POSIX", None, "en_US"),
    ("fr", None, "fr_FR"), ("pt", None, "pt_BR"), ("de-DE", None, "de_DE"), ("xx-YY", None, "en_US"),
    (None, "es", "es_MX"), ("en-GB", "es", "es_MX"), ("es-US", "es", "es_US"), ("'; DROP", None, "en_US"),
])
def test_resolve_locale(tag: str | None, lang: str | None, expected: str) -> None:
    assert l10n.resolve_locale(tag, lang) == expected


@pytest.mark.parametrize(("option", "env", "expected"), [
    (None, {}, "en_US"), (None, {"LANG": "es_MX.UTF-8"}, "es_MX"), (None, {"LANG": "C.UTF-8"}, "en_US"),
    (None, {"LC_ALL": "pt_BR.UTF-8", "LANG": "fr_FR.UTF-8"}, "pt_BR"),
    (None, {"LC_NUMERIC": "fr_FR.UTF-8", "LANG": "en_US.UTF-8"}, "fr_FR"),
    (None, {"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}, "en_US"),  # POSIX: LC_ALL wins, C names no locale
    ("es-US", {"LANG": "fr_FR.UTF-8"}, "es_US"),
])
def test_command_line_locale(option: str | None, env: dict[str, str], expected: str) -> None:
    assert l10n.cli_locale(option, env) == expected


def test_plural_categories_follow_cldr() -> None:
    assert l10n.plural_categories("en") == {"one", "other"}
    assert l10n.plural_categories("es") == {"one", "many", "other"}
    assert [l10n.plural_category(n, "es_MX") for n in (0, 1, 2, 1_000_000)] == ["other", "one", "other", "many"]
    assert [l10n.plural_category(n, "fr_FR") for n in (0, 1, 2)] == ["one", "one", "other"]


def test_d3_number_locale_for_charts() -> None:
    assert l10n.d3_number_locale("pt_BR")["decimal"] == ","
    assert l10n.d3_number_locale("pt_BR")["thousands"] == "."
    assert l10n.d3_number_locale("en_US")["decimal"] == "."
