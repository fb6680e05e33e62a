"""Shared fixtures: the real embedded broker and a real PostgreSQL, started once per session.

Each test isolates itself: its own topic prefix and its own database schema.
``DATABASE_URL`` (if set) points the tests at an existing PostgreSQL;
otherwise an embedded one starts in a temporary folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from infra.settings import Settings, load_settings

# Hypothesis' per-example deadline measures speed, and speed belongs in
# benchmarks/, not in tests: on two shared cores running four xdist workers,
# an example that takes 0.01 ms alone once took 295 ms (a flaky failure of
# tests/unit/test_routing.py).  Correctness is all a property test checks here.
hypothesis_settings.register_profile("cuentas", deadline=None)
hypothesis_settings.load_profile("cuentas")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cuentas")


@pytest.fixture(scope="session")
def kafka_bootstrap(session_dir: Path) -> Iterator[str]:
    if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["TEST_KAFKA_BOOTSTRAP_SERVERS"]
        return
    from infra.embedded import EmbeddedKafka

    broker = EmbeddedKafka(session_dir, 0).start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def pg_url(session_dir: Path) -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from infra.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(session_dir, 0).start()
    try:
        yield pg.url
    finally:
        pg.stop()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(tmp_path: Path, kafka_bootstrap: str, pg_url: str) -> Settings:
    """Settings for one isolated platform: own topics, own schema, own data dir."""
    return load_settings(
        {
            "CUENTAS_DATA_DIR": str(tmp_path / "data"),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": pg_url,
            "DATABASE_SCHEMA": unique("t_"),
            "KAFKA_TOPIC_PREFIX": unique("t") + ".",
            "KAFKA_SESSION_TIMEOUT_S": "6",
            "KAFKA_REBALANCE_TIMEOUT_S": "6",
            "KAFKA_HEARTBEAT_S": "1",
            "BATCH_WINDOW_S": "0.02",
            "REDRIVE_AFTER_S": "5",
            "OUTBOX_RESEND_AFTER_S": "5",
        }
    )


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    from infra.db import migrate

    migrate(settings.database_url, settings.database_schema)
    return settings

