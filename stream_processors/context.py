"""What every Faust agent and timer of the processors shares.

One :class:`Context` per worker: the settings, the database URL, the
platform's keys, the topic ids (the incarnation of each topic, kept with the
consumer's progress) and the send lanes (:meth:`Context.send_all`).  Each
agent module (:mod:`stream_processors.agents`) takes it in its
``install(app, ctx)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.identities import PlatformKeys
from infra.kafka import topic_ids
from infra.settings import Settings
from schemas.routing import ACCEPTED_TOPICS, CONTRIBUTIONS_TOPIC, GATE_SOURCES
from stream_processors.pg import PgWorker

__all__ = ["Msg", "Context", "offsets", "header", "backlog_state"]

log = logging.getLogger(__name__)

#: A record to produce: topic, key, value, headers and, optionally, the partition.
Msg = tuple[Any, ...]


@dataclass
class Context:
    app: Any  # the faust.App
    settings: Settings
    db_url: str
    keys: PlatformKeys
    topic_ids: dict[str, str] = field(default_factory=dict)
    # One produce in flight per lane (the gate, each reconciler, each timer).
    _inflight: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    def topic(self, name: str) -> str:
        """The full name of one of the platform's topics (with the configured prefix)."""
        return self.settings.topic(name)

    def group(self, name: str) -> str:
        """The consumer group id of one processor, under which its progress is kept."""
        return f"{self.settings.kafka_topic_prefix}{name}"

    def pg(self, name: str) -> PgWorker:
        """A database worker (one thread, one connection) for one agent or timer."""
        return PgWorker(self.db_url, self.settings.database_schema, name)

    def refresh_topic_ids(self) -> None:
        t = self.topic
        try:
            self.topic_ids.update(topic_ids(self.settings, [t(n) for n in (*GATE_SOURCES, *ACCEPTED_TOPICS,
                                                                            CONTRIBUTIONS_TOPIC)]))
        except Exception as e:
            log.warning("could not read topic ids: %s", e)

    async def on_partitions_assigned(self, app_: Any, assigned: Any, **kw: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.refresh_topic_ids)

    async def send_all(self, messages: Sequence[Msg], lane: str = "default") -> None:
        """Produce what follows a commit; losing it is safe, so a broker outage never crashes us.

        Everything sent here is re-derived if lost (ADR 0002): acknowledgements
        (the publisher republishes and gets a duplicate ack), forwards (the
        re-drive timer), contributions (the dirty-projects sweep) and flag
        notifications (the flags themselves are in PostgreSQL and the log).
        So the caller does not wait for the broker's acknowledgement of these
        records (ADR 0005): it goes on with its next batch while they are
        delivered, and only the lane's next send waits for them.  So delivery
        of batch N overlaps the database work of batch N+1 without piling up.
        """
        prev = self._inflight.pop(lane, None)
        if prev is not None:
            try:
                await asyncio.wait_for(asyncio.shield(prev), timeout=30)
            except Exception as e:
                log.warning("previous produce on %s not confirmed (%s: %s); it will be re-derived", lane,
                            type(e).__name__, e)
        if not messages:
            return
        try:
            futs = []
            for m in messages:
                topic, key, value, headers = m[0], m[1], m[2], m[3]
                partition = m[4] if len(m) > 4 else None
                futs.append(await self.app.producer.send(topic, key, value, partition=partition, timestamp=None,
                                                         headers=headers))
        except Exception as e:
            log.warning("could not produce %d message(s) after commit (%s: %s); they will be re-derived",
                        len(messages), type(e).__name__, e)
            return
        self._inflight[lane] = asyncio.ensure_future(_delivered(lane, futs))

    def partitions_of(self, topic: str) -> int:
        """Partitions of ``topic`` as the producer's metadata knows them (else the setting)."""
        try:
            producer: Any = self.app.producer
            parts = producer._producer.client.cluster.partitions_for_topic(topic)
            if parts:
                return len(parts)
        except Exception:
            pass
        return self.settings.kafka_partitions


async def _delivered(lane: str, futs: list[Any]) -> None:
    results = await asyncio.gather(*futs, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        log.warning("%d of %d record(s) produced on %s were not delivered (%s: %s); they will be re-derived",
                    len(failed), len(results), lane, type(failed[0]).__name__, failed[0])


def offsets(events: Sequence[Any]) -> dict[tuple[str, int], int]:
    """The next offset to read per (topic, partition) after ``events``."""
    out: dict[tuple[str, int], int] = {}
    for e in events:
        m = e.message
        key = (m.topic, m.partition)
        out[key] = max(out.get(key, 0), m.offset + 1)
    return out


def header(msg: Any, name: str) -> str | None:
    """A record header as text, or None."""
    for k, v in msg.headers or ():
        if k == name:
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return None


def backlog_state(app: Any, events: Sequence[Any]) -> dict[tuple[str, int], bool]:
    """Per partition in the batch: True when the batch reached the high watermark (no backlog).

    The high watermark comes from the Fetch responses (right on every broker,
    unlike ListOffsets on the embedded one).
    """
    last: dict[Any, int] = {}
    for e in events:
        tp = e.message.tp
        last[tp] = max(last.get(tp, -1), e.message.offset)
    out: dict[tuple[str, int], bool] = {}
    for tp, off in last.items():
        try:
            hw = app.consumer.highwater(tp)
        except Exception:
            hw = None
        out[(tp.topic, tp.partition)] = hw is not None and off + 1 >= hw
    return out
