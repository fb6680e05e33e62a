"""Helpers to run a real platform (processors as a subprocess) against the session's broker and database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.db import connect, migrate
from infra.kafka import ensure_topics
from infra.procs import spawn
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def env_of(s: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "CUENTAS_DATA_DIR": str(s.data_path),
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "DATABASE_URL": s.database_url,
        "DATABASE_SCHEMA": s.database_schema,
        "KAFKA_TOPIC_PREFIX": s.kafka_topic_prefix,
        "KAFKA_SESSION_TIMEOUT_S": str(s.kafka_session_timeout_s),
        "KAFKA_REBALANCE_TIMEOUT_S": str(s.kafka_rebalance_timeout_s),
        "KAFKA_HEARTBEAT_S": str(s.kafka_heartbeat_s),
        "BATCH_WINDOW_S": str(s.batch_window_s),
        "REDRIVE_AFTER_S": str(s.redrive_after_s),
        "CLOCK_LATENESS_S": str(s.clock_lateness_s),
    }


def prepare(s: Settings) -> None:
    from producers.registry import bootstrap_platform

    migrate(s.database_url, s.database_schema)
    ensure_topics(s)
    bootstrap_platform(s, s.database_url)


@contextmanager
def processors(s: Settings, name: str = "processors") -> Iterator[subprocess.Popen[bytes]]:
    log = s.data_path / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = spawn([sys.executable, "-m", "stream_processors"], log_path=log, env=env_of(s), cwd=str(ROOT))
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def query(s: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
