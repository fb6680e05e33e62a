"""Languages of the dashboard and locale-aware formatting of numbers, money and dates.

Every visible string goes through :func:`t` (keys in ``dashboard/locales/*.json``;
the four files have exactly the same keys, a unit test checks it).  The language
comes from, in order: the ``lang`` URL query parameter, the session, the
browser (``st.context.locale``, then the ``Accept-Language`` header), else
Spanish, the language of most senders.

Formatting is done here rather than with the platform's C locale (which is
not installed on most servers): grouping and decimal separators of es-MX,
en-US, fr-FR and pt-BR, money from integer minor units with the ISO 4217
exponent of its currency (:mod:`schemas.money`), never through a float.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.money import display_exponent

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "NATIVE_NAMES",
    "current",
    "fmt_bps",
    "fmt_date",
    "fmt_datetime",
    "fmt_duration",
    "fmt_int",
    "fmt_money",
    "fmt_number",
    "fmt_pct",
    "load",
    "pick_language",
    "set_current",
    "setup",
    "t",
    "t_code",
]

LANGS: Final[tuple[str, ...]] = ("es", "en", "fr", "pt")
DEFAULT_LANG: Final = "es"
NATIVE_NAMES: Final[dict[str, str]] = {"es": "Español", "en": "English", "fr": "Français", "pt": "Português"}
#: (BCP 47 tag, grouping separator, decimal separator) per language.
_NUMBER_STYLE: Final[dict[str, tuple[str, str, str]]] = {
    "es": ("es-MX", ",", "."),
    "en": ("en-US", ",", "."),
    "fr": ("fr-FR", "\u202f", ","),
    "pt": ("pt-BR", ".", ","),
}
_LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
_STATE_KEY: Final = "_cc_lang"
_PICKER_KEY: Final = "_cc_lang_picker"

# Used when no Streamlit session exists (plain Python, unit tests).
_fallback_lang = DEFAULT_LANG


@cache
def load(lang: str) -> dict[str, str]:
    """The strings of one language (read once per process)."""
    with open(_LOCALES_DIR / f"{lang}.json", encoding="utf-8") as f:
        data = json.load(f)
    return {str(k): str(v) for k, v in data.items()}


def _session_lang() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is None:
            return None
        import streamlit as st

        v = st.session_state.get(_STATE_KEY)
        return v if v in LANGS else None
    except Exception:
        return None


def current() -> str:
    """The language of this session (or of plain-Python callers)."""
    return _session_lang() or _fallback_lang


def set_current(lang: str) -> None:
    """Set the language outside Streamlit (tests, CLI)."""
    global _fallback_lang
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}")
    _fallback_lang = lang


def t(key: str, lang: str | None = None, **kw: Any) -> str:
    """The text of ``key`` in the current language, with ``{name}`` placeholders filled."""
    lg = lang or current()
    text = load(lg).get(key)
    if text is None:
        text = load("en").get(key, key)
    if kw:
        try:
            return text.format(**kw)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def t_code(prefix: str, code: str | None, lang: str | None = None) -> str:
    """Translate a machine code (a status, a flag type...) or show it as it is."""
    if code is None or code == "":
        return "—"
    key = f"{prefix}.{code}"
    text = load(lang or current()).get(key)
    return text if text is not None else str(code)


# --- choosing the language ----------------------------------------------------------------


def pick_language(locale: str | None, accept_language: str | None) -> str:
    """The first supported language the browser asks for, else Spanish."""
    if locale:
        primary = locale.replace("_", "-").split("-")[0].strip().lower()
        if primary in LANGS:
            return primary
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate(accept_language.split(",")[:20]):
            tag, _, params = part.strip().partition(";")
            q = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    q = float(params[2:])
                except ValueError:
                    q = 0.0
            primary = tag.strip().split("-")[0].lower()
            if primary in LANGS and q > 0:
                ranked.append((-q, i, primary))
        if ranked:
            return sorted(ranked)[0][2]
    return DEFAULT_LANG


def _browser_language() -> str:
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
    return pick_language(locale, accept)


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
    st.sidebar.selectbox(
        t("lang.label", lang),
        LANGS,
        format_func=lambda c: NATIVE_NAMES[c],
        key=_PICKER_KEY,
        on_change=_picked,
    )
    return lang


# --- numbers --------------------------------------------------------------------------------


def _missing(x: object) -> bool:
    """None, NaN or NaT (what pandas puts in empty cells)."""
    if x is None:
        return True
    try:
        return bool(x != x)
    except (TypeError, ValueError):
        return False


def _group(digits: str, sep: str) -> str:
    out = []
    while len(digits) > 3:
        out.append(digits[-3:])
        digits = digits[:-3]
    out.append(digits)
    return sep.join(reversed(out))


def _format_decimal(value: Decimal, decimals: int, lang: str | None) -> str:
    _, group, point = _NUMBER_STYLE[lang or current()]
    q = Decimal(1).scaleb(-decimals) if decimals > 0 else Decimal(1)
    v = value.quantize(q, rounding=ROUND_HALF_UP)
    sign = "-" if v < 0 else ""
    text = f"{abs(v):f}"
    whole, _, frac = text.partition(".")
    out = _group(whole, group)
    if decimals > 0:
        out += point + frac.ljust(decimals, "0")[:decimals]
    return sign + out


def fmt_int(n: Any, lang: str | None = None) -> str:
    if _missing(n):
        return "—"
    return _format_decimal(Decimal(int(n)), 0, lang)


def fmt_number(x: Any, decimals: int = 1, lang: str | None = None) -> str:
    if _missing(x):
        return "—"
    return _format_decimal(Decimal(str(x)), decimals, lang)


def fmt_money(amount: Any, currency: Any, lang: str | None = None) -> str:
    """``amount`` minor units of ``currency`` (``fmt_money(123456, "USD")`` -> ``USD 1,234.56``)."""
    if _missing(amount) or not currency or _missing(currency):
        return "—"
    exp = display_exponent(currency)
    number = _format_decimal(Decimal(int(amount)).scaleb(-exp), exp, lang)
    return t("fmt.money", lang, amount=number, code=currency)


def fmt_pct(ratio: Any, decimals: int = 1, lang: str | None = None) -> str:
    """A ratio (0.25) as a percentage (25.0 %)."""
    if _missing(ratio):
        return "—"
    return t("fmt.percent", lang, n=fmt_number(Decimal(str(ratio)) * 100, decimals, lang))


def fmt_bps(bps: Any, decimals: int = 2, lang: str | None = None) -> str:
    """Basis points (470) as a percentage (4.70 %)."""
    if _missing(bps):
        return "—"
    return t("fmt.percent", lang, n=fmt_number(Decimal(str(bps)) / 100, decimals, lang))


# --- dates ----------------------------------------------------------------------------------


def _browser_tz() -> tzinfo:
    try:
        import streamlit as st

        name = st.context.timezone
        if name:
            return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, Exception):
        pass
    return UTC


def fmt_date(d: Any, lang: str | None = None) -> str:
    if _missing(d) or not isinstance(d, date):
        return "—"
    if isinstance(d, datetime):
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
        d = d.astimezone(_browser_tz()).date()
    return t("fmt.date", lang, d=d.day, mon=t(f"month.{d.month}", lang), y=d.year)


def fmt_datetime(dt: Any, lang: str | None = None) -> str:
    if _missing(dt) or not isinstance(dt, datetime):
        return "—"
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    tz = _browser_tz()
    local = dt.astimezone(tz)
    if t("fmt.clock", lang) == "12":
        hour = local.hour % 12 or 12
        clock = f"{hour}:{local.minute:02d}\u202f{'PM' if local.hour >= 12 else 'AM'}"
    else:
        clock = f"{local.hour:02d}:{local.minute:02d}"
    zone = local.tzname() or "UTC"
    return t("fmt.datetime", lang, date=fmt_date(local.date(), lang), time=clock, tz=zone)


def fmt_duration(seconds: Any, lang: str | None = None) -> str:
    if _missing(seconds):
        return "—"
    s = max(0, int(seconds))
    if s < 3600:
        return t("dur.minutes", lang, m=max(1, round(s / 60)) if s else 0)
    if s < 86400:
        return t("dur.hours", lang, h=s // 3600, m=(s % 3600) // 60)
    return t("dur.days", lang, d=s // 86400, h=(s % 86400) // 3600)
