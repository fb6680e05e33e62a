"""Locale formatting of numbers, money, percentages, dates, times and counts (CLDR, through Babel).

One module for everything a person reads, shared by the dashboard (which
keeps its string catalogues in ``dashboard/i18n.py``) and the command line:

* a **locale** is a Babel identifier (``es_MX``, ``es_US``, ``en_US``,
  ``fr_FR``, ``pt_BR``...), chosen by :func:`resolve_locale` from a browser's
  BCP 47 tag (``es-US``), a POSIX locale (``es_MX.UTF-8``) or a language alone
  (its default region, :data:`LANG_DEFAULT_LOCALES`);
* **money** is formatted from integer minor units (:mod:`schemas.money`): the
  amount becomes an exact ``Decimal`` with the currency's ISO 4217 exponent and
  is printed with exactly that many decimals, never through a float.  The
  currency is always shown by its ISO 4217 code, in the locale's currency
  pattern with CLDR's currency spacing (``USD 1,234.56`` in es-MX,
  ``1 234,56 USD`` in fr): "$" means dollars in Los Angeles and pesos in
  Zacatecas, and a screenshot travels between the two;
* **percentages and numbers** are rounded half up to the decimals asked for,
  then printed with the locale's separators and percent pattern;
* **dates and times** are shown in a viewer's zone and the zone is always
  named (``1 may 2025, 2:05 p.m. hora estándar central``), UTC named "UTC";
* **plural categories** (``one``, ``many``, ``other``...) follow CLDR's rules
  for the language (:func:`plural_category`), for catalogues that hold ICU-like
  plural variants.

Pure: values in, text out.  Like the schema files, the only data read is
Babel's CLDR tables and the IANA time-zone database (``zoneinfo``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel import units as babel_units

from schemas.money import display_exponent

__all__ = [
    "LANG_DEFAULT_LOCALES",
    "DEFAULT_LOCALE",
    "Number",
    "resolve_locale",
    "locale_from_env",
    "cli_locale",
    "language_of",
    "plural_category",
    "plural_categories",
    "format_integer",
    "format_number",
    "format_money",
    "format_percent",
    "format_bps",
    "d3_number_locale",
    "viewer_zone",
    "zone_name",
    "format_date",
    "format_time_of_day",
    "format_datetime",
    "format_duration",
]

#: The locale a language falls back to when nothing names a region: most
#: Spanish-speaking senders are Mexican, most Portuguese-speaking ones Brazilian.
LANG_DEFAULT_LOCALES: Final[Mapping[str, str]] = {
    "es": "es_MX",
    "en": "en_US",
    "fr": "fr_FR",
    "pt": "pt_BR",
}
#: The command line's locale when neither ``--locale`` nor the environment names one.
DEFAULT_LOCALE: Final = "en_US"

#: What may be formatted as a number: never a float where exactness matters.
Number = int | Decimal | Fraction

_TAG: Final = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_POSIX_NEUTRAL: Final = frozenset({"", "C", "POSIX"})
#: CLDR's currencySpacing (root): a no-break space between an ISO code and the digits.
_CURRENCY_SPACE: Final = "\u00a0"


# --- choosing a locale ---------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def _parse(tag: str) -> Locale | None:
    """A Babel locale from a BCP 47 tag or a POSIX name, or None if it names nothing Babel knows."""
    text = tag.strip().split(".")[0].split("@")[0]  # es_MX.UTF-8@euro -> es_MX
    if text in _POSIX_NEUTRAL or not _TAG.match(text):
        return None
    try:
        return _locale(text.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return None


def resolve_locale(tag: str | None, lang: str | None = None) -> str:
    """The Babel locale identifier for ``tag`` (``"es-US"`` -> ``"es_US"``).

    With ``lang``, the result is in that language: ``tag`` is used only when it
    is the same language (a visitor reading Spanish with a browser set to
    ``es-US`` gets es-US conventions; with ``en-GB`` gets Spanish's default,
    es-MX).  Unknown or neutral tags (``C``, ``POSIX``) give ``lang``'s default
    locale, else :data:`DEFAULT_LOCALE`.
    """
    parsed = _parse(tag) if tag else None
    if lang is not None:
        if parsed is not None and parsed.language == lang:
            return str(parsed)
        return LANG_DEFAULT_LOCALES.get(lang, DEFAULT_LOCALE)
    if parsed is None:
        return DEFAULT_LOCALE
    if parsed.territory is None and parsed.language in LANG_DEFAULT_LOCALES:
        return LANG_DEFAULT_LOCALES[parsed.language]
    return str(parsed)


def locale_from_env(environ: Mapping[str, str]) -> str | None:
    """The POSIX locale a shell asks for (``LC_ALL``, then ``LC_NUMERIC``, then ``LANG``), if any.

    POSIX order: ``LC_ALL`` overrides every category; numbers and dates are
    ``LC_NUMERIC``/``LC_TIME``; ``LANG`` is the default.  ``C`` and ``POSIX``
    name no locale.
    """
    for var in ("LC_ALL", "LC_NUMERIC", "LC_TIME", "LANG"):
        value = environ.get(var, "").strip()
        if value:
            return None if value.split(".")[0] in _POSIX_NEUTRAL else value
    return None


def cli_locale(option: str | None, environ: Mapping[str, str]) -> str:
    """A command's locale: ``--locale``, else the environment's, else en-US."""
    return resolve_locale(option or locale_from_env(environ))


def language_of(locale: str) -> str:
    """``"es_MX"`` -> ``"es"``."""
    return _locale(locale).language


# --- plurals ---------------------------------------------------------------------------------------


def plural_category(n: Number, locale: str) -> str:
    """CLDR plural category of ``n`` in ``locale``'s language: ``one``, ``many``, ``other``..."""
    value: int | Decimal = Decimal(n.numerator) / Decimal(n.denominator) if isinstance(n, Fraction) else n
    return str(_locale(locale).plural_form(value))


def plural_categories(language: str) -> frozenset[str]:
    """Every category a catalogue must give for ``language`` (``other`` always among them)."""
    return frozenset(_locale(language).plural_form.tags) | {"other"}


# --- numbers, money, percentages -------------------------------------------------------------------


def _decimal(x: Number) -> Decimal:
    if isinstance(x, Fraction):
        return Decimal(x.numerator) / Decimal(x.denominator)
    return Decimal(x)


def _round(x: Decimal, decimals: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


@lru_cache(maxsize=256)
def _pattern(locale: str, kind: str, decimals: int) -> babel_numbers.NumberPattern:
    """The locale's number/percent/currency pattern with exactly ``decimals`` fraction digits."""
    loc = _locale(locale)
    if kind == "currency":
        text = loc.currency_formats["standard"].pattern
        # The ISO code (¤¤) in place of the symbol, spaced from the digits as CLDR's
        # currencySpacing asks when a letter would touch a digit.
        text = text.replace("¤", "¤¤")
        text = re.sub(r"¤¤(?=[#0-9])", "¤¤" + _CURRENCY_SPACE, text)
        text = re.sub(r"(?<=[#0-9])¤¤", _CURRENCY_SPACE + "¤¤", text)
        base = babel_numbers.parse_pattern(text)
    elif kind == "percent":
        base = babel_numbers.parse_pattern(loc.percent_formats[None].pattern)
    else:
        base = babel_numbers.parse_pattern(loc.decimal_formats[None].pattern)
    return babel_numbers.NumberPattern(
        base.pattern, base.prefix, base.suffix, base.grouping, base.int_prec,
        (decimals, decimals), base.exp_prec, base.exp_plus, base.number_pattern,
    )


def format_integer(n: int, locale: str) -> str:
    """``1234567`` -> ``1,234,567`` (en-US), ``1 234 567`` (fr), ``1.234.567`` (pt-BR)."""
    return str(_pattern(locale, "decimal", 0).apply(Decimal(int(n)), locale))


def format_number(x: Number, decimals: int, locale: str) -> str:
    """``x`` rounded half up to ``decimals`` places, with the locale's separators."""
    return str(_pattern(locale, "decimal", decimals).apply(_round(_decimal(x), decimals), locale))


def format_money(amount: int, currency: str, locale: str) -> str:
    """``amount`` minor units of ``currency``, exactly: ``format_money(123456, "USD", "es_MX")``
    is ``"USD 1,234.56"`` (a no-break space after the code).

    Decimals are the ISO 4217 exponent (``schemas.money.display_exponent``: 0 for
    JPY, 3 for KWD), so nothing is ever rounded away.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"money is formatted from integer minor units, not {type(amount).__name__}")
    exp = display_exponent(currency)
    value = Decimal(amount).scaleb(-exp)
    return str(_pattern(locale, "currency", exp).apply(value, locale, currency=currency, currency_digits=False))


def format_percent(ratio: Number, decimals: int, locale: str) -> str:
    """A ratio (``Decimal("0.755")``) as a percentage: ``75.5%`` (en-US), ``75,5 %`` (fr)."""
    percent = _round(_decimal(ratio) * 100, decimals)
    return str(_pattern(locale, "percent", decimals).apply(percent / 100, locale))


def format_bps(bps: Number, decimals: int, locale: str) -> str:
    """Basis points (``470``) as a percentage (``4.70%``)."""
    return format_percent(_decimal(bps) / 10_000, decimals, locale)


def d3_number_locale(locale: str) -> dict[str, object]:
    """The locale's separators as a d3-format locale (what Vega-Lite's ``config.locale.number`` takes),
    so that a chart's axes and tooltips write numbers like the text around them."""
    return {
        "decimal": str(babel_numbers.get_decimal_symbol(locale)),
        "thousands": str(babel_numbers.get_group_symbol(locale)),
        "grouping": [3],
        "currency": ["", ""],
    }


# --- time zones, dates and times -------------------------------------------------------------------


def viewer_zone(name: str | None, offset_minutes: int | None = None) -> tzinfo:
    """The zone a viewer's browser reports: an IANA name, else a fixed offset, else UTC.

    ``offset_minutes`` is JavaScript's ``getTimezoneOffset()`` (minutes BEHIND
    UTC: 360 in Mexico City), what ``st.context.timezone_offset`` gives.
    """
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):  # unknown, or not a zone name at all
            pass
    if offset_minutes is not None and -24 * 60 < offset_minutes < 24 * 60:
        return UTC if offset_minutes == 0 else timezone(-timedelta(minutes=offset_minutes))
    return UTC


def _is_utc(tz: tzinfo) -> bool:
    return tz is UTC or str(tz) in ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu")


def _aware(dt: datetime) -> datetime:
    """A datetime without a zone is read as UTC (what PostgreSQL's timestamptz gives in UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None or dt.utcoffset() is None else dt


def zone_name(dt: datetime, tz: tzinfo, locale: str) -> str:
    """The name of ``tz`` at ``dt`` in ``locale``: ``hora estándar central``, ``Central Standard Time``;
    UTC is ``UTC``; a bare offset is ``GMT-06:00``."""
    if _is_utc(tz):
        return "UTC"
    local = _aware(dt).astimezone(tz)
    return str(babel_dates.get_timezone_name(local, "long", locale=locale))


def format_date(d: date, locale: str, tz: tzinfo = UTC) -> str:
    """A date (``1 may 2025``, ``May 1, 2025``, ``1 de mai. de 2025``); a datetime is first moved to ``tz``."""
    if isinstance(d, datetime):
        d = _aware(d).astimezone(tz).date()
    return str(babel_dates.format_date(d, "medium", locale=locale))


def format_time_of_day(dt: datetime, locale: str, tz: tzinfo = UTC) -> str:
    """The clock time in ``tz`` without the date: ``2:05 p.m.`` (es-MX), ``14:05`` (fr)."""
    local = _aware(dt).astimezone(tz)
    return str(babel_dates.format_time(local, "short", tzinfo=tz, locale=locale))


def format_datetime(dt: datetime, locale: str, tz: tzinfo = UTC) -> str:
    """Date, time and the zone's name: ``1 may 2025, 2:05 p.m. hora estándar central``.

    CLDR's medium date and short time, joined by the locale's date-time
    pattern; the zone always follows, so no one reads UTC as local time.
    """
    local = _aware(dt).astimezone(tz)
    joined = str(babel_dates.get_datetime_format("medium", locale=locale)).replace(
        "{1}", format_date(local, locale, tz)).replace("{0}", format_time_of_day(local, locale, tz))
    return f"{joined} {zone_name(local, tz, locale)}"


def format_duration(seconds: int, locale: str) -> str:
    """A delay in its two largest units (``3 h 5 min``, ``2 días 2 h``, ``40 min``); never rounds up
    to a larger unit (CLDR unit patterns, short width)."""
    s = max(0, int(seconds))
    if s < 3600:
        parts = [("duration-minute", (s + 30) // 60 if s >= 60 else (1 if s else 0))]
    elif s < 86400:
        parts = [("duration-hour", s // 3600), ("duration-minute", (s % 3600) // 60)]
    else:
        parts = [("duration-day", s // 86400), ("duration-hour", (s % 86400) // 3600)]
    if len(parts) == 2 and parts[1][1] == 0:
        parts = parts[:1]
    return " ".join(str(babel_units.format_unit(v, unit, "short", locale=locale)) for unit, v in parts)

