"""Nothing lost, nothing doubled when every event arrives twice, shuffled, and workers are killed.

Faulty run A: every event delivered twice, in shuffled order, while a
stream-processor worker is killed with SIGKILL at random moments, five times
(two workers run, as under `cuentas up`).  It must end in the clean run's
state (see ``tests/faults/common.py``).
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from tests.faults.common import (
    EVENTS,
    EVERY,
    SEED,
    assert_same,
    clean_reference,
    make_sim,
    run,
    totals,
)
from tests.faults.harness import Stack, shuffled

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def sim() -> Any:
    return make_sim()


def test_twice_shuffled_and_killed_five_times(sim, tmp_path, tmp_path_factory):
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
    # the clean run of the same simulation (computed now, or by the other fault test)
    ref, ref_report = clean_reference(sim, tmp_path_factory)
    t, r = totals(report), totals(ref_report)
    assert t["pending"] == 0 and t["accepted"] == r["accepted"] and t["rejected"] == r["rejected"]
    # every simulated event was handed over twice: the same distinct events, one extra copy each
    assert t["handed"] - t["duplicates"] == r["handed"] - r["duplicates"]
    assert t["duplicates"] >= EVENTS
    assert_same(snap, ref)
