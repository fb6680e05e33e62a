"""What `cuentas up` gives the dashboard's process (issue 14.8): no writer credential, no key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cuentas.supervisor import Supervisor
from infra.runtime import Endpoints
from infra.settings import load_settings

WRITER = "postgresql://cuentas_writer:s3cret-writer@db.example:5432/cuentas"


def test_the_dashboard_gets_no_writer_url_and_no_key_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in (("DATABASE_URL", WRITER), ("LOG_KEY_FILE", "/keys/log.key"),
                       ("REGISTRY_KEY_FILE", "/keys/registry.key"), ("CUENTAS_KEY_PASSPHRASE", "pp"),
                       ("KAFKA_SASL_PASSWORD", "kafka-secret")):
        monkeypatch.setenv(var, value)
    for var in ("DASHBOARD_DATABASE_URL", "REVIEW_DATABASE_URL", "PUBLIC_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings({"CUENTAS_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": WRITER})
    sup = Supervisor(settings, echo=lambda *_: None)
    sup.endpoints = Endpoints("127.0.0.1:9092", WRITER)
    env = sup.dashboard_env()
    for var in ("DATABASE_URL", "LOG_KEY_FILE", "REGISTRY_KEY_FILE", "CUENTAS_KEY_PASSPHRASE", "KAFKA_SASL_PASSWORD"):
        assert var not in env, var
    assert "s3cret-writer" not in "\n".join(env.values())
    assert env["DASHBOARD_DATABASE_URL"] == "postgresql://cuentas_reader@db.example:5432/cuentas"
    assert env["REVIEW_DATABASE_URL"] == "postgresql://cuentas_review@db.example:5432/cuentas"
    assert env["PUBLIC_DIR"] == str(settings.public_path)
    home = Path(env["CUENTAS_DATA_DIR"])
    assert home == settings.data_path / "dashboard" and home.is_dir() and not any(home.iterdir())
    # the processors and the witness still get what they need
    assert sup._env()["DATABASE_URL"] == WRITER
