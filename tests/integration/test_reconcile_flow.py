"""Reconciliation on the real broker and PostgreSQL, with the clock driven by the test.

A transfer whose payout never arrives gets a late_payout then a missing_payout
flag when the (pinned) event-time clock passes its deadlines; the late payout
resolves both, and the history of every change stays, each change a signed
event in the log.  Club money sent to a project fund is re-keyed to the project.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.db import connect
from infra.identities import PlatformKeys
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.keys import public_key_bytes
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from stream_processors import clock
from tests.integration.platform import prepare, processors, query, wait_for

pytestmark = pytest.mark.integration
SECRET = b"operator-secret-for-tests-111111"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sent(tid: str, dest: dict | None = None) -> dict:
    return {
        "transfer_id": tid, "operator": "mto-flow", "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 30000, "currency": "USD"}, "fee": {"amount": 500, "currency": "USD"},
        "exchange_rate": "17.00", "receive_promised": {"amount": 510000, "currency": "MXN"},
        "available_by": iso(T0 + timedelta(hours=1)),
        "destination": dest or {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", tid)},
        "sender": pseudonym(SECRET, "snd", tid), "receipt_digest": receipt_digest(receipt_code(SECRET, tid)),
        "disclosed_cost_bps": 300,
    }


def pin(s, at: datetime) -> None:
    conn = connect(s.database_url, s.database_schema)
    with conn, conn.cursor() as cur:
        clock.pin(cur, at)
    conn.close()


def flag_states(s, tid: str) -> dict[str, str]:
    return dict(query(s, "SELECT flag_type, status FROM flags WHERE subject_id = %s", (tid,)))


def test_deadlines_fire_on_the_clock_and_late_payout_resolves(migrated):
    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    k = Ed25519PrivateKey.generate()
    with processors(s):
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-flow", "operator", public_key_bytes(k))
        assert auth.settle(timeout=90).pending == 0
        op = Publisher.open(s, "mto-flow", k)
        op.publish("transfer.sent", sent("tr-flow-1"), event_time=iso(T0))
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: query(s, "SELECT 1 FROM transfers WHERE transfer_id = 'tr-flow-1'"), what="transfer row")
        assert flag_states(s, "tr-flow-1") == {}

        pin(s, T0 + timedelta(hours=2))  # past available_by: a delay
        wait_for(lambda: flag_states(s, "tr-flow-1").get("late_payout") == "open", timeout=30, what="late_payout")
        pin(s, T0 + timedelta(days=4))  # past the 72 h grace: a loss
        wait_for(lambda: flag_states(s, "tr-flow-1").get("missing_payout") == "open", timeout=30, what="missing_payout")

        op.publish("transfer.paid_out", {"transfer_id": "tr-flow-1", "paid": {"amount": 510000, "currency": "MXN"},
                                         "paid_at": iso(T0 + timedelta(days=5)), "payout_ref": "po-late"},
                   event_time=iso(T0 + timedelta(days=5)))
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: flag_states(s, "tr-flow-1") == {"late_payout": "resolved", "missing_payout": "resolved"},
                 timeout=30, what="both flags resolved")
        hist = query(s, "SELECT f.flag_type, h.status, l.idx IS NOT NULL FROM flag_history h JOIN flags f USING (flag_id)"
                        " LEFT JOIN log_entries l ON l.event_id = h.event_id WHERE f.subject_id = 'tr-flow-1'"
                        " ORDER BY f.flag_type, h.n")
        assert hist == [("late_payout", "open", True), ("late_payout", "resolved", True),
                        ("missing_payout", "open", True), ("missing_payout", "resolved", True)]
        assert query(s, "SELECT status, paid_amount FROM transfers WHERE transfer_id = 'tr-flow-1'") == [("paid", 510000)]
        # the dashboard summary was maintained incrementally
        assert query(s, "SELECT sum(transfers), sum(paid), sum(paid_value) FROM summary_corridor_day") == [(1, 1, 30000)]
