"""schemas.thresholds: the rules' defaults are written once and reach the settings unchanged."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from infra.settings import load_settings
from schemas.thresholds import DEFAULT_THRESHOLDS, SDG_CEILING_BPS, Thresholds
from stream_processors.reconcilers import thresholds


def test_unset_settings_give_the_default_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no cuentas.toml here
    assert thresholds(load_settings(env={})) == DEFAULT_THRESHOLDS


def test_settings_change_the_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={"PAYOUT_GRACE_HOURS": "1.5", "CORRIDOR_COST_CEILING_BPS": "450"})
    th = thresholds(s)
    assert th.payout_grace == timedelta(minutes=90) and th.corridor_cost_ceiling_bps == 450
    assert th.cost_disclosure_tolerance_bps == DEFAULT_THRESHOLDS.cost_disclosure_tolerance_bps
    s = load_settings(env={"CANCELLATION_WINDOW_MINUTES": "45", "REFUND_PERIOD_BUSINESS_DAYS": "5"})
    th = thresholds(s)
    assert th.cancellation_window == timedelta(minutes=45) and th.refund_period_business_days == 5


def test_defaults() -> None:
    assert Thresholds() == DEFAULT_THRESHOLDS
    assert DEFAULT_THRESHOLDS.corridor_cost_ceiling_bps == SDG_CEILING_BPS == 500
    assert dataclasses.asdict(DEFAULT_THRESHOLDS) == {
        "payout_tolerance_bps": 50,
        "cost_disclosure_tolerance_bps": 10,
        "corridor_cost_ceiling_bps": 500,
        "payout_grace": timedelta(hours=72),
        "no_milestone_period": timedelta(days=120),
        "unverified_period": timedelta(days=60),
        "disbursement_tolerance_bps": 0,
        "cancellation_window": timedelta(minutes=30),  # 12 CFR 1005.34(a)
        "refund_period_business_days": 3,  # 12 CFR 1005.34(b)
        "funds_return_period": timedelta(days=30),
    }
