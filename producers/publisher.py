"""The publisher SDK: validate, sign, keep in the outbox, publish, and learn the outcome.

    pub = Publisher.open(settings, "mto-remesas-norte", private_key)
    env = pub.publish("transfer.sent", payload)      # raises MalformedInput before signing
    pub.settle(timeout=60)                           # wait for acknowledgements, republishing

Routing: transfer events are keyed by transfer id, project, milestone and
disbursement events by project id (``schemas.routing.partition_key``), so
every event of one transfer or project lands on one partition, in order.
Each message carries ``cc-publisher`` and ``cc-event-id`` headers so the
gate can acknowledge even input it cannot parse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.kafka import client_config, make_producer
from infra.settings import Settings
from producers.outbox import Counts, Outbox
from schemas.bundles import BUNDLE_HEADER, encode_bundle
from schemas.envelope import Envelope, sign_event
from schemas.errors import UnavailableService
from schemas.routing import ACKS_TOPIC, partition_for, partition_key, topic_for

__all__ = ["Publisher", "outbox_path"]

log = logging.getLogger(__name__)


def _bundleable(event_id: str, raw: bytes) -> bool:
    """Whether ``raw`` is a canonical envelope handed over under its own event id (so it may
    travel in a bundle: the gate acknowledges bundled events by the id inside them)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    header = obj.get("header") if type(obj) is dict else None
    return (type(header) is dict and header.get("event_id") == event_id
            and orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) == raw)


def outbox_path(settings: Settings, publisher_id: str) -> Path:
    return settings.data_path / "outbox" / f"{publisher_id}.sqlite"


class Publisher:
    def __init__(self, settings: Settings, publisher_id: str, private_key: Ed25519PrivateKey | None,
                 outbox: Outbox, producer: Any = None) -> None:
        self.s = settings
        self.publisher_id = publisher_id
        self.key = private_key
        self.outbox = outbox
        self._producer = producer
        self._shared = producer  # a producer lent by the caller (a fleet's): its owner closes it
        self._ack_consumer: Any = None
        self._known_topics: set[str] = set()

    @classmethod
    def open(cls, settings: Settings, publisher_id: str, private_key: Ed25519PrivateKey | None,
             outbox_file: Path | None = None) -> Publisher:
        return cls(settings, publisher_id, private_key, Outbox(outbox_file or outbox_path(settings, publisher_id)))

    # -- producing ------------------------------------------------------------------
    @property
    def producer(self) -> Any:
        if self._producer is None:
            self._producer = make_producer(self.s)
        return self._producer

    def sign(self, event_type: str, payload: Mapping[str, Any], *, event_time: datetime | str | None = None,
             event_id: str | None = None, seq: int | None = None) -> Envelope:
        if self.key is None:
            raise UnavailableService(f"publisher {self.publisher_id} has no private key loaded")
        return sign_event(
            self.key, publisher_id=self.publisher_id, event_type=event_type, payload=dict(payload),
            seq=seq if seq is not None else self.outbox.next_seq(),
            event_time=event_time or datetime.now(UTC), event_id=event_id,
        )

    def publish(self, event_type: str, payload: Mapping[str, Any], *, event_time: datetime | str | None = None,
                event_id: str | None = None) -> Envelope:
        env = self.sign(event_type, payload, event_time=event_time, event_id=event_id)
        self.publish_envelope(env)
        return env

    def publish_envelope(self, env: Envelope) -> None:
        self.publish_raw(env.leaf_bytes(), event_id=env.event_id, event_type=env.event_type, seq=env.seq,
                         topic=topic_for(env.event_type), key=partition_key(env.event_type, env.payload))

    def publish_many(self, envs: list[Envelope]) -> None:
        """Hand over signed events at once: one outbox transaction, and bundles on the wire.

        Events bound for one partition (their own key's, as if sent alone)
        travel together in bundles of at most ``PUBLISH_BUNDLE_EVENTS`` events
        and ``PUBLISH_BUNDLE_BYTES`` bytes (``schemas.bundles``, issue 16): one
        Kafka record instead of one per event.  Each event stays signed on its
        own and is acknowledged on its own; a bundle of one is a plain record.
        """
        rows: list[tuple[str, int | None, str | None, str, bytes, bytes]] = [
            (e.event_id, e.seq, e.event_type, topic_for(e.event_type), partition_key(e.event_type, e.payload),
             e.leaf_bytes()) for e in envs]
        self.outbox.add_many(rows)
        self._send_rows(rows, canonical=True)
        self.outbox.mark_sent(r[0] for r in rows)

    def publish_raw_many(self, rows: list[tuple[str, int | None, str | None, str, bytes, bytes]]) -> None:
        """Hand over many ``(event_id, seq, event_type, topic, key, raw)`` at once: one outbox transaction.

        Rows whose bytes are a canonical envelope with that very event id are
        bundled like :meth:`publish_many`'s; anything else (raw or hostile
        bytes, a hand-over id of its own) goes alone, in order.
        """
        self.outbox.add_many(rows)
        self._send_rows(rows, canonical=False)
        self.outbox.mark_sent(r[0] for r in rows)

    def _send_rows(self, rows: list[tuple[str, int | None, str | None, str, bytes, bytes]], *, canonical: bool) -> None:
        if self.s.publish_bundle_events <= 1:
            for event_id, _seq, _et, topic, key, raw in rows:
                self._send(topic, key, raw, event_id)
            return
        by_topic: dict[str, list[tuple[str, bytes, bytes, bool]]] = {}
        for event_id, _seq, _et, topic, key, raw in rows:
            by_topic.setdefault(topic, []).append((event_id, key, raw, canonical or _bundleable(event_id, raw)))
        for topic, evs in by_topic.items():
            self._send_bundles(topic, evs)

    def publish_raw(self, raw: bytes, *, event_id: str, topic: str, key: bytes, event_type: str | None = None,
                    seq: int | None = None) -> None:
        """Hand over bytes as they are (also used to replay or to test hostile input)."""
        self.outbox.add(event_id, seq, event_type, topic, key, raw)
        self._send(topic, key, raw, event_id)
        self.outbox.mark_sent([event_id])

    def _send(self, logical_topic: str, key: bytes, raw: bytes, event_id: str) -> None:
        headers = [("cc-publisher", self.publisher_id.encode()), ("cc-event-id", event_id.encode())]
        try:
            full = self.s.topic(logical_topic)
            if full not in self._known_topics:
                # A just-created topic may be missing from the producer's
                # metadata, or listed with no partitions yet: wait for them
                # rather than fail the send.
                deadline = time.monotonic() + 15
                while not self.producer.partitions_for(full) and time.monotonic() < deadline:
                    self.producer._metadata.request_update()
                    time.sleep(0.2)
                self._known_topics.add(full)
            self.producer.send(self.s.topic(logical_topic), key=key, value=raw, headers=headers)
        except Exception as e:
            log.warning("send failed, kept in the outbox for later: %s", e)
            self._drop_producer()

    def _partitions(self, full_topic: str) -> int:
        if full_topic not in self._known_topics:
            deadline = time.monotonic() + 15
            while not self.producer.partitions_for(full_topic) and time.monotonic() < deadline:
                self.producer._metadata.request_update()
                time.sleep(0.2)
            self._known_topics.add(full_topic)
        return len(self.producer.partitions_for(full_topic) or ()) or self.s.kafka_partitions

    def _send_bundles(self, logical_topic: str, evs: list[tuple[str, bytes, bytes, bool]]) -> None:
        """Send ``(event_id, key, raw, bundleable)`` of one topic, bundling per destination partition.

        Order per partition is kept: a row that may not be bundled first
        sends the partition's open bundle, then itself.
        """
        try:
            full = self.s.topic(logical_topic)
            parts = self._partitions(full)
            limit, max_bytes = self.s.publish_bundle_events, self.s.publish_bundle_bytes
            open_: dict[int, list[tuple[str, bytes, bytes]]] = {}
            size: dict[int, int] = {}

            def send_open(part: int) -> None:
                b = open_.pop(part, [])
                size.pop(part, None)
                if len(b) == 1:
                    self._send(logical_topic, b[0][1], b[0][2], b[0][0])
                elif b:
                    self.producer.send(full, key=b[0][1], partition=part,
                                       value=encode_bundle([(n, key, raw) for n, (_e, key, raw) in enumerate(b)]),
                                       headers=[("cc-publisher", self.publisher_id.encode()), (BUNDLE_HEADER, b"1")])

            for event_id, key, raw, ok in evs:
                part = partition_for(key, parts)
                if not ok:
                    send_open(part)
                    self._send(logical_topic, key, raw, event_id)
                    continue
                b = open_.setdefault(part, [])
                if b and (len(b) >= limit or size.get(part, 0) + len(raw) > max_bytes):
                    send_open(part)
                    b = open_.setdefault(part, [])
                b.append((event_id, key, raw))
                size[part] = size.get(part, 0) + len(raw) + 24
            for part in sorted(open_):
                send_open(part)
        except Exception as e:
            log.warning("send failed, kept in the outbox for later: %s", e)
            self._drop_producer()

    def flush(self, timeout: float = 30) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout)
            except Exception as e:
                log.warning("flush failed, events stay in the outbox: %s", e)
                self._drop_producer()

    def _drop_producer(self) -> None:
        """Close a producer that failed (never just forget it: its sockets would leak).

        A producer lent by the caller is only let go of: the publishers of a
        fleet share one, and closing it here broke every other publisher's
        sends (seen as "KafkaProducer already closed" after a resend).
        """
        if self._producer is not None:
            if self._producer is not self._shared:
                with contextlib.suppress(Exception):
                    self._producer.close(timeout=0)
            self._producer = None
        self._known_topics.clear()

    def resend_due(self, older_than_s: float | None = None) -> int:
        rows = self.outbox.due_for_resend(self.s.outbox_resend_after_s if older_than_s is None else older_than_s)
        if rows:
            # Something was not confirmed in time: the broker may have been
            # restarted or rebuilt, leaving this producer and the ack consumer
            # bound to topics that no longer exist.  Start the cycle afresh.
            self._drop_producer()
            self._close_acks()
        for r in rows:
            self._send(r.topic, r.key, r.raw, r.event_id)
        self.outbox.mark_sent(r.event_id for r in rows)
        if rows:
            self.flush()
        return len(rows)

    # -- acknowledgements -----------------------------------------------------------------
    def _acks(self) -> Any:
        if self._ack_consumer is None:
            from kafka import KafkaConsumer, TopicPartition

            topic = self.s.topic(ACKS_TOPIC)
            c = KafkaConsumer(**client_config(self.s), enable_auto_commit=False, fetch_max_wait_ms=200,
                              auto_offset_reset="earliest")
            parts = c.partitions_for_topic(topic)
            if not parts:
                c.close()
                raise UnavailableService(f"topic {topic} does not exist: is the platform running?")
            tp = TopicPartition(topic, partition_for(self.publisher_id.encode(), len(parts)))
            c.assign([tp])
            tid = str(c._client.cluster.topic_id(topic) or "")
            stored = self.outbox.get_meta(f"ack_offset:{tid}:{tp.partition}")
            if stored is not None:
                c.seek(tp, int(stored))
            else:
                c.seek_to_beginning(tp)
            self._ack_tp, self._ack_tid = tp, tid
            self._ack_consumer = c
        return self._ack_consumer

    def poll_acks(self, timeout: float = 1.0) -> int:
        try:
            c = self._acks()
            batches = c.poll(timeout_ms=int(timeout * 1000), max_records=5000)
        except UnavailableService:
            raise
        except Exception as e:
            log.warning("reading acknowledgements failed: %s", e)
            self._close_acks()
            return 0
        settled = 0
        for records in batches.values():
            results = []
            for rec in records:
                try:
                    msg = json.loads(rec.value)
                except ValueError:
                    continue
                if msg.get("publisher_id") == self.publisher_id:
                    results.extend(msg.get("results", []))
            settled += self.outbox.apply_acks(results)
            if records:
                self.outbox.set_meta(f"ack_offset:{self._ack_tid}:{self._ack_tp.partition}", str(records[-1].offset + 1))
        return settled

    def _close_acks(self) -> None:
        if self._ack_consumer is not None:
            with contextlib.suppress(Exception):
                self._ack_consumer.close()
            self._ack_consumer = None

    def settle(self, timeout: float = 120.0, progress: Callable[[Counts], None] | None = None) -> Counts:
        """Wait until nothing is pending (or ``timeout``), republishing what lingers."""
        self.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_acks(timeout=0.5)
            counts = self.outbox.counts()
            if progress:
                progress(counts)
            if counts.pending == 0:
                return counts
            self.resend_due()
        return self.outbox.counts()

    def close(self) -> None:
        self._close_acks()
        if self._producer is not None and self._producer is not self._shared:
            with contextlib.suppress(Exception):
                self._producer.close(timeout=5)
        self.outbox.close()
