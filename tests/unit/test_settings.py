"""Settings: environment over TOML over defaults; the README's table is generated from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import load_settings, settings_table_markdown
from schemas.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_the_code():
    assert settings_table_markdown() in (ROOT / "README.md").read_text(), (
        "README.md's settings table is stale: paste the output of `cuentas settings --markdown`"
    )


def test_precedence_env_over_toml_over_default(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('kafka_partitions = 12\ndashboard_port = 9000\n')
    s = load_settings({"CUENTAS_CONFIG": str(cfg), "DASHBOARD_PORT": "9100"})
    assert (s.kafka_partitions, s.dashboard_port, s.batch_size) == (12, 9100, 2000)
    assert s.embedded_kafka and s.embedded_postgres


def test_bad_values_name_the_setting(tmp_path):
    with pytest.raises(ConfigurationError, match="KAFKA_PARTITIONS"):
        load_settings({"KAFKA_PARTITIONS": "many"})
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings({"CUENTAS_CONFIG": str(tmp_path / "missing.toml")})
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigurationError, match="cannot read settings file"):
        load_settings({"CUENTAS_CONFIG": str(bad)})
