"""A real platform for benchmarks: migrations, topics, processors subprocesses, an operator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.common import ROOT, wait_until
from infra.db import connect, migrate
from infra.identities import keys_dir
from infra.kafka import ensure_topics
from infra.procs import spawn, stop_process
from infra.settings import Settings, processor_layout

__all__ = ["prepare", "processor_env", "start_processors", "stop_processors", "register_operator", "query",
           "pg_backend_pids"]


def prepare(s: Settings) -> None:
    from producers.registry import bootstrap_platform

    migrate(s.database_url, s.database_schema)
    ensure_topics(s)
    bootstrap_platform(s, s.database_url)


def processor_env(s: Settings, data_dir: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_", "CUENTAS_", "EMBEDDED_"))}
    return {
        **keep,
        "CUENTAS_DATA_DIR": str(data_dir),
        "CUENTAS_CONFIG": str(s.data_path / "bench-settings.toml"),
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": s.kafka_topic_prefix,
        "KAFKA_PARTITIONS": str(s.kafka_partitions),
        "KAFKA_SESSION_TIMEOUT_S": str(s.kafka_session_timeout_s),
        "KAFKA_REBALANCE_TIMEOUT_S": str(s.kafka_rebalance_timeout_s),
        "KAFKA_HEARTBEAT_S": str(s.kafka_heartbeat_s),
        "DATABASE_URL": s.database_url,
        "DATABASE_SCHEMA": s.database_schema,
        "BATCH_SIZE": str(s.batch_size),
        "BATCH_WINDOW_S": str(s.batch_window_s),
        "REDRIVE_AFTER_S": str(s.redrive_after_s),
        "CLOCK_LATENESS_S": str(s.clock_lateness_s),
        "PROCESSOR_UVLOOP": str(s.processor_uvloop),
        "CHECKPOINT_INTERVAL_S": str(s.checkpoint_interval_s),
        "PYTHONPATH": str(ROOT),
    }


def start_processors(s: Settings, workers: int = 1, components: str | None = None,
                     extra_env: dict[str, str] | None = None, roles: str | None = None) -> list[subprocess.Popen[bytes]]:
    """``python -m stream_processors`` once per process of the layout, all in one consumer group.

    The layout is ``PROCESSOR_ROLES`` (``roles``, default the setting's: the
    gate and the reconcilers in separate processes) times ``workers`` copies,
    as ``cuentas up`` starts it; ``components`` runs a single role instead
    (``workers`` copies of it).  Each process gets its own data folder
    (Faust keeps per-worker files there) holding a copy of the platform's keys.
    """
    if components is not None:
        layout: list[tuple[str, str | None]] = [(f"processors-{k}", components) for k in range(workers)]
    else:
        layout = processor_layout(s.replace(processor_workers=workers,
                                            processor_roles=roles if roles is not None else s.processor_roles))
    procs = []
    for k, (name, comps) in enumerate(layout):
        data_dir = s.data_path if k == 0 else s.data_path / f"worker{k}"
        if k:
            shutil.copytree(keys_dir(s), keys_dir(s.replace(data_dir=str(data_dir))), dirs_exist_ok=True)
        env = processor_env(s, data_dir)
        if comps:
            env["CUENTAS_COMPONENTS"] = comps
        env.update(extra_env or {})
        procs.append(spawn([sys.executable, "-m", "stream_processors"], log_path=s.data_path / "logs" / f"{name}.log",
                           env=env, cwd=str(ROOT)))
    return procs


def stop_processors(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        stop_process(p, timeout=20)


def register_operator(s: Settings, publisher_id: str, key: Ed25519PrivateKey, timeout: float = 120.0) -> float:
    """Register ``publisher_id`` through the gate and wait for its acknowledgement; return seconds taken."""
    from infra.identities import PlatformKeys
    from producers.registry import authority_publisher, register
    from schemas.keys import public_key_bytes

    t0 = time.monotonic()
    keys = PlatformKeys.load(s)
    auth = authority_publisher(s, keys.authority)
    try:
        register(auth, publisher_id, "operator", public_key_bytes(key))
        counts = auth.settle(timeout=timeout)
    finally:
        auth.close()
    if counts.pending or counts.accepted < 1:
        raise RuntimeError(f"operator registration not acknowledged in {timeout:.0f}s: {counts.as_dict()}")
    ok = wait_until(lambda: bool(query(s, "SELECT 1 FROM log_entries WHERE event_type = 'publisher.registered'"
                                          " AND convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' = %s",
                                          (publisher_id,))), timeout=30)
    if not ok:
        raise RuntimeError("operator registration is not in the log")
    return time.monotonic() - t0


def query(s: Settings, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def pg_backend_pids(s: Settings) -> list[int]:
    return [int(r[0]) for r in query(s, "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()")]
