"""Languages of the dashboard: its string catalogues, the visitor's locale and time zone.

Every visible string goes through :func:`t` (keys in ``dashboard/locales/*.json``;
the four files have exactly the same keys, a unit test checks it).  A value is
a string, or ICU-like plural variants (``{"one": "{n} discrepancia abierta",
"many": ..., "other": "{n} discrepancias abiertas"}``) chosen by the count
``n`` with CLDR's plural rules for the language.  Integer placeholders are
printed with the locale's digits (``1,234`` / ``1 234`` / ``1.234``).

The language comes from, in order: the ``lang`` URL query parameter, the
session, the browser (``st.context.locale``, then the ``Accept-Language``
header), else Spanish, the language of most senders.  The locale (the
region's conventions for numbers and dates) is the browser's when it is in
that language (``es-US``), else the language's default (es-MX, en-US, fr-FR,
pt-BR).  Times are shown in the browser's time zone (``st.context.timezone``,
else its offset), always with the zone's name; UTC stays in hover texts and
in downloads.

The formatting itself is :mod:`schemas.l10n` (Babel, CLDR), shared with the
command line; the ``fmt_*`` functions here only add the visitor's locale and
zone and show "—" for missing values.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from schemas import l10n
from schemas.thresholds import DEFAULT_THRESHOLDS
from schemas.times import format_time

if TYPE_CHECKING:
    from infra.settings import Settings

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "NATIVE_NAMES",
    "Entry",
    "current",
    "current_locale",
    "viewer_tz",
    "fmt_bps",
    "fmt_date",
    "fmt_datetime",
    "fmt_duration",
    "fmt_int",
    "fmt_money",
    "fmt_number",
    "fmt_pct",
    "fmt_time",
    "flag_help",
    "flag_help_values",
    "time_html",
    "utc_text",
    "zone_label",
    "load",
    "pick_language",
    "pick_locale",
    "set_current",
    "setup",
    "t",
    "t_code",
]

LANGS: Final[tuple[str, ...]] = ("es", "en", "fr", "pt")
DEFAULT_LANG: Final = "es"
NATIVE_NAMES: Final[dict[str, str]] = {"es": "Español", "en": "English", "fr": "Français", "pt": "Português"}
#: A catalogue value: a string, or plural variants by CLDR category.
Entry = str | dict[str, str]
_LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
_STATE_KEY: Final = "_cc_lang"
_PICKER_KEY: Final = "_cc_lang_picker"
_LOCALE_KEY: Final = "_cc_locale"

# Used when no Streamlit session exists (plain Python, unit tests).
_fallback_lang = DEFAULT_LANG


@cache
def load(lang: str) -> dict[str, Entry]:
    """The strings of one language (read once per process)."""
    with open(_LOCALES_DIR / f"{lang}.json", encoding="utf-8") as f:
        data = json.load(f)
    return {str(k): ({str(c): str(x) for c, x in v.items()} if isinstance(v, dict) else str(v))
            for k, v in data.items()}


def _in_session() -> bool:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        return get_script_run_ctx(suppress_warning=True) is not None
    except Exception:
        return False


def _session_value(key: str) -> Any:
    if not _in_session():
        return None
    try:
        import streamlit as st

        return st.session_state.get(key)
    except Exception:
        return None


def current() -> str:
    """The language of this session (or of plain-Python callers)."""
    v = _session_value(_STATE_KEY)
    return v if v in LANGS else _fallback_lang


def current_locale() -> str:
    """The locale of this session (``es_US``...), else the current language's default."""
    lang = current()
    v = _session_value(_LOCALE_KEY)
    if isinstance(v, str) and l10n.language_of(v) == lang:
        return v
    return l10n.LANG_DEFAULT_LOCALES[lang]


def _locale(lang: str | None) -> str:
    """The locale to format with: the session's for its own language, else ``lang``'s default."""
    if lang is None or lang == current():
        return current_locale()
    if lang in LANGS:
        return l10n.LANG_DEFAULT_LOCALES[lang]
    return l10n.resolve_locale(lang)


def set_current(lang: str) -> None:
    """Set the language outside Streamlit (tests, CLI)."""
    global _fallback_lang
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    _fallback_lang = lang


def _integer(x: Any) -> int | None:
    """A placeholder's value as an integer (Python's or numpy's), else None (bools are not counts)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    import numbers

    return int(x) if isinstance(x, numbers.Integral) else None


def t(key: str, lang: str | None = None, **kw: Any) -> str:
    """The text of ``key`` in the current language, with ``{name}`` placeholders filled.

    Plural variants are chosen by ``n`` (the count); integer values are
    printed with the locale's digits.
    """
    lg = lang if lang in LANGS else current()
    entry = load(lg).get(key)
    if entry is None:
        lg = "en"
        entry = load("en").get(key, key)
    loc = _locale(lg)
    if isinstance(entry, dict):
        n = _integer(kw.get("n"))
        category = l10n.plural_category(n, loc) if n is not None else "other"
        text = entry.get(category) or entry["other"]
    else:
        text = entry
    if kw:
        values = {k: (v if (i := _integer(v)) is None else l10n.format_integer(i, loc)) for k, v in kw.items()}
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def t_code(prefix: str, code: str | None, lang: str | None = None) -> str:
    """Translate a machine code (a status, a flag type...) or show it as it is."""
    if code is None or code == "":
        return "—"
    key = f"{prefix}.{code}"
    text = load(lang or current()).get(key)
    return text if isinstance(text, str) else str(code)


def _whole(x: float | int) -> int | Decimal:
    """A setting's number as an integer when it is whole (72.0 hours -> 72), else exactly as written."""
    return int(x) if float(x).is_integer() else Decimal(repr(float(x)))


def flag_help_values(settings: Settings, lang: str | None = None) -> dict[str, Any]:
    """The numbers the flag explanations (``flag_help.<type>``) name, from the platform's settings.

    The explanations state each rule's boundary (``stream_processors/rules/README.md``)
    with the configured value, never a number written into the text: tolerances as
    percentages, periods as whole hours, days or minutes (printed the locale's way).
    The cost disclosure slack is no setting: the rules' default (``schemas.thresholds``).
    """
    def number(x: float | int) -> Any:
        v = _whole(x)
        return v if isinstance(v, int) else l10n.format_number(v, 1, _locale(lang))

    return {
        "tolerance": fmt_bps(settings.payout_tolerance_bps, 1, lang),
        "ceiling": fmt_bps(settings.corridor_cost_ceiling_bps, 0, lang),
        "cost_slack": fmt_number(Decimal(DEFAULT_THRESHOLDS.cost_disclosure_tolerance_bps) / 100, 1, lang),
        "grace_hours": number(settings.payout_grace_hours),
        "window_minutes": number(settings.cancellation_window_minutes),
        "refund_days": number(settings.refund_period_business_days),
        "milestone_days": number(settings.no_milestone_days),
        "verify_days": number(settings.unverified_days),
        "late_days": number(settings.late_publication_days),
        "return_days": number(settings.funds_return_days),
    }


def flag_help(code: str | None, values: dict[str, Any], lang: str | None = None) -> str:
    """The plain-words explanation of a flag type (what happened, when it is raised, who is
    accountable, what closes it), or "" for a type the catalogues do not explain."""
    if not code:
        return ""
    key = f"flag_help.{code}"
    if key not in load(lang if lang in LANGS else current()) and key not in load("en"):
        return ""
    return t(key, lang, **values)


# --- choosing the language ----------------------------------------------------------------


def pick_language(locale: str | None, accept_language: str | None) -> str:
    """The first supported language the browser asks for, else Spanish."""
    if locale:
        primary = locale.replace("_", "-").split("-")[0].strip().lower()
        if primary in LANGS:
            return primary
    for tag in _accepted_tags(accept_language):
        primary = tag.split("-")[0].lower()
        if primary in LANGS:
            return primary
    return DEFAULT_LANG


def _accepted_tags(accept_language: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header (RFC 9110 12.5.4), most preferred
    first (by ``q``, then order), without those refused (``q=0``); at most 20 read."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0 and tag.strip():
            ranked.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def pick_locale(lang: str, locale: str | None, accept_language: str | None) -> str:
    """The browser's locale when it is in ``lang`` (``es-US`` for Spanish), else ``lang``'s default.

    ``locale`` is ``navigator.language``; then the ``Accept-Language`` tags in
    order of preference, the first one in ``lang`` that names a region.
    """
    tags: list[str] = [locale] if locale else []
    tags += _accepted_tags(accept_language)
    for tag in tags:
        parts = tag.replace("_", "-").split("-")
        if parts[0].lower() == lang and len(parts) > 1:  # in this language, with a region
            return l10n.resolve_locale(tag, lang)
    return l10n.LANG_DEFAULT_LOCALES[lang]


def _browser() -> tuple[str | None, str | None]:
    """``navigator.language`` and the ``Accept-Language`` header, when Streamlit has them."""
    import streamlit as st

    locale = None
    accept = None
    try:
        locale = st.context.locale
    except Exception:
        locale = None
    try:
        accept = st.context.headers.get("Accept-Language")
    except Exception:
        accept = None
    return locale, accept


def _browser_language() -> str:
    return pick_language(*_browser())


def _picked() -> None:
    import streamlit as st

    lang = st.session_state.get(_PICKER_KEY)
    if lang in LANGS:
        st.session_state[_STATE_KEY] = lang
        st.query_params["lang"] = lang


def setup() -> str:
    """Decide this run's language, keep it in the URL, and draw the language switcher."""
    import streamlit as st

    qp = st.query_params.get("lang")
    lang = str(qp) if qp in LANGS else (st.session_state.get(_STATE_KEY) or _browser_language())
    if lang not in LANGS:
        lang = DEFAULT_LANG
    st.session_state[_STATE_KEY] = lang
    if st.query_params.get("lang") != lang:
        st.query_params["lang"] = lang
    if st.session_state.get(_PICKER_KEY) != lang:
        st.session_state[_PICKER_KEY] = lang
    st.session_state[_LOCALE_KEY] = pick_locale(lang, *_browser())
    st.sidebar.selectbox(
        t("lang.label", lang),
        LANGS,
        format_func=lambda c: NATIVE_NAMES[c],
        key=_PICKER_KEY,
        on_change=_picked,
    )
    return lang


# --- numbers, money, dates: schemas.l10n with this visitor's locale and zone ---------------------


def _missing(x: object) -> bool:
    """None, NaN or NaT (what pandas puts in empty cells)."""
    if x is None:
        return True
    try:
        return bool(x != x)
    except (TypeError, ValueError):
        return False


def _number(x: Any) -> int | Decimal | Fraction:
    """A display value as an exact number (a float from a pandas column through its shortest repr)."""
    if isinstance(x, int | Decimal | Fraction) and not isinstance(x, bool):
        return x
    if isinstance(x, float):
        return Decimal(repr(x))
    try:
        import numbers

        if isinstance(x, numbers.Integral):
            return int(x)
    except (TypeError, ValueError):
        pass
    return Decimal(str(x))


def fmt_int(n: Any, lang: str | None = None) -> str:
    if _missing(n):
        return "—"
    return l10n.format_integer(int(n), _locale(lang))


def fmt_number(x: Any, decimals: int = 1, lang: str | None = None) -> str:
    if _missing(x):
        return "—"
    return l10n.format_number(_number(x), decimals, _locale(lang))


def fmt_money(amount: Any, currency: Any, lang: str | None = None) -> str:
    """``amount`` minor units of ``currency`` (``fmt_money(123456, "USD")`` -> ``USD 1,234.56``).

    A pandas column with an empty cell holds the other amounts as floats: they
    are whole numbers of minor units below 2**53, read back exactly.
    """
    if _missing(amount) or not currency or _missing(currency):
        return "—"
    if isinstance(amount, float):
        if not amount.is_integer():
            return "—"
        amount = int(amount)
    return l10n.format_money(int(amount), str(currency), _locale(lang))


def fmt_pct(ratio: Any, decimals: int = 1, lang: str | None = None) -> str:
    """A ratio (0.25) as a percentage (25.0%)."""
    if _missing(ratio):
        return "—"
    return l10n.format_percent(_number(ratio), decimals, _locale(lang))


def fmt_bps(bps: Any, decimals: int = 2, lang: str | None = None) -> str:
    """Basis points (470) as a percentage (4.70%)."""
    if _missing(bps):
        return "—"
    return l10n.format_bps(_number(bps), decimals, _locale(lang))


def viewer_tz() -> tzinfo:
    """The visitor's time zone, from the browser (``st.context``); UTC outside a session."""
    if not _in_session():
        return UTC
    try:
        import streamlit as st

        return l10n.viewer_zone(st.context.timezone, st.context.timezone_offset)
    except Exception:
        return UTC


def _py(dt: Any) -> Any:
    """A pandas Timestamp as a plain datetime (Babel formats plain datetimes)."""
    to_py = getattr(dt, "to_pydatetime", None)
    return to_py() if callable(to_py) else dt


def fmt_date(d: Any, lang: str | None = None) -> str:
    if _missing(d) or not isinstance(d, date):
        return "—"
    return l10n.format_date(_py(d), _locale(lang), viewer_tz())


def fmt_datetime(dt: Any, lang: str | None = None) -> str:
    """Date, time and zone name in the visitor's zone (``1 may 2025, 2:05 p.m. hora estándar central``)."""
    if _missing(dt) or not isinstance(dt, datetime):
        return "—"
    return l10n.format_datetime(_py(dt), _locale(lang), viewer_tz())


def fmt_time(dt: Any, lang: str | None = None) -> str:
    """Only the clock time and zone (``2:05 p.m. hora estándar central``)."""
    if _missing(dt) or not isinstance(dt, datetime):
        return "—"
    loc, tz = _locale(lang), viewer_tz()
    return f"{l10n.format_time_of_day(_py(dt), loc, tz)} {l10n.zone_name(_py(dt), tz, loc)}"


def utc_text(dt: Any) -> str:
    """The same instant in UTC, RFC 3339 (``2025-05-01T20:05:00Z``), for hover texts."""
    if _missing(dt) or not isinstance(dt, datetime):
        return ""
    d = _py(dt)
    return format_time(d if d.utcoffset() is not None else d.replace(tzinfo=UTC))


def time_html(dt: Any, lang: str | None = None) -> str:
    """``fmt_datetime`` in an HTML ``<time>`` whose hover text (``title``) is the UTC time."""
    shown = html.escape(fmt_datetime(dt, lang))
    utc = utc_text(dt)
    if not utc:
        return shown
    return f'<time datetime="{utc}" title="{html.escape(t("common.utc_hover", lang, utc=utc))}">{shown}</time>'


def zone_label(lang: str | None = None) -> str:
    """The name of the visitor's zone now (for column help texts)."""
    return l10n.zone_name(datetime.now(UTC), viewer_tz(), _locale(lang))


def fmt_duration(seconds: Any, lang: str | None = None) -> str:
    if _missing(seconds):
        return "—"
    return l10n.format_duration(int(seconds), _locale(lang))
