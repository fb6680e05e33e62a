"""What the fault tests share: the simulation, one platform run, and the clean reference run.

One simulation of at least 20,000 events with every anomaly and attack is
published on fresh platforms (own embedded broker and PostgreSQL): once
clean, and once per fault test under faults.  Each faulty run must end with
the same log contents (the publishers' events, as a set), the same reconciled
tables and the same flags as the clean run, and an exact conservation report
with nothing pending.

The clean run is computed once per test session and shared by the fault
tests, also across pytest-xdist workers (a file lock in the session's
temporary folder), so the two fault tests and the clean run itself
(`test_faults_clean.py`) all run in parallel.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.simulator import simulate
from stream_processors.conservation import conservation_report
from tests.faults.harness import Stack, publish, settle_all, snapshot, wait_quiescent

EVENTS = int(os.environ.get("FAULT_EVENTS", "20000"))
SEED = 20261123
EVERY = max(100, EVENTS // 25)  # hand-overs between two fault opportunities
WORKERS = int(os.environ.get("FAULT_WORKERS", "2"))  # as `cuentas up` runs them


def make_sim() -> Any:
    return simulate(SEED, events=EVENTS, start=datetime(2026, 1, 5, tzinfo=UTC), span=timedelta(days=120),
                    anomalies=True)


def run(root: Path, sim: Any, *, order: list[Any] | None = None, twice: bool = False,
        hook: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    st = Stack(root).start(workers=WORKERS)
    try:
        publish(st, sim, order=order, twice=twice, hook=(lambda i: hook(st, i)) if hook else None, every=EVERY)
        settle_all(st, timeout=600)
        wait_quiescent(st, timeout=600)
        snap = snapshot(st)
        report = conservation_report(st.settings, st.settings.database_url)
        assert sum(p.poll() is None for p in st.procs) == st.target_workers, "processors died and were not replaced"
        report["processor_restarts"] = st.restarts
        return snap, report
    finally:
        st.stop()


def clean_reference(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The clean run of ``sim``: computed by the first test that asks, read by the others."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    result = shared / f"fault-clean-{SEED}-{EVENTS}-{WORKERS}.pickle"
    with open(shared / "fault-clean.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if result.exists():
                return pickle.loads(result.read_bytes())  # type: ignore[no-any-return]
            snap, report = run(tmp_path_factory.mktemp("clean"), sim)
            assert report["exact"], report
            assert len(snap["log"]) >= 0.99 * EVENTS
            result.write_bytes(pickle.dumps((snap, report)))
            return snap, report
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def assert_same(snap: dict[str, Any], ref: dict[str, Any]) -> None:
    for table in ref:
        assert snap[table] == ref[table], f"{table} differs from the clean run"


def totals(report: dict[str, Any]) -> dict[str, int]:
    return dict(report["total"])
