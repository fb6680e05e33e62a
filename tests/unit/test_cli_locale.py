"""Command-line output written for a locale (``--locale``, LC_ALL / LC_NUMERIC / LANG, else en-US);
``--json`` stays machine-readable."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cuentas.cli import build_parser, main
from cuentas.status import render_status
from stream_processors import cli as processors_cli
from stream_processors.conservation import render
from stream_processors.ground_truth import render_table


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [leaf for a in subs for name, p in a.choices.items() for leaf in leaves(p, (*path, name))]


def test_every_command_takes_locale_before_or_after_its_name() -> None:
    p = build_parser()
    for path, leaf in leaves(p):
        assert "--locale" in leaf._option_string_actions, path
    assert p.parse_args(["--locale", "fr", "flags", "list"]).locale == "fr"
    assert p.parse_args(["flags", "list", "--locale", "es-US"]).locale == "es-US"
    assert p.parse_args(["flags", "list"]).locale is None


def test_status_counts_by_locale() -> None:
    report = {"healthy": True, "components": {"processors": {"ok": True, "lag": {"cc-gate": 12345},
                                                             "log_size": 1234567, "pending_reconcile": 0}}}
    assert "log_size=1,234,567" in render_status(report)  # en-US by default
    assert "lag={cc-gate: 12\u202f345}, log_size=1\u202f234\u202f567" in render_status(report, "fr_FR")
    assert "log_size=1.234.567" in render_status(report, "pt_BR")


def test_conservation_and_ground_truth_tables_by_locale() -> None:
    report = {"exact": True, "publishers": [{"publisher_id": "op.remesas-sol", "handed": 12000, "accepted": 11990,
                                             "rejected": 10, "duplicates": 0, "pending": 0, "in_log": 11990,
                                             "exact": True, "problems": []}]}
    assert "12.000" in render(report, "pt_BR") and "11.990" in render(report, "pt_BR")
    assert "12,000" in render(report)
    scores = {"short_payout": {"tp": 1234, "fp": 0, "fn": 1, "precision": 1.0, "recall": 0.9992,
                               "status_mismatch": 0}}
    assert "1\u202f234" in render_table(scores, "fr_FR") and "0,999" in render_table(scores, "fr_FR")
    assert "1,234" in render_table(scores) and "0.999" in render_table(scores)


class _Cursor:
    description = tuple((c,) for c in ("flag_id", "flag_type", "key", "subject_kind", "subject_id", "accountable",
                                       "severity", "amount_at_stake", "currency", "status", "raised_at",
                                       "resolved_at", "evidence"))

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, q: str, params: Any = None) -> None:
        return None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [("flg_aaaaaaaaaaaaaaaaaaaaaaaaaa", "short_payout", None, "transfer", "tr-1", "op.remesas-sol",
                 "medium", 123456, "MXN", "open", datetime(2025, 5, 1, 20, 5, tzinfo=UTC), None,
                 [{"event_id": "ev1", "log_index": 7}])]


class _Conn:
    def __enter__(self) -> _Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def cursor(self) -> _Cursor:
        return _Cursor()


@pytest.fixture
def fake_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processors_cli, "_db", lambda need_kafka=False: (None, _Conn()))
    monkeypatch.setenv("COLUMNS", "220")
    for var in ("LC_ALL", "LC_NUMERIC", "LC_TIME", "LANG"):
        monkeypatch.delenv(var, raising=False)


def test_flags_list_amounts_and_times_by_locale(fake_db: None, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["flags", "list"]) == 0
    out = capsys.readouterr().out
    assert "MXN\u00a01,234.56" in out and "May 1, 2025, 8:05\u202fPM UTC" in out and "1 flag" in out

    assert main(["flags", "list", "--locale", "es-MX"]) == 0
    out = capsys.readouterr().out
    assert "MXN\u00a01,234.56" in out and "1 may 2025, 8:05\u202fp.m. UTC" in out

    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert main(["flags", "list"]) == 0
    out = capsys.readouterr().out
    assert "1\u202f234,56\u00a0MXN" in out and "1 mai 2025, 20:05 UTC" in out


def test_flags_list_json_is_never_localised(fake_db: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--locale", "fr", "flags", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["amount_at_stake"] == 123456 and rows[0]["raised_at"].startswith("2025-05-01 20:05:00")


def test_simulation_summary_by_locale(tmp_path: Any) -> None:
    from datetime import timedelta

    from producers.cli.simulate import _summary_text
    from producers.simulator import simulate

    sim = simulate(5, events=1_200, start=datetime(2025, 1, 1, tzinfo=UTC), span=timedelta(days=30), anomalies=False)
    obs = {"observed": {"accepted": 1200, "rejected": 0, "pending": 0}, "expected": {"accepted": 1200},
           "rejections": {}, "mismatches": []}
    text = _summary_text(sim, obs, {}, tmp_path / "t.jsonl", 2.5, 1200, "pt_BR")
    assert "1.200 events" in text and "1 de jan. de 2025 00:00 UTC" in text
    assert "published 1.200 in 2,5 s (480/s)" in text
    assert "1,200 events" in _summary_text(sim, obs, {}, tmp_path / "t.jsonl", 2.5, 1200)
