"""First-hop bundles (issue 16): the SDK sends many signed events in one record, the gate splits them.

The split must hand the gate each event's exact bytes, so every refusal keeps
its reason; a bundle that is not exactly what the SDK makes is refused whole.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.settings import load_settings
from producers.outbox import Outbox
from producers.publisher import Publisher
from schemas.bundles import (
    BUNDLE_HEADER,
    decode_bundle,
    encode_bundle,
    is_bundle,
    split_publisher_bundle,
)
from schemas.envelope import parse_envelope
from schemas.routing import partition_for, partition_key, topic_for
from stream_processors.agents.gate import items_of
from tests.unit.test_schemas_roundtrip import sample, signed


def settings_in(tmp_path: Any, **env: str) -> Any:
    config = tmp_path / "empty.toml"
    config.touch()
    return load_settings({"CUENTAS_DATA_DIR": str(tmp_path), **env}, config_file=str(config))


def transfer_events(n: int) -> list[Any]:
    out = []
    for i in range(n):
        p = sample("transfer.sent")
        p["transfer_id"] = f"tr-bundle-{i:04d}"
        out.append(signed("transfer.sent", p, seq=i + 1))
    return out


def bundle_of(envs: list[Any]) -> bytes:
    return encode_bundle([(i, b"k", e.leaf_bytes()) for i, e in enumerate(envs)])


def test_split_gives_each_event_its_exact_bytes() -> None:
    envs = transfer_events(20)
    raws = split_publisher_bundle(bundle_of(envs))
    assert raws == [e.leaf_bytes() for e in envs]
    assert [parse_envelope(r) for r in raws] == envs
    # The same format as the gate's forwards: decode_bundle reads it too.
    assert [n for n, _ in decode_bundle(bundle_of(envs))] == list(range(20))


def _respelt(value: bytes, old: bytes, new: bytes) -> bytes:
    assert old in value
    return value.replace(old, new, 1)


def test_a_bundle_not_exactly_as_the_sdk_makes_it_is_refused_whole() -> None:
    envs = transfer_events(3)
    good = bundle_of(envs)
    leaf = envs[1].leaf_bytes()
    bad = [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b"[1,2]",
        b"[[0]]",
        b'[["0",{}]]',
        good.replace(b"[0,", b"[5,", 1),  # positions out of order
        good.replace(b"[1,", b"[0,", 1),
        good[:-1] + b" ]",  # whitespace
        good.replace(b'"seq":', b'"seq":9,"seq":', 1),  # a duplicate member orjson would drop
        _respelt(good, leaf, leaf.replace(b'{"header":', b'{"header" :', 1)),
        good.replace(b'"header":{', b'"header":{"a":"\\u0041",', 1),  # an escape respelt by orjson
        good + b" ",
    ]
    for value in bad:
        assert split_publisher_bundle(value) is None, value


def test_hostile_events_inside_a_canonical_bundle_keep_their_reasons() -> None:
    """A canonical bundle may still carry bad events: each is refused on its own, as if alone."""
    envs = transfer_events(2)
    big = orjson.loads(envs[0].leaf_bytes())
    big["header"]["seq"] = 2**60  # beyond 2^53-1: "number"
    nul = orjson.loads(envs[1].leaf_bytes())
    nul["payload"]["transfer_id"] = "a\x00b"  # through an escape: "nul_byte"
    items = [(0, b"k", orjson.dumps(big, option=orjson.OPT_SORT_KEYS)),
             (1, b"k", orjson.dumps(nul, option=orjson.OPT_SORT_KEYS))]
    raws = split_publisher_bundle(encode_bundle(items))
    assert raws is not None
    from stream_processors.gate.decision import Incoming, parse_item

    reasons = [parse_item(Incoming(r, "t/0/0"), 65536).reason for r in raws]
    assert reasons == ["number", "nul_byte"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 10_000))
def test_random_corruption_never_splits_into_other_events(junk: bytes, at: int) -> None:
    envs = transfer_events(2)
    good = bundle_of(envs)
    at = at % (len(good) + 1)
    value = good[:at] + junk + good[at:]
    raws = split_publisher_bundle(value)
    if raws is not None:
        # Whatever was accepted rebuilds the record byte for byte.
        assert encode_bundle([(i, b"", r) for i, r in enumerate(raws)]) == value


def _record(value: bytes, headers: list[tuple[str, bytes]]) -> Any:
    return SimpleNamespace(message=SimpleNamespace(value=value, headers=headers, topic="cc.publish.transfers",
                                                   partition=2, offset=41))


def test_gate_items_of_a_bundle_and_of_a_single_record() -> None:
    envs = transfer_events(3)
    items = items_of(_record(bundle_of(envs), [("cc-publisher", b"op.remesas-sol"), (BUNDLE_HEADER, b"1")]))
    assert [it.incoming.raw for it in items] == [e.leaf_bytes() for e in envs]
    assert [it.incoming.source for it in items] == [f"cc.publish.transfers/2/41#{i}" for i in range(3)]
    assert all(it.publisher == "op.remesas-sol" and it.event_id is None and it.tp == ("cc.publish.transfers", 2)
               for it in items)
    one = items_of(_record(envs[0].leaf_bytes(), [("cc-publisher", b"op.remesas-sol"),
                                                  ("cc-event-id", envs[0].event_id.encode())]))
    assert len(one) == 1 and one[0].event_id == envs[0].event_id and one[0].incoming.raw == envs[0].leaf_bytes()
    # A malformed bundle: one item, the whole record, refused by the parser as not an envelope.
    broken = items_of(_record(b"[[0,{}]", [(BUNDLE_HEADER, b"1")]))
    assert len(broken) == 1 and broken[0].incoming.raw == b"[[0,{}]"


class FakeProducer:
    def __init__(self, partitions: int) -> None:
        self.parts = partitions
        self.sent: list[dict[str, Any]] = []

    def partitions_for(self, _topic: str) -> set[int]:
        return set(range(self.parts))

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]],
             partition: int | None = None) -> None:
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers, "partition": partition})

    def flush(self, timeout: float = 0) -> None:
        pass


@pytest.mark.parametrize(("events", "max_events", "max_bytes"), [(60, 256, 1 << 20), (60, 7, 1 << 20), (60, 256, 3000)])
def test_sdk_sends_bundles_per_destination_partition(tmp_path: Any, events: int, max_events: int,
                                                     max_bytes: int) -> None:
    s = settings_in(tmp_path, PUBLISH_BUNDLE_EVENTS=str(max_events), PUBLISH_BUNDLE_BYTES=str(max_bytes),
                    KAFKA_PARTITIONS="4")
    producer = FakeProducer(4)
    envs = transfer_events(events)
    pub = Publisher(s, "op.remesas-sol", None, Outbox(tmp_path / "outbox.sqlite"), producer=producer)
    pub.publish_many(envs)
    seen: list[bytes] = []
    for rec in producer.sent:
        raws = ([rec["value"]] if not is_bundle(rec["headers"]) else split_publisher_bundle(rec["value"]))
        assert raws is not None
        assert len(raws) <= max_events
        if len(raws) > 1:
            assert len(rec["value"]) <= max_bytes + 64 * len(raws)
            assert dict(rec["headers"]).get("cc-publisher") == b"op.remesas-sol"
        for raw in raws:
            env = parse_envelope(raw)
            key = partition_key(env.event_type, env.payload)
            # Each event travels on the partition its own key names, as if sent alone.
            part = rec["partition"] if rec["partition"] is not None else partition_for(rec["key"], 4)
            assert part == partition_for(key, 4)
            assert rec["topic"] == s.topic(topic_for(env.event_type))
        seen += raws
    # Every event once, and in order within each partition.
    assert sorted(seen) == sorted(e.leaf_bytes() for e in envs)
    for p in range(4):
        mine = [e.leaf_bytes() for e in envs if partition_for(partition_key(e.event_type, e.payload), 4) == p]
        assert [r for r in seen if r in set(mine)] == mine
    assert len(producer.sent) < events or max_events == 1
    counts = pub.outbox.counts()
    assert counts.handed == events and counts.pending == events
    pub.close()


def test_sdk_bundles_off_sends_every_event_alone(tmp_path: Any) -> None:
    s = settings_in(tmp_path, PUBLISH_BUNDLE_EVENTS="1")
    producer = FakeProducer(4)
    envs = transfer_events(5)
    pub = Publisher(s, "op.remesas-sol", None, Outbox(tmp_path / "outbox.sqlite"), producer=producer)
    pub.publish_many(envs)
    assert [r["value"] for r in producer.sent] == [e.leaf_bytes() for e in envs]
    assert all(not is_bundle(r["headers"]) for r in producer.sent)
    pub.close()


def test_acknowledgements_settle_each_bundled_event(tmp_path: Any) -> None:
    """The gate acknowledges every event of a bundle by its own id: the outbox settles them one by one."""
    envs = transfer_events(4)
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add_many([(e.event_id, e.seq, e.event_type, "publish.transfers", b"k", e.leaf_bytes()) for e in envs])
    acks = [{"event_id": e.event_id, "status": "accepted", "log_index": i} for i, e in enumerate(envs[:3])]
    assert box.apply_acks(copy.deepcopy(acks)) == 3
    assert box.apply_acks(acks) == 0  # a redelivered acknowledgement settles nothing twice
    c = box.counts()
    assert (c.accepted, c.pending) == (3, 1)
    box.close()


def test_raw_hand_overs_bundle_only_canonical_envelopes_under_their_own_id(tmp_path: Any) -> None:
    """publish_raw_many: raw or hostile bytes and hand-over ids of their own go alone, order kept."""
    s = settings_in(tmp_path, KAFKA_PARTITIONS="1")
    producer = FakeProducer(1)
    envs = transfer_events(6)
    rows: list[tuple[str, int | None, str | None, str, bytes, bytes]] = []
    for i, e in enumerate(envs):
        key = partition_key(e.event_type, e.payload)
        if i == 2:
            rows.append(("hostile-1", None, None, "publish.transfers", key, b'{"not": "an envelope"}'))
        if i == 4:
            rows.append((e.event_id + "~copy", e.seq, e.event_type, "publish.transfers", key, e.leaf_bytes()))
        rows.append((e.event_id, e.seq, e.event_type, "publish.transfers", key, e.leaf_bytes()))
        rows.append((e.event_id, e.seq, e.event_type, "publish.transfers", key, e.leaf_bytes()))  # twice
    pub = Publisher(s, "op.remesas-sol", None, Outbox(tmp_path / "outbox.sqlite"), producer=producer)
    pub.publish_raw_many(rows)
    wire: list[tuple[bytes, str | None]] = []
    for rec in producer.sent:
        h = dict(rec["headers"])
        if is_bundle(rec["headers"]):
            wire += [(r, None) for r in split_publisher_bundle(rec["value"]) or []]
        else:
            wire.append((rec["value"], h["cc-event-id"].decode()))
    assert [w[0] for w in wire] == [r[5] for r in rows]  # every hand-over, in order
    singles = {w[1] for w in wire if w[1] is not None}
    assert {"hostile-1", envs[4].event_id + "~copy"} <= singles
    assert any(is_bundle(r["headers"]) for r in producer.sent)
    pub.close()
