"""Nothing lost, nothing doubled when the broker and the database go away.

Faulty run B: the embedded broker restarted mid-run (every topic vanishes),
PostgreSQL restarted mid-run, then the broker stopped for 30 seconds.  It
must end in the clean run's state (see ``tests/faults/common.py``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.common import EVENTS, assert_same, clean_reference, make_sim, run, totals
from tests.faults.harness import Stack

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def sim() -> Any:
    return make_sim()


def test_broker_restart_database_restart_and_broker_outage(sim, tmp_path, tmp_path_factory):
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
    # the clean run of the same simulation (computed now, or by the other fault test)
    ref, ref_report = clean_reference(sim, tmp_path_factory)
    assert totals(report)["accepted"] == totals(ref_report)["accepted"]
    assert_same(snap, ref)
