"""Sequence gaps, equivocation and the conservation report, on the real broker and PostgreSQL."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.identities import PlatformKeys
from producers.publisher import Publisher
from producers.registry import authority_publisher, register
from schemas.envelope import sign_event
from schemas.keys import public_key_bytes
from schemas.routing import partition_key, topic_for
from stream_processors.conservation import conservation_report
from tests.integration.platform import prepare, processors, query, wait_for

pytestmark = pytest.mark.integration


def paid(tid: str, n: int) -> dict:
    return {"transfer_id": tid, "paid": {"amount": 1000 + n, "currency": "MXN"},
            "paid_at": "2026-10-01T10:00:00Z", "payout_ref": f"po-{n}"}


def test_gap_flag_opens_then_resolves_and_conservation_is_exact(migrated):
    s = migrated.replace(redrive_after_s=3.0)
    prepare(s)
    keys = PlatformKeys.load(s)
    k = Ed25519PrivateKey.generate()
    with processors(s):
        auth = authority_publisher(s, keys.authority)
        register(auth, "mto-gaps", "operator", public_key_bytes(k))
        assert auth.settle(timeout=90).pending == 0
        pub = Publisher.open(s, "mto-gaps", k)
        envs = {n: pub.sign("transfer.paid_out", paid(f"tr-g{n}", n), seq=n, event_time="2026-10-01T10:00:00Z")
                for n in (1, 2, 3, 4, 5)}
        for n in (1, 2, 4, 5):  # 3 is held back: a gap
            pub.publish_envelope(envs[n])
        assert pub.settle(timeout=60).pending == 0
        row = wait_for(lambda: query(s, "SELECT status, detail->'first_missing' FROM flags WHERE flag_type = 'sequence_gap'"
                                        " AND subject_id = 'mto-gaps'"), timeout=30, what="sequence_gap flag")
        assert row[0][0] == "open" and row[0][1] == [3]

        # equivocation: the same event id with other content
        twin = sign_event(k, publisher_id="mto-gaps", event_type="transfer.paid_out", payload=paid("tr-g1", 99),
                          seq=1, event_time="2026-10-01T10:00:00Z", event_id=envs[1].event_id)
        pub.publish_raw(twin.leaf_bytes(), event_id="equivocation-copy", topic=topic_for(twin.event_type),
                        key=partition_key(twin.event_type, twin.payload), seq=None)
        pub.publish_envelope(envs[3])  # the missing number arrives
        pub.publish_envelope(envs[2])  # a replay: duplicate, not appended twice
        counts = pub.settle(timeout=60)
        assert counts.pending == 0 and counts.duplicates == 1
        wait_for(lambda: query(s, "SELECT 1 FROM flags WHERE flag_type = 'sequence_gap' AND subject_id = 'mto-gaps'"
                                  " AND status = 'resolved'"), timeout=30, what="gap resolved")
        assert query(s, "SELECT count(*) FROM flags WHERE flag_type = 'equivocation'")[0][0] == 1
        assert query(s, "SELECT count(*) FROM log_entries WHERE publisher_id = 'mto-gaps'")[0][0] == 5
        hist = query(s, "SELECT h.status FROM flag_history h JOIN flags f USING (flag_id)"
                        " WHERE f.flag_type = 'sequence_gap' ORDER BY h.n")
        assert [h[0] for h in hist] == ["open", "resolved"]
        # every state change is a signed event in the log
        assert query(s, "SELECT count(*) FROM flag_history h JOIN log_entries l ON l.event_id = h.event_id")[0][0] >= 3

    report = conservation_report(s, s.database_url)
    by = {b["publisher_id"]: b for b in report["publishers"]}
    b = by["mto-gaps"]
    assert (b["handed"], b["accepted"], b["rejected"], b["duplicates"], b["pending"]) == (7, 5, 1, 1, 0)
    assert b["in_log"] == 5 and b["exact"] and report["exact"]
