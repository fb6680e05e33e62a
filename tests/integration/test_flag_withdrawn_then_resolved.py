"""Regression: a flag withdrawn while the clock stood below its moment, and back already resolved, ends resolved.

Seen in the kill -9 fault run: a worker's partition came back with an older
watermark, the shared clock stepped back below a late payout's moment, the
flag was withdrawn; when the clock passed again the rules had it raised and
resolved, but the workflow kept it "withdrawn" for good, unlike a run without
the interruption.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from infra.db import connect
from infra.identities import PlatformKeys
from stream_processors.flag_store import FlagWriter
from stream_processors.rules.model import FlagSpec
from tests.integration.platform import prepare

pytestmark = pytest.mark.integration

RAISED = datetime(2026, 4, 27, 5, 31, 56, tzinfo=UTC)
PAID = datetime(2026, 4, 27, 18, 18, 56, tzinfo=UTC)


def test_withdrawn_flag_that_returns_resolved_ends_resolved(migrated):
    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    spec = FlagSpec("late_payout", "", "transfer", "trf-1", "mto-norte", "medium", 252064, "USD", ("abcdefghijklmnopqrstuvwxyz",),
                    RAISED, None)
    subject = [("transfer", "trf-1")]
    conn = connect(s.database_url, s.database_schema)
    try:
        for specs, now in (([spec], RAISED), ([], datetime(2026, 4, 24, tzinfo=UTC)),
                           ([replace(spec, resolved_at=PAID)], PAID)):
            with conn, conn.cursor() as cur:
                fw = FlagWriter(cur, keys)
                fw.sync(subject, specs, now)
                fw.finish()
        with conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM flags WHERE flag_id = %s", (spec.flag_id,))
            assert cur.fetchone()[0] == "resolved"
            cur.execute("SELECT status FROM flag_history WHERE flag_id = %s ORDER BY n", (spec.flag_id,))
            assert [r[0] for r in cur.fetchall()] == ["open", "withdrawn", "open", "resolved"]
    finally:
        conn.close()
