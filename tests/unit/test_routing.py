"""schemas.routing: the one table of event families, and Kafka's default partitioner."""

from __future__ import annotations

from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import catalog, routing
from schemas.errors import MalformedInput
from schemas.types_gen import EventType

# The test vectors of Kafka's own UtilsTest.testMurmur2 (signed Java ints).
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "java"), JAVA_VECTORS)
def test_murmur2_matches_the_java_client(data: bytes, java: int) -> None:
    assert routing.murmur2(data) == java & 0xFFFFFFFF


@given(st.binary(max_size=300))
def test_murmur2_equals_kafka_pythons(data: bytes) -> None:
    from kafka.partitioner.default import murmur2

    assert routing.murmur2(data) == murmur2(data)


@given(st.binary(min_size=1, max_size=80), st.integers(1, 64))
def test_partition_for_equals_both_clients_default_partitioners(key: bytes, n: int) -> None:
    # kafka-python places the publishers' records, aiokafka (Faust) the
    # processors'; a record the platform places itself must land with them.
    from aiokafka.partitioner import DefaultPartitioner as AioPartitioner
    from kafka.partitioner.default import DefaultPartitioner as KafkaPartitioner

    parts = list(range(n))
    got = routing.partition_for(key, n)
    assert got == KafkaPartitioner().partition("t", key, key, b"", b"", _Cluster(n))
    assert got == AioPartitioner()(key, parts, parts)


class _Cluster:
    """The three questions kafka-python's partitioner asks of the cluster metadata."""

    def __init__(self, n: int) -> None:
        self.n = n

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def test_partition_for_needs_a_partition() -> None:
    with pytest.raises(ValueError):
        routing.partition_for(b"k", 0)


def test_the_table_covers_every_event_type() -> None:
    assert sorted(get_args(EventType)) == list(catalog.EVENT_TYPES)
    for event_type in catalog.EVENT_TYPES:
        family = routing.family_of(event_type)
        assert event_type.startswith(family.name + ".")
        assert routing.topic_for(event_type) == family.publish_topic
        assert routing.accepted_topic_for(event_type) == family.accepted_topic
        assert (family.accepted_topic is None) == (family.entity_kind is None)


def test_topic_lists() -> None:
    assert routing.GATE_SOURCES == (
        "publish.transfers",
        "publish.projects",
        "publish.registry",
        "publish.flags",
    )
    assert routing.ACCEPTED_TOPICS == ("accepted.transfers", "accepted.projects")
    named = {
        *routing.GATE_SOURCES,
        *routing.ACCEPTED_TOPICS,
        routing.CONTRIBUTIONS_TOPIC,
        routing.ACKS_TOPIC,
        routing.REJECTIONS_TOPIC,
        routing.FLAGS_TOPIC,
    }
    assert set(routing.TOPICS) == named


@pytest.mark.parametrize(
    ("event_type", "payload", "entity", "key"),
    [
        ("transfer.paid_out", {"transfer_id": "tr-1"}, ("transfer", "tr-1"), b"tr-1"),
        ("project.registered", {"project_id": "mx-1"}, ("project", "mx-1"), b"mx-1"),
        ("milestone.verified", {"project_id": "mx-1"}, ("project", "mx-1"), b"mx-1"),
        ("disbursement.made", {"project_id": "mx-1"}, ("project", "mx-1"), b"mx-1"),
        # issue 15.6: a cancellation and its returns travel with their project
        ("project.cancelled", {"project_id": "mx-1"}, ("project", "mx-1"), b"mx-1"),
        ("project.funds_returned", {"project_id": "mx-1"}, ("project", "mx-1"), b"mx-1"),
        ("publisher.revoked", {"publisher_id": "op.x"}, None, b"op.x"),
        ("flag.changed", {"flag_id": "flg_1"}, None, b"flg_1"),
    ],
)
def test_entity_and_partition_key(
    event_type: str, payload: dict[str, str], entity: tuple[str, str] | None, key: bytes
) -> None:
    assert routing.entity_of(event_type, payload) == entity
    assert routing.partition_key(event_type, payload) == key


def test_refusals() -> None:
    for f in (routing.topic_for, routing.accepted_topic_for):
        with pytest.raises(MalformedInput) as e:
            f("transfer.stolen")
        assert e.value.reason == "unknown_type" and e.value.field == "/header/type"
    for payload in ({}, {"transfer_id": ""}, {"transfer_id": "tr-ü"}, {"transfer_id": 7}):
        with pytest.raises(MalformedInput) as e:
            routing.entity_of("transfer.sent", payload)
        assert e.value.reason == "schema" and e.value.field == "/payload/transfer_id"
