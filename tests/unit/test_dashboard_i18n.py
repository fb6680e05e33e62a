"""The dashboard's four languages and its locale-aware formatting (pure, no database)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dashboard import i18n
from schemas.l10n import plural_categories

LOCALES = Path(__file__).resolve().parents[2] / "dashboard" / "locales"
SOURCES = Path(__file__).resolve().parents[2] / "dashboard"


def load(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def variants(v: Any) -> list[str]:
    """A catalogue value's texts: the string, or every plural variant."""
    return list(v.values()) if isinstance(v, dict) else [v]


def placeholders(v: Any) -> set[str]:
    return {name for text in variants(v) for name in re.findall(r"\{(\w+)\}", text)}


def test_four_locale_files_have_the_same_keys_and_no_empty_values() -> None:
    files = sorted(p.stem for p in LOCALES.glob("*.json"))
    assert files == sorted(i18n.LANGS)
    en = load("en")
    for lang in i18n.LANGS:
        d = load(lang)
        assert set(d) == set(en), (lang, sorted(set(d) ^ set(en)))
        for k, v in d.items():
            assert isinstance(v, str | dict), (lang, k)
            assert all(isinstance(x, str) and x.strip() for x in variants(v)), (lang, k)


def test_placeholders_agree_across_languages() -> None:
    en = load("en")
    for lang in i18n.LANGS:
        d = load(lang)
        for k, v in en.items():
            assert placeholders(d[k]) == placeholders(v), (lang, k)


def test_every_plural_key_has_the_categories_its_language_needs() -> None:
    """CLDR: Spanish, French and Portuguese need one/many/other, English one/other."""
    plural_in_en = {k for k, v in load("en").items() if isinstance(v, dict)}
    assert {"track.has_flags", "watchdog.count", "track.verified", "audit.witnessed"} <= plural_in_en
    for lang in i18n.LANGS:
        d = load(lang)
        assert {k for k, v in d.items() if isinstance(v, dict)} == plural_in_en, lang
        needed = plural_categories(lang)
        for k in plural_in_en:
            assert set(d[k]) == needed, (lang, k, sorted(d[k]), sorted(needed))
            # the count is the placeholder `n` (what t() chooses the variant by)
            assert "n" in placeholders(d[k]), (lang, k)


@pytest.mark.parametrize(("lang", "n", "expected"), [
    ("es", 1, "1 discrepancia abierta en este envío"), ("es", 3, "3 discrepancias abiertas en este envío"),
    ("es", 1_000_000, "1,000,000 de discrepancias abiertas"), ("en", 1, "1 open discrepancy on"),
    ("en", 2, "2 open discrepancies on"), ("fr", 0, "0 anomalie ouverte"), ("fr", 2, "2 anomalies ouvertes"),
    ("pt", 1, "1 discrepância aberta"), ("pt", 2, "2 discrepâncias abertas"),
])
def test_counts_choose_their_plural_form(lang: str, n: int, expected: str) -> None:
    """Regression (issue 17): the track page said "3 discrepancia abierta en este envío"."""
    assert expected in i18n.t("track.has_flags", lang, n=n)


def test_integer_placeholders_use_the_locale_digits() -> None:
    assert i18n.t("audit.log_size", "en", n=1234567) == "The log holds 1,234,567 events."
    assert i18n.t("audit.log_size", "fr", n=1234567) == "Le journal contient 1\u202f234\u202f567 événements."
    assert i18n.t("audit.log_size", "pt", n=1) == "O registro contém 1 evento."


def test_every_key_the_code_uses_exists() -> None:
    used: set[str] = set()
    for p in SOURCES.rglob("*.py"):
        used |= set(re.findall(r'\bt\("([a-z0-9_.]+)"', p.read_text(encoding="utf-8")))
    assert used, "no keys found"
    assert used <= set(load("en")), sorted(used - set(load("en")))


@pytest.mark.parametrize(("lang", "expected"), [
    ("es", "USD\u00a01,234,567.89"), ("en", "USD\u00a01,234,567.89"),
    ("fr", "1\u202f234\u202f567,89\u00a0USD"), ("pt", "USD\u00a01.234.567,89"),
])
def test_money_from_minor_units(lang: str, expected: str) -> None:
    assert i18n.fmt_money(123456789, "USD", lang) == expected


def test_money_uses_the_currency_exponent() -> None:
    assert i18n.fmt_money(1500, "JPY", "en") == "JPY\u00a01,500"
    assert i18n.fmt_money(1234, "KWD", "en") == "KWD\u00a01.234"
    assert i18n.fmt_money(-5, "MXN", "pt") == "-MXN\u00a00,05"
    assert i18n.fmt_money(6000.0, "MXN", "en") == "MXN\u00a060.00"  # a pandas column with an empty cell
    assert i18n.fmt_money(None, "MXN", "en") == "—"
    assert i18n.fmt_money(float("nan"), "MXN", "en") == "—"


def test_numbers_percentages_dates_durations() -> None:
    assert i18n.fmt_int(1234567, "fr") == "1\u202f234\u202f567"
    assert i18n.fmt_bps(470, lang="pt") == "4,70%"
    assert i18n.fmt_pct(0.755, lang="en") == "75.5%"
    assert i18n.fmt_pct(0.755, lang="es") == "75.5%"  # es-MX (CLDR): no space before %
    assert i18n.fmt_pct(0.755, lang="fr") == "75,5\u00a0%"
    d = datetime(2025, 5, 1, 14, 5, tzinfo=UTC)
    assert i18n.fmt_date(d, "es") == "1 may 2025"
    assert i18n.fmt_date(d, "en") == "May 1, 2025"
    assert i18n.fmt_date(d, "pt") == "1 de mai. de 2025"
    assert i18n.fmt_datetime(d, "en") == "May 1, 2025, 2:05\u202fPM UTC"
    assert i18n.fmt_datetime(d, "fr") == "1 mai 2025, 14:05 UTC"
    assert i18n.fmt_datetime(d, "es") == "1 may 2025, 2:05\u202fp.m. UTC"
    assert i18n.fmt_duration(40 * 60, "en") == "40 min"
    assert i18n.fmt_duration(3 * 3600 + 300, "en") == "3 hr 5 min"
    assert i18n.fmt_duration(3 * 3600 + 300, "es") == "3 h 5 min"
    assert i18n.fmt_duration(2 * 86400 + 7200, "fr") == "2\u202fj 2\u202fh"


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


@pytest.mark.parametrize(("lang", "locale", "header", "expected"), [
    ("es", "es-US", None, "es_US"), ("es", "es-MX", None, "es_MX"), ("es", "en-US", None, "es_MX"),
    ("es", None, "en-US,es-US;q=0.8", "es_US"), ("es", None, "es;q=0.9", "es_MX"), ("pt", "pt-PT", None, "pt_PT"),
    ("fr", "fr-CA", None, "fr_CA"), ("en", None, None, "en_US"), ("fr", None, None, "fr_FR"), ("pt", None, None, "pt_BR"),
    ("es", "es-ZZ", None, "es_ES"), ("es", "garbage tag", "x;;q", "es_MX"),
])
def test_locale_from_the_browser_in_the_page_language(lang: str, locale: str | None, header: str | None,
                                                    expected: str) -> None:
    assert i18n.pick_locale(lang, locale, header) == expected


def test_time_in_a_named_zone_with_utc_on_hover() -> None:
    d = datetime(2025, 5, 1, 20, 5, tzinfo=UTC)
    assert i18n.utc_text(d) == "2025-05-01T20:05:00Z"
    html = i18n.time_html(d, "es")
    assert 'datetime="2025-05-01T20:05:00Z"' in html and 'title="En UTC: 2025-05-01T20:05:00Z"' in html
    assert i18n.time_html(None, "es") == "—"


# --- flag explanations (issue 15: "the dashboard's flag explanations (es/en/fr/pt) describe every new flag") ---


def test_every_flag_type_is_explained_in_every_language_and_nothing_else_is() -> None:
    from schemas.flags import FLAG_TYPES

    wanted = {f"flag_help.{x}" for x in FLAG_TYPES}
    for lang in i18n.LANGS:
        d = load(lang)
        explained = {k for k in d if k.startswith("flag_help.")}
        assert explained == wanted, (lang, sorted(explained ^ wanted))
        assert {f"flag.{x}" for x in FLAG_TYPES} <= set(d), lang  # and every one has its label
        for k in wanted:
            assert isinstance(d[k], str) and 40 <= len(d[k]) <= 500, (lang, k, len(d[k]))


def test_flag_explanations_name_only_numbers_the_settings_give_and_follow_them() -> None:
    """Every placeholder is filled (t() would otherwise show "{grace_hours}"), from the
    configured thresholds, the locale's way; the explanations write no setting's number."""
    from infra.settings import load_settings
    from schemas.flags import FLAG_TYPES

    defaults = load_settings(env={})
    for lang in i18n.LANGS:
        values = i18n.flag_help_values(defaults, lang)
        for x in FLAG_TYPES:
            raw = load(lang)[f"flag_help.{x}"]
            assert placeholders(raw) <= set(values), (lang, x, placeholders(raw) - set(values))
            shown = i18n.flag_help(x, values, lang)
            assert "{" not in shown and "}" not in shown, (lang, x)
            # a setting's default (72 hours, 30 minutes, 120 and 60 days...) only through its placeholder
            for n in ("72", "30", "120", "60"):
                assert not re.search(rf"(?<![\d.,]){n}(?![\d.,])", raw), (lang, x, n)
    es = load_settings(env={"PAYOUT_GRACE_HOURS": "48", "PAYOUT_TOLERANCE_BPS": "100",
                            "REFUND_PERIOD_BUSINESS_DAYS": "5", "CANCELLATION_WINDOW_MINUTES": "45"})
    v = i18n.flag_help_values(es, "es")
    assert "48 horas" in i18n.flag_help("missing_payout", v, "es")
    assert "1.0" in i18n.flag_help("short_payout", v, "es") and "%" in i18n.flag_help("short_payout", v, "es")
    refund = i18n.flag_help("refund_short", v, "es")
    assert "45 minutos" in refund and "5 días hábiles" in refund
    assert "72 horas" in i18n.flag_help("missing_payout", i18n.flag_help_values(defaults, "es"), "es")
    assert "0,1 ponto percentual" in i18n.flag_help("cost_above_disclosed", i18n.flag_help_values(defaults, "pt"), "pt")
    assert "30 días" in i18n.flag_help("funds_unreturned", i18n.flag_help_values(defaults, "es"), "es")
    assert "45 jours" in i18n.flag_help("funds_unreturned",
                                        i18n.flag_help_values(load_settings(env={"FUNDS_RETURN_DAYS": "45"}), "fr"), "fr")
    assert i18n.flag_help("brand_new_type", v, "es") == "" and i18n.flag_help(None, v) == ""
