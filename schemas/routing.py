"""Where every event goes: the one table of event families, topics and partition keys.

An event type is ``<family>.<action>`` (``transfer.paid_out``).  Its family
decides everything about its routing, written down once here (:data:`FAMILIES`)::

    family        publish topic      accepted topic      entity    subject id field
    transfer      publish.transfers  accepted.transfers  transfer  transfer_id
    project       publish.projects   accepted.projects   project   project_id
                  (registered, cancelled, funds_returned)
    milestone     publish.projects   accepted.projects   project   project_id
    disbursement  publish.projects   accepted.projects   project   project_id
    publisher     publish.registry   -                   -         publisher_id
    flag          publish.flags      -                   -         flag_id

* Publishers send to the *publish* topic; the gate reads all four
  (:data:`GATE_SOURCES`) and forwards what it accepted to the *accepted*
  topic, where a reconciler keeps the state of the *entity* (a transfer or a
  project) the event belongs to.  Registry and flag events change no entity.
* The partition key is the subject id (ASCII), so every event of one
  transfer, project, publisher or flag lands on one partition, in order, on
  the publish and on the accepted topic alike.
* :func:`murmur2` and :func:`partition_for` are Kafka's default partitioner
  (``org.apache.kafka.common.utils.Utils.murmur2``, ``toPositive(h) % n``),
  which kafka-python (the publishers) and aiokafka (Faust) also implement, so
  a record the platform places on a partition itself (a bundle of forwards,
  an acknowledgement a publisher reads from its own partition) lands where
  the clients would have put it.

Topic names here are logical; ``Settings.topic`` adds the deployment's prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from schemas.errors import MalformedInput
from schemas.types_gen import EventType

__all__ = [
    "ACCEPTED_PROJECTS_TOPIC",
    "ACCEPTED_TOPICS",
    "ACCEPTED_TRANSFERS_TOPIC",
    "ACKS_TOPIC",
    "CONTRIBUTIONS_TOPIC",
    "FAMILIES",
    "FLAGS_TOPIC",
    "GATE_SOURCES",
    "REJECTIONS_TOPIC",
    "TOPICS",
    "Family",
    "accepted_topic_for",
    "entity_of",
    "family_of",
    "murmur2",
    "partition_for",
    "partition_key",
    "topic_for",
]


@dataclass(frozen=True, slots=True)
class Family:
    """How the events of one family (``transfer``, ``project``, ...) are routed."""

    name: str
    #: Where publishers send it (``publish.transfers``).
    publish_topic: str
    #: Where the gate forwards it once accepted, for a reconciler; None if none reconciles it.
    accepted_topic: str | None
    #: The entity whose state it changes (``transfer`` / ``project``); None for none.
    entity_kind: str | None
    #: The payload field naming its subject: the partition key and the entity id.
    subject_field: str


#: Accepted transfer events, for the transfer reconciler.
ACCEPTED_TRANSFERS_TOPIC: Final = "accepted.transfers"
#: Accepted project, milestone and disbursement events, for the project reconciler.
ACCEPTED_PROJECTS_TOPIC: Final = "accepted.projects"

#: The one table (module docstring).
FAMILIES: Final[Mapping[str, Family]] = {
    f.name: f
    for f in (
        Family(
            "transfer", "publish.transfers", ACCEPTED_TRANSFERS_TOPIC, "transfer", "transfer_id"
        ),
        Family("project", "publish.projects", ACCEPTED_PROJECTS_TOPIC, "project", "project_id"),
        Family("milestone", "publish.projects", ACCEPTED_PROJECTS_TOPIC, "project", "project_id"),
        Family(
            "disbursement", "publish.projects", ACCEPTED_PROJECTS_TOPIC, "project", "project_id"
        ),
        Family("publisher", "publish.registry", None, None, "publisher_id"),
        Family("flag", "publish.flags", None, None, "flag_id"),
    )
}

#: The topics the gate reads: every publish topic, in table order.
GATE_SOURCES: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(f.publish_topic for f in FAMILIES.values())
)
#: The topics the reconcilers read accepted events from.
ACCEPTED_TOPICS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(f.accepted_topic for f in FAMILIES.values() if f.accepted_topic)
)
#: Club contributions re-keyed by project id (the transfer reconciler's repartition).
CONTRIBUTIONS_TOPIC: Final = "contributions.by_project"
#: The gate's acknowledgements, keyed by publisher id (each publisher reads its partition).
ACKS_TOPIC: Final = "acks"
#: Rejected input with its reason code.
REJECTIONS_TOPIC: Final = "rejections"
#: Flag changes (signed ``flag.changed`` events), keyed by flag id.
FLAGS_TOPIC: Final = "flags"

#: Every topic the platform uses (logical name -> its role), for creating and checking them.
TOPICS: Final[Mapping[str, str]] = {
    "publish.transfers": "signed transfer events from operators, keyed by transfer id",
    "publish.projects": "signed project, milestone and disbursement events, keyed by project id",
    "publish.registry": "signed publisher registrations, rotations and revocations",
    "publish.flags": "signed flag changes from reviewers (through the platform)",
    ACCEPTED_TRANSFERS_TOPIC: "events accepted into the log, for the transfer reconciler",
    ACCEPTED_PROJECTS_TOPIC: "events accepted into the log, for the project reconciler",
    CONTRIBUTIONS_TOPIC: "club contributions re-keyed by project id (repartition)",
    ACKS_TOPIC: "acknowledgements to publishers: accepted, duplicate or rejected, keyed by publisher",
    REJECTIONS_TOPIC: "rejected input with its reason code",
    FLAGS_TOPIC: "flag changes, keyed by flag id",
}

# The event types the generated payload types know (the schemas' own list; a
# test checks they equal ``schemas.catalog.EVENT_TYPES``).
_EVENT_TYPES: Final = frozenset(get_args(EventType))


def family_of(event_type: str) -> Family:
    """The family of a known event type; ``MalformedInput(reason="unknown_type")`` otherwise."""
    if event_type not in _EVENT_TYPES:
        raise MalformedInput(
            f"unknown event type {_show(event_type)}; known: {', '.join(sorted(_EVENT_TYPES))}",
            reason="unknown_type",
            field="/header/type",
        )
    return FAMILIES[event_type.split(".", 1)[0]]


def topic_for(event_type: str) -> str:
    """``publish.transfers`` | ``publish.projects`` | ``publish.registry`` | ``publish.flags``."""
    return family_of(event_type).publish_topic


def accepted_topic_for(event_type: str) -> str | None:
    """``accepted.transfers`` | ``accepted.projects``, or None when no reconciler takes it."""
    return family_of(event_type).accepted_topic


def _subject(event_type: str, payload: Mapping[str, Any]) -> tuple[Family, str]:
    family = family_of(event_type)
    field = family.subject_field
    value = payload.get(field)
    if not isinstance(value, str) or not value.isascii() or not value:
        raise MalformedInput(
            f"payload/{field}: missing or not an id", reason="schema", field=f"/payload/{field}"
        )
    return family, value


def partition_key(event_type: str, payload: Mapping[str, Any]) -> bytes:
    """The Kafka partition key: the id of the subject the event is about, ASCII."""
    return _subject(event_type, payload)[1].encode("ascii")


def entity_of(event_type: str, payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(entity kind, entity id)`` whose state the event changes, or None (registry, flags)."""
    family, subject = _subject(event_type, payload)
    return None if family.entity_kind is None else (family.entity_kind, subject)


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as an unsigned 32-bit integer (seed ``0x9747b28c``).

    A port of ``org.apache.kafka.common.utils.Utils.murmur2`` (MurmurHash2 by
    Austin Appleby): little-endian 4-byte blocks, then the 1-3 tail bytes, then
    the final mix.  Returns the same value as kafka-python's
    ``kafka.partitioner.default.murmur2``.
    """
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``.

    ``toPositive(murmur2(key)) % partitions``, as the Java client, kafka-python and
    aiokafka compute it for a record with a key.
    """
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _show(value: object) -> str:
    r = repr(value)
    return r if len(r) <= 64 else r[:60] + "..."
