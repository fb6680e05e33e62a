"""The dashboard's four languages and its locale-aware formatting (pure, no database)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dashboard import i18n

LOCALES = Path(__file__).resolve().parents[2] / "dashboard" / "locales"
SOURCES = Path(__file__).resolve().parents[2] / "dashboard"


def load(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def test_four_locale_files_have_the_same_keys_and_no_empty_values() -> None:
    files = sorted(p.stem for p in LOCALES.glob("*.json"))
    assert files == sorted(i18n.LANGS)
    en = load("en")
    for lang in i18n.LANGS:
        d = load(lang)
        assert set(d) == set(en), (lang, sorted(set(d) ^ set(en)))
        assert all(isinstance(v, str) and v.strip() for v in d.values()), lang


def test_placeholders_agree_across_languages() -> None:
    en = load("en")
    for lang in i18n.LANGS:
        d = load(lang)
        for k, v in en.items():
            assert set(re.findall(r"\{(\w+)\}", d[k])) == set(re.findall(r"\{(\w+)\}", v)), (lang, k)


def test_every_key_the_code_uses_exists() -> None:
    used: set[str] = set()
    for p in SOURCES.rglob("*.py"):
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', p.read_text(encoding="utf-8")))
    assert used, "no keys found"
    assert used <= set(load("en")), sorted(used - set(load("en")))


@pytest.mark.parametrize(("lang", "expected"), [
    ("es", "USD 1,234,567.89"), ("en", "USD 1,234,567.89"),
    ("fr", "1\u202f234\u202f567,89\u00a0USD"), ("pt", "USD 1.234.567,89"),
])
def test_money_from_minor_units(lang: str, expected: str) -> None:
    assert i18n.fmt_money(123456789, "USD", lang) == expected


def test_money_uses_the_currency_exponent() -> None:
    assert i18n.fmt_money(1500, "JPY", "en") == "JPY 1,500"
    assert i18n.fmt_money(1234, "KWD", "en") == "KWD 1.234"
    assert i18n.fmt_money(-5, "MXN", "pt") == "MXN -0,05"
    assert i18n.fmt_money(None, "MXN", "en") == "—"
    assert i18n.fmt_money(float("nan"), "MXN", "en") == "—"


def test_numbers_percentages_dates_durations() -> None:
    assert i18n.fmt_int(1234567, "fr") == "1\u202f234\u202f567"
    assert i18n.fmt_bps(470, lang="pt") == "4,70%"
    assert i18n.fmt_pct(0.755, lang="en") == "75.5%"
    assert i18n.fmt_pct(0.755, lang="es") == "75.5\u00a0%"
    d = datetime(2025, 5, 1, 14, 5, tzinfo=UTC)
    assert i18n.fmt_date(d, "es") == "1 may 2025"
    assert i18n.fmt_date(d, "en") == "May 1, 2025"
    assert i18n.fmt_date(d, "pt") == "1 de mai. de 2025"
    assert i18n.fmt_datetime(d, "en") == "May 1, 2025, 2:05\u202fPM UTC"
    assert i18n.fmt_datetime(d, "fr") == "1 mai 2025 à 14:05 UTC"
    assert i18n.fmt_duration(40 * 60, "en") == "40 min"
    assert i18n.fmt_duration(3 * 3600 + 300, "en") == "3 h 5 min"
    assert i18n.fmt_duration(2 * 86400 + 7200, "fr") == "2 j 2 h"


@pytest.mark.parametrize(("locale", "header", "expected"), [
    ("pt-BR", None, "pt"), (None, "fr-CA,fr;q=0.9,en;q=0.8", "fr"), (None, "de-DE,en;q=0.5", "en"),
    (None, "de-DE", "es"), (None, None, "es"), (None, "en;q=0.2, es;q=0.9", "es"), ("zh-CN", "garbage;;q=x", "es"),
])
def test_language_from_the_browser(locale: str | None, header: str | None, expected: str) -> None:
    assert i18n.pick_language(locale, header) == expected


def test_translation_falls_back_and_fills_placeholders() -> None:
    assert i18n.t("overview.period_days", "fr", n=30) == "30 derniers jours"
    assert i18n.t("no.such.key", "es") == "no.such.key"
    assert i18n.t_code("flag", "short_payout", "es") == "Se pagó menos de lo prometido"
    assert i18n.t_code("flag", "brand_new_type", "es") == "brand_new_type"
