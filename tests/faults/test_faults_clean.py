"""The clean reference run: the simulation on a fresh platform with no fault ends exact.

It is also what the fault tests compare against (``common.clean_reference``);
as a test file of its own it starts at the same time as they do under
pytest-xdist, instead of after one of them.
"""

from __future__ import annotations

import pytest

from tests.faults.common import EVENTS, clean_reference, make_sim, totals

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]


def test_clean_run_is_exact_and_logs_every_valid_event(tmp_path_factory):
    snap, report = clean_reference(make_sim(), tmp_path_factory)
    assert report["exact"], report
    t = totals(report)
    assert t["pending"] == 0 and t["accepted"] >= 0.99 * EVENTS
    assert len(snap["log"]) >= 0.99 * EVENTS
    assert snap["flags"], "the simulation's anomalies raised no flag"
