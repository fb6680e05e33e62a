"""The thin end-to-end path on the real embedded broker and a real PostgreSQL.

A producer signs and publishes transfer events, the Faust processors verify
them, append them to the log and reconcile them, a witness cosigns, and the
receipt verifies offline; any tampered byte fails it.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.db import connect
from infra.identities import PlatformKeys
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.errors import CuentasError
from schemas.export_verify import verify_export
from schemas.keys import public_key_bytes
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.receipt import verify_receipt
from stream_processors.receipts import receipt_for
from stream_processors.witness_runner import Witness, witness_verifier_key
from tests.integration.platform import prepare, processors, query, wait_for

pytestmark = pytest.mark.integration

SECRET = b"operator-secret-for-tests-000000"


def sent_payload(tid: str, code: str) -> dict:
    return {
        "transfer_id": tid, "operator": "mto-norte", "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 20000, "currency": "USD"}, "fee": {"amount": 599, "currency": "USD"},
        "exchange_rate": "17.25", "receive_promised": {"amount": 345000, "currency": "MXN"},
        "available_by": "2026-11-01T12:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", "b1")},
        "sender": pseudonym(SECRET, "snd", "s1"), "receipt_digest": receipt_digest(code), "disclosed_cost_bps": 470,
    }


def test_publish_verify_log_reconcile_receipt(migrated, tmp_path):
    s = migrated
    prepare(s)
    keys = PlatformKeys.load(s)
    op_key = Ed25519PrivateKey.generate()
    with processors(s):
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-norte", "operator", public_key_bytes(op_key))
        assert auth.settle(timeout=90).pending == 0
        op = Publisher.open(s, "mto-norte", op_key)
        code = receipt_code(SECRET, "tr-e2e-1")
        sent = op.publish("transfer.sent", sent_payload("tr-e2e-1", code), event_time="2026-11-01T11:00:00Z")
        op.publish("transfer.paid_out", {"transfer_id": "tr-e2e-1", "paid": {"amount": 345000, "currency": "MXN"},
                                         "paid_at": "2026-11-01T11:20:00Z", "payout_ref": "po-1"},
                   event_time="2026-11-01T11:20:05Z")
        counts = op.settle(timeout=60)
        assert counts.as_dict() == {"handed": 2, "accepted": 2, "rejected": 0, "duplicates": 0, "pending": 0}
        row = wait_for(lambda: query(s, "SELECT status, paid_amount FROM transfers WHERE receipt_digest = %s",
                                     (receipt_digest(code),)) or None, what="reconciled transfer")
        assert row[0] == ("paid", 345000)
        wait_for(lambda: query(s, "SELECT 1 FROM checkpoints WHERE size >= 4"), what="checkpoint")

        # a witness cosigns; the receipt then verifies offline with the log key alone
        wkey = Ed25519PrivateKey.generate()
        w = Witness("witness.test", wkey, keys.log.verifier, tmp_path / "w.json")
        conn = connect(s.database_url, s.database_schema)
        with conn, conn.cursor() as cur:
            assert w.step(cur) is not None
            receipt = receipt_for(cur, sent.event_id)
        conn.close()
        data = receipt.to_json().encode()
        v = verify_receipt(data, keys.log.verifier, [witness_verifier_key("witness.test", wkey)], 1)
        assert v.envelope.event_id == sent.event_id and v.publisher_signature_checked

        # tampering with any byte of the receipt makes verification fail
        failures = 0
        for i in range(0, len(data), max(1, len(data) // 400)):
            bad = bytearray(data)
            bad[i] ^= 0x01
            try:
                verify_receipt(bytes(bad), keys.log.verifier, [witness_verifier_key("witness.test", wkey)], 1)
            except (CuentasError, ValueError):
                failures += 1
                continue
            # flipping a bit of JSON whitespace or an insignificant byte may still
            # parse to the same receipt; it must then be the very same content
            assert json.loads(bytes(bad)) == json.loads(data)
        assert failures > 0

        # a forged event is quarantined with its reason and acknowledged as rejected
        other = Ed25519PrivateKey.generate()
        forged = Publisher.open(s, "mto-norte", other, outbox_file=tmp_path / "forged.sqlite")
        env = forged.sign("transfer.paid_out", {"transfer_id": "tr-e2e-1", "paid": {"amount": 1, "currency": "MXN"},
                                               "paid_at": "2026-11-01T11:30:00Z", "payout_ref": "po-x"}, seq=99)
        forged.publish_envelope(env)
        c = forged.settle(timeout=60)
        assert c.rejected == 1
        assert query(s, "SELECT reason FROM quarantine WHERE event_id = %s", (env.event_id,)) == [("unknown_key",)]
        wait_for(lambda: query(s, "SELECT status FROM flags WHERE flag_type = 'forged_signature'"), what="integrity flag")

    # the static export verifies with the receipt
    from stream_processors.export import export_log

    conn = connect(s.database_url, s.database_schema)
    with conn, conn.cursor() as cur:
        export_log(cur, tmp_path / "export")
    conn.close()
    report = verify_export(tmp_path / "export", keys.log.verifier, receipt=data)
    assert report.receipt_checked and report.size >= 4
