"""`cuentas flags check` on a real PostgreSQL: what is still inside a waiting period is pending, not missed.

Regression (issue 15.10): a sequence gap younger than its quiet time, or a
deadline the event-time clock has not reached, read as a missed flag.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from infra.db import connect
from stream_processors import clock
from stream_processors.cli import _waiting
from stream_processors.ground_truth import score

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_young_gap_and_future_deadline_are_pending_with_their_reason(migrated):
    s = migrated
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            clock.advance(cur, "g-check", {("w", 0): T0})
            cur.execute("INSERT INTO deadlines (kind, entity_id, due_at) VALUES ('transfer', 'trf-wait', %s),"
                        " ('transfer', 'trf-past', %s)", (T0 + timedelta(days=3), T0 - timedelta(days=1)))
            cur.execute("INSERT INTO publisher_sequences (publisher_id, max_seq, accepted, contiguous_upto, gap_at,"
                        " gap_since) VALUES ('gov-young', 9, 8, 4, 4, now()), ('gov-old', 9, 8, 4, 4,"
                        " now() - interval '1 day')")
            waiting = _waiting(cur, s)
    finally:
        conn.close()
    assert "next deadline 2026-05-04" in waiting[("transfer", "trf-wait")]
    assert ("transfer", "trf-past") not in waiting  # its deadline passed: a miss is a miss
    assert "sequence gap seen at" in waiting[("publisher", "gov-young")]
    assert ("publisher", "gov-old") not in waiting  # older than its quiet time
    truth = [json.loads(x) for x in (
        '{"class": "sequence_gap", "flag_type": "sequence_gap", "subject_kind": "publisher",'
        ' "subject_id": "gov-young", "key": null, "status": "open"}',
        '{"class": "sequence_gap", "flag_type": "sequence_gap", "subject_kind": "publisher",'
        ' "subject_id": "gov-old", "key": null, "status": "open"}',
        '{"class": "missing_payout", "flag_type": "missing_payout", "subject_kind": "transfer",'
        ' "subject_id": "trf-wait", "key": "", "status": "open"}')]
    scores = score(truth, [], waiting=waiting)
    assert (scores["sequence_gap"]["pending"], scores["sequence_gap"]["fn"]) == (1, 1)
    assert (scores["missing_payout"]["pending"], scores["missing_payout"]["fn"]) == (1, 0)
