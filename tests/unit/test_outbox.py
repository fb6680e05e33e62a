"""The publisher outbox: nothing leaves it until acknowledged; a registration race is retried."""

from __future__ import annotations

from producers.outbox import RETRY_ATTEMPTS, Outbox


def test_counts_identity_and_settling(tmp_path):
    ob = Outbox(tmp_path / "p.sqlite")
    for i in range(1, 5):
        assert ob.add(f"e{i}", i, "transfer.sent", "publish.transfers", b"k", b"raw%d" % i)
    assert not ob.add("e1", 1, "transfer.sent", "publish.transfers", b"k", b"raw1")  # handed again
    ob.mark_sent(["e1", "e2", "e3", "e4"])
    assert ob.apply_acks([
        {"event_id": "e1", "status": "accepted", "log_index": 0},
        {"event_id": "e2", "status": "duplicate", "log_index": 1},
        {"event_id": "e3", "status": "rejected", "reason": "schema", "message": "payload/x: bad"},
        {"event_id": "nope", "status": "accepted"},
        {"event_id": "e4", "status": "weird"},
    ]) == 3
    c = ob.counts()
    assert c.as_dict() == {"handed": 5, "accepted": 2, "rejected": 1, "duplicates": 1, "pending": 1}
    assert c.handed == c.accepted + c.rejected + c.duplicates + c.pending
    assert ob.next_seq() == 5
    assert [r.event_id for r in ob.due_for_resend(0)] == ["e4"]


def test_unknown_publisher_is_retried_then_final(tmp_path):
    ob = Outbox(tmp_path / "p.sqlite")
    ob.add("e1", 1, "transfer.sent", "publish.transfers", b"k", b"raw")
    nack = {"event_id": "e1", "status": "rejected", "reason": "unknown_publisher", "message": "who?"}
    for _ in range(RETRY_ATTEMPTS - 1):
        ob.mark_sent(["e1"])
        assert ob.apply_acks([nack]) == 0
        assert ob.pending() == 1
    ob.mark_sent(["e1"])
    assert ob.apply_acks([nack]) == 1
    assert ob.status_of("e1")[:2] == ("rejected", "unknown_publisher")


def test_a_late_accept_settles_a_retried_event(tmp_path):
    ob = Outbox(tmp_path / "p.sqlite")
    ob.add("e1", 1, "transfer.sent", "publish.transfers", b"k", b"raw")
    ob.mark_sent(["e1"])
    ob.apply_acks([{"event_id": "e1", "status": "rejected", "reason": "unknown_key"}])
    ob.mark_sent(["e1"])
    assert ob.apply_acks([{"event_id": "e1", "status": "accepted", "log_index": 7}]) == 1
    assert ob.status_of("e1") == ("accepted", None, None, 7)
