"""Nothing lost, nothing doubled: the same final state under faults as in a clean run.

One simulation of at least 20,000 events with every anomaly and attack is
published three times on fresh platforms (own embedded broker and PostgreSQL):
clean, then under faults.  Each run must end with the same log contents (the
publishers' events, as a set), the same reconciled tables and the same flags,
and an exact conservation report with nothing pending.

- faulty run A: every event delivered twice, in shuffled order, while a
  stream-processor worker is killed with SIGKILL at random moments, five
  times (two workers run, as under `cuentas up`);
- faulty run B: the embedded broker restarted mid-run (every topic vanishes),
  PostgreSQL restarted mid-run, then the broker stopped for 30 seconds.
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.simulator import simulate
from stream_processors.conservation import conservation_report
from tests.faults.harness import Stack, publish, settle_all, shuffled, snapshot, wait_quiescent

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]

EVENTS = int(os.environ.get("FAULT_EVENTS", "20000"))
SEED = 20261123
EVERY = max(100, EVENTS // 25)
WORKERS = int(os.environ.get("FAULT_WORKERS", "2"))  # as `cuentas up` runs them  # hand-overs between two fault opportunities


@pytest.fixture(scope="module")
def sim() -> Any:
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
        assert sum(p.poll() is None for p in st.procs) == WORKERS, "processors died and were not replaced"
        snap_restarts = st.restarts
        report["processor_restarts"] = snap_restarts
        return snap, report
    finally:
        st.stop()


@pytest.fixture(scope="module")
def clean(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    snap, report = run(tmp_path_factory.mktemp("clean"), sim)
    assert report["exact"], report
    assert len(snap["log"]) >= 0.99 * EVENTS
    return snap, report


def assert_same(snap: dict[str, Any], ref: dict[str, Any]) -> None:
    for table in ref:
        assert snap[table] == ref[table], f"{table} differs from the clean run"


def totals(report: dict[str, Any]) -> dict[str, int]:
    return dict(report["total"])


def test_twice_shuffled_and_killed_five_times(sim, clean, tmp_path):
    ref, ref_report = clean
    rng = random.Random(SEED)
    chances = -(-EVENTS // EVERY)
    kills = sorted(rng.sample(range(1, chances), 5))
    done: list[int] = []
    calls = [0]

    def hook(st: Stack, n: int) -> None:
        calls[0] += 1
        if kills and calls[0] >= kills[0]:
            kills.pop(0)
            time.sleep(rng.uniform(0.0, 1.5))  # a random moment in the worker's processing
            st.kill9_worker()
            done.append(n)
            st.start_worker()

    snap, report = run(tmp_path, sim, order=shuffled(list(sim.events), SEED), twice=True, hook=hook)
    assert len(done) == 5
    assert report["exact"], report
    t, r = totals(report), totals(ref_report)
    assert t["pending"] == 0 and t["accepted"] == r["accepted"] and t["rejected"] == r["rejected"]
    # every simulated event was handed over twice: the same distinct events, one extra copy each
    assert t["handed"] - t["duplicates"] == r["handed"] - r["duplicates"]
    assert t["duplicates"] >= EVENTS
    assert_same(snap, ref)


def test_broker_restart_database_restart_and_broker_outage(sim, clean, tmp_path):
    ref, ref_report = clean
    faults = {EVENTS // 4: "broker_restart", EVENTS // 2: "postgres_restart", 3 * EVENTS // 4: "broker_outage"}
    seen: list[str] = []

    def hook(st: Stack, n: int) -> None:
        for at, what in list(faults.items()):
            if n >= at:
                del faults[at]
                seen.append(what)
                if what == "broker_restart":
                    st.restart_broker()
                elif what == "postgres_restart":
                    st.restart_postgres()
                else:
                    st.restart_broker(pause_s=30)

    snap, report = run(tmp_path, sim, hook=hook)
    assert seen == ["broker_restart", "postgres_restart", "broker_outage"]
    assert report["exact"], report
    assert totals(report)["accepted"] == totals(ref_report)["accepted"]
    assert_same(snap, ref)
