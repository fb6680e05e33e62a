"""First-hop bundles end to end (issue 16): the SDK bundles, the gate splits, every event is its own.

On the real broker and PostgreSQL: a publisher's bundled events are each
logged, acknowledged and reconciled; a bundle sent again is acknowledged as
duplicates and logs nothing twice; a forged event inside a bundle is refused
alone with its reason while its neighbours are accepted; a record marked as a
bundle that is not one is refused whole and the processors go on; single
records are still accepted beside bundles.
"""

from __future__ import annotations

import json

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.identities import PlatformKeys
from infra.kafka import make_producer
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.bundles import BUNDLE_HEADER, encode_bundle, split_publisher_bundle
from schemas.keys import public_key_bytes
from schemas.privacy import receipt_code
from tests.integration.platform import prepare, processors, query, wait_for
from tests.integration.test_end_to_end import SECRET, sent_payload

pytestmark = pytest.mark.integration


def test_bundled_events_are_each_logged_acknowledged_and_reconciled(migrated):
    s = migrated.replace(publish_bundle_events=8)
    prepare(s)
    keys = PlatformKeys.load(s)
    op_key = Ed25519PrivateKey.generate()
    with processors(s) as proc:
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-norte", "operator", public_key_bytes(op_key))
        assert auth.settle(timeout=90).pending == 0

        op = Publisher.open(s, "mto-norte", op_key)
        producer = make_producer(s)
        sent_records: list[tuple[bytes, list[tuple[str, bytes]], int | None]] = []
        real_send = producer.send

        def spy(topic, key=None, value=None, headers=None, partition=None):  # type: ignore[no-untyped-def]
            sent_records.append((value, headers, partition))
            return real_send(topic, key=key, value=value, headers=headers, partition=partition)

        producer.send = spy  # type: ignore[method-assign]
        op._producer = producer
        envs = []
        for i in range(30):
            tid = f"tr-bundle-{i:03d}"
            envs.append(op.sign("transfer.sent", sent_payload(tid, receipt_code(SECRET, tid)),
                                event_time="2026-11-01T11:00:00Z", seq=100 + 2 * i))
            envs.append(op.sign("transfer.paid_out", {"transfer_id": tid, "paid": {"amount": 345000, "currency": "MXN"},
                                                      "paid_at": "2026-11-01T11:20:00Z", "payout_ref": f"po-{i}"},
                                event_time="2026-11-01T11:20:05Z", seq=101 + 2 * i))
        op.publish_many(envs)
        bundles = [r for r in sent_records if dict(r[1]).get(BUNDLE_HEADER)]
        assert bundles and len(sent_records) < len(envs), "the SDK sent no bundles"
        counts = op.settle(timeout=90)
        assert counts.pending == 0 and counts.accepted == len(envs), counts.as_dict()
        ids = [e.event_id for e in envs]
        assert query(s, "SELECT count(*) FROM log_entries WHERE event_id = ANY(%s)", (ids,))[0][0] == len(envs)
        wait_for(lambda: query(s, "SELECT count(*) FROM transfers WHERE transfer_id LIKE 'tr-bundle-%%'"
                                  " AND status = 'paid'")[0][0] == 30, what="30 transfers reconciled")

        # The same bundle again (a redelivery): duplicates, nothing logged twice.
        value, headers, partition = bundles[0]
        n_in = len(split_publisher_bundle(value) or [])
        raw_producer = make_producer(s)
        raw_producer.send(s.topic("publish.transfers"), key=b"again", value=value, headers=headers,
                          partition=partition)
        # A forged event between two good new ones: refused alone, its neighbours accepted.
        new = [op.sign("transfer.sent", sent_payload(f"tr-bundle-x{i}", receipt_code(SECRET, f"x{i}")),
                       event_time="2026-11-01T11:00:00Z", seq=500 + i) for i in range(3)]
        forged = orjson.loads(new[1].leaf_bytes())
        forged["payload"]["send"]["amount"] += 1  # the signature no longer covers it
        items = [(0, b"", new[0].leaf_bytes()), (1, b"", orjson.dumps(forged, option=orjson.OPT_SORT_KEYS)),
                 (2, b"", new[2].leaf_bytes())]
        raw_producer.send(s.topic("publish.transfers"), key=b"x", value=encode_bundle(items),
                          headers=[("cc-publisher", b"mto-norte"), (BUNDLE_HEADER, b"1")])
        # Not a bundle at all, though marked as one: refused whole, nothing crashes.
        raw_producer.send(s.topic("publish.transfers"), key=b"y", value=b"[[0,{]]",
                          headers=[("cc-publisher", b"mto-norte"), (BUNDLE_HEADER, b"1")])
        raw_producer.flush(30)
        raw_producer.close()
        # A plain single record still works beside bundles.
        tid = "tr-single-after-bundles"
        op.publish("transfer.sent", sent_payload(tid, receipt_code(SECRET, tid)), event_time="2026-11-01T11:00:00Z")
        assert op.settle(timeout=60).pending == 0

        wait_for(lambda: query(s, "SELECT 1 FROM log_entries WHERE event_id = %s", (new[2].event_id,)),
                 what="the forged event's neighbours logged")
        assert query(s, "SELECT 1 FROM log_entries WHERE event_id = %s", (new[0].event_id,))
        assert not query(s, "SELECT 1 FROM log_entries WHERE event_id = %s", (new[1].event_id,))
        assert query(s, "SELECT reason FROM quarantine WHERE event_id = %s", (new[1].event_id,)) == [("bad_signature",)]
        wait_for(lambda: query(s, "SELECT 1 FROM quarantine WHERE raw = %s", (b"[[0,{]]",)),
                 what="the malformed bundle quarantined")
        assert query(s, "SELECT count(*) FROM log_entries WHERE event_id = ANY(%s)", (ids,))[0][0] == len(envs)
        assert n_in > 1
        # The duplicate bundle was acknowledged event by event (duplicates) on the acks topic.
        acks = _acks(s, "mto-norte")
        dup_ids = {r["event_id"] for r in acks if r["status"] == "duplicate"}
        assert len(dup_ids) >= n_in
        assert proc.poll() is None, "the processors died"
        op.close()


def _acks(s, publisher_id):  # type: ignore[no-untyped-def]
    from kafka import KafkaConsumer, TopicPartition

    from infra.kafka import client_config
    from schemas.routing import ACKS_TOPIC, partition_for

    topic = s.topic(ACKS_TOPIC)
    c = KafkaConsumer(**client_config(s), enable_auto_commit=False, auto_offset_reset="earliest")
    parts = c.partitions_for_topic(topic) or {0}
    tp = TopicPartition(topic, partition_for(publisher_id.encode(), len(parts)))
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = []
    for _ in range(10):
        for recs in c.poll(timeout_ms=1000, max_records=5000).values():
            for r in recs:
                msg = json.loads(r.value)
                if msg.get("publisher_id") == publisher_id:
                    out.extend(msg["results"])
    c.close()
    return out
