"""Regression: an unreadable record on `accepted.transfers` is logged and skipped, never a crash loop.

Only the gate writes that topic, but anyone with write access to the broker
could put garbage there.  The reconciler must log it (topic, partition,
offset), go on with the next records, and lose nothing: whatever a lost or
broken forward should have carried is still in the log and re-driven.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.identities import PlatformKeys
from infra.kafka import make_producer
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.keys import public_key_bytes
from schemas.privacy import receipt_code, receipt_digest
from tests.integration.platform import prepare, processors, query, wait_for
from tests.integration.test_end_to_end import SECRET, sent_payload

pytestmark = pytest.mark.integration

GARBAGE = [
    (b"not json at all", [("cc-bundle", b"1")]),
    (b'[[1, {"header": {}}]]', [("cc-bundle", b"1")]),
    (b'{"a": [1, 2', [("log-index", b"7")]),
    (b'{"header": {"event_id": "x"}}', None),
]


def test_garbage_forwards_are_skipped_and_reconciliation_goes_on(migrated):
    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    op_key = Ed25519PrivateKey.generate()
    with processors(s) as proc:
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-norte", "operator", public_key_bytes(op_key))
        assert auth.settle(timeout=90).pending == 0
        producer = make_producer(s)
        topic = s.topic("accepted.transfers")
        for p in range(s.kafka_partitions):
            for value, headers in GARBAGE:
                producer.send(topic, key=b"tr-garbage", value=value, headers=headers, partition=p)
        producer.flush(30)
        producer.close()

        op = Publisher.open(s, "mto-norte", op_key)
        code = receipt_code(SECRET, "tr-after-garbage")
        op.publish("transfer.sent", sent_payload("tr-after-garbage", code), event_time="2026-11-01T11:00:00Z")
        op.publish("transfer.paid_out", {"transfer_id": "tr-after-garbage",
                                         "paid": {"amount": 345000, "currency": "MXN"},
                                         "paid_at": "2026-11-01T11:20:00Z", "payout_ref": "po-1"},
                   event_time="2026-11-01T11:20:05Z")
        assert op.settle(timeout=60).pending == 0
        wait_for(lambda: query(s, "SELECT 1 FROM transfers WHERE receipt_digest = %s AND status = 'paid'",
                               (receipt_digest(code),)), what="the transfer reconciled after the garbage")
        wait_for(lambda: not query(s, "SELECT 1 FROM pending_reconcile"), what="nothing left unreconciled")
        assert proc.poll() is None, "the processors died on garbage"
        log = (s.data_path / "logs" / "processors.log").read_text(errors="replace")
        assert log.count("unreadable forwarded record") >= len(GARBAGE) * s.kafka_partitions
