"""Refunds of cancelled transfers on the real broker and PostgreSQL (issue 15.2).

A transfer cancelled ten minutes after it was sent (within the 30-minute window
of 12 CFR 1005.34(a), so the fee is owed back too) must be refunded within three
business days (1005.34(b)): with the clock pinned past the deadline the platform
raises ``refund_late``, past the grace period ``refund_missing``; a refund that
leaves out the fee resolves the missing one and opens ``refund_short``; the fee
resolves the rest.  Cancelled before its promised time, it raises no payout flag.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.identities import PlatformKeys
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.keys import public_key_bytes
from tests.integration.platform import prepare, processors, query, wait_for
from tests.integration.test_reconcile_flow import T0, flag_states, iso, pin, sent

pytestmark = pytest.mark.integration
TID = "tr-refund-1"
CANCEL = T0 + timedelta(minutes=10)  # Monday 2026-06-01 12:10
DUE = datetime(2026, 6, 4, 12, 10, tzinfo=UTC)  # three business days later
GRACE = timedelta(hours=72)


def test_a_cancelled_transfer_must_be_refunded_in_full_and_on_time(migrated):
    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    k = Ed25519PrivateKey.generate()
    with processors(s):
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-flow", "operator", public_key_bytes(k))
        assert auth.settle(timeout=90).pending == 0
        op = Publisher.open(s, "mto-flow", k)
        op.publish("transfer.sent", sent(TID), event_time=iso(T0))
        op.publish("transfer.cancelled", {"transfer_id": TID, "cancelled_at": iso(CANCEL),
                                          "reason_code": "sender_request"}, event_time=iso(CANCEL))
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: query(s, "SELECT status FROM transfers WHERE transfer_id = %s", (TID,)) == [("cancelled",)],
                 what="the cancelled transfer")
        assert flag_states(s, TID) == {}

        pin(s, DUE + timedelta(hours=1))
        wait_for(lambda: flag_states(s, TID) == {"refund_late": "open"}, timeout=30, what="refund_late")
        pin(s, DUE + GRACE + timedelta(hours=1))
        wait_for(lambda: flag_states(s, TID) == {"refund_late": "open", "refund_missing": "open"}, timeout=30,
                 what="refund_missing")

        back = DUE + GRACE + timedelta(minutes=30)  # before the pinned clock: shown at once
        op.publish("transfer.refunded", {"transfer_id": TID, "refunded": {"amount": 30000, "currency": "USD"},
                                         "refunded_at": iso(back)}, event_time=iso(back))
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: flag_states(s, TID) == {"refund_late": "open", "refund_missing": "resolved",
                                                 "refund_short": "open"}, timeout=30, what="the fee still owed")
        assert query(s, "SELECT amount_at_stake, currency FROM flags WHERE subject_id = %s"
                        " AND flag_type = 'refund_short'", (TID,)) == [(500, "USD")]

        fee = back + timedelta(minutes=10)
        op.publish("transfer.refunded", {"transfer_id": TID, "refunded": {"amount": 500, "currency": "USD"},
                                         "refunded_at": iso(fee)}, event_time=iso(fee))
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: flag_states(s, TID) == {"refund_late": "resolved", "refund_missing": "resolved",
                                                 "refund_short": "resolved"}, timeout=30, what="all resolved")
