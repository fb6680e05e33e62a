"""Scale-out: 1, 2 and 3 stream-processor workers share partitions and reach the same final state.

Each run is a fresh platform (own embedded broker and PostgreSQL) fed the
same simulation with anomalies; the workers form consumer groups over the
partitions, and the final log contents, reconciled tables and flags must be
identical whatever the number of workers.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from producers.simulator import simulate
from stream_processors.conservation import conservation_report
from tests.faults.harness import Stack, publish, settle_all, snapshot, wait_quiescent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]
EVENTS = int(os.environ.get("WORKERS_EVENTS", "3000"))


@pytest.fixture(scope="module")
def sim():
    return simulate(424242, events=EVENTS, start=datetime(2026, 2, 2, tzinfo=UTC), span=timedelta(days=60),
                    anomalies=True)


def run_with(n: int, sim, root) -> dict:
    st = Stack(root).start(workers=n)
    try:
        publish(st, sim, every=max(100, EVENTS // 10))
        settle_all(st, timeout=600)
        wait_quiescent(st, timeout=600)
        snap = snapshot(st)
        assert conservation_report(st.settings, st.settings.database_url)["exact"]
        live = [p for p in st.procs if p.poll() is None]
        # n copies of the PROCESSOR_ROLES processes (gate and reconcilers apart, issue 16)
        assert len(live) == st.target_workers, f"{st.target_workers - len(live)} worker(s) died"
        # every worker process was assigned a share of its role's partitions
        # (Faust logs each assignment as a "Topic Partition Set" table)
        for i in range(st.target_workers):
            log = (st.settings.data_path / "logs" / f"worker-{i}.log").read_text(errors="replace")
            assigned = log.rsplit("Topic Partition Set", 1)[-1] if "Topic Partition Set" in log else ""
            assert any(f"| {st.settings.topic(t)} " in assigned
                       for t in ("publish.transfers", "publish.projects", "accepted.transfers",
                                 "accepted.projects")), f"worker {i} of {n} got no partition"
        return snap
    finally:
        st.stop()


def test_one_two_and_three_workers_reach_the_same_state(sim, tmp_path):
    # Three independent platforms (own broker, database, workers), run side
    # by side: most of each run is waiting for group joins and settling.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {n: pool.submit(run_with, n, sim, tmp_path / f"w{n}") for n in (1, 2, 3)}
        snaps = {n: f.result() for n, f in futures.items()}
    assert snaps[1]["log"] and snaps[1]["flags"]
    for n in (2, 3):
        for table in snaps[1]:
            assert snaps[n][table] == snaps[1][table], f"{table} differs with {n} workers"
