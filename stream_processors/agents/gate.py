"""The ingestion gate's Faust agent: batches from the four publish topics, one transaction each.

Per batch: parse and verify signatures before the transaction (the Ed25519
code releases the GIL, so on two threads); then, in one transaction, take the
log writer's lock and fix the batch's arrival (:func:`store.arrive`), reload
the registry if another worker logged a registry event since it was loaded or
the batch names a publisher or key it does not know, read what the log knows
of the batch, decide (:func:`decide_batch`, pure), write the effects
(:func:`stream_processors.gate.store.record`), advance the event-time clock,
raise integrity flags (and ``published_late``) and record the consumer's
progress.
Only after the commit are the acknowledgements, rejections and forwards
(bundles, ADR 0005) produced.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from schemas.bundles import is_bundle, split_publisher_bundle
from schemas.catalog import REGISTRY_EVENT_TYPES
from schemas.registry import TrustRegistry
from schemas.routing import (
    ACKS_TOPIC,
    GATE_SOURCES,
    REJECTIONS_TOPIC,
    accepted_topic_for,
    partition_key,
)
from stream_processors import clock
from stream_processors.agents.reconciling import chunks
from stream_processors.context import Context, Msg, backlog_state, header, offsets
from stream_processors.forwarding import BUNDLE_HEADER, Forward, encode_bundle, group_by_partition
from stream_processors.gate import store
from stream_processors.gate.decision import (
    BatchDecision,
    GateLimits,
    Incoming,
    decide_batch,
    needs_registry_reload,
    parse_item,
)
from stream_processors.gate.knowledge import KnowledgeQuery
from stream_processors.gate.signatures import verify_ahead
from stream_processors.integrity import raise_gate_flags
from stream_processors.pg import record_progress

__all__ = ["install", "replies", "Item", "items_of"]

log = logging.getLogger(__name__)


def install(app: Any, ctx: Context) -> None:
    settings, keys = ctx.settings, ctx.keys
    pg = ctx.pg("gate")
    group = ctx.group("gate")
    limits = GateLimits(settings.max_event_bytes, timedelta(seconds=settings.max_future_skew_s),
                        timedelta(days=settings.max_event_age_days),
                        timedelta(days=settings.late_publication_days))
    # The registry as of the last committed batch, with the log index of the
    # last registry event it holds; empty until loaded, and dropped when a
    # batch fails, so the next one starts from the log.
    cached: list[tuple[TrustRegistry, int]] = []

    def load(cur: Any) -> tuple[TrustRegistry, int]:
        return store.load_registry(cur, keys.authority.verifier), store.registry_version(cur)

    async def registry() -> tuple[TrustRegistry, int]:
        if not cached:
            cached.append(await pg.run(load))
        return cached[0]

    gate_topic = app.topic(*[ctx.topic(n) for n in GATE_SOURCES], value_type=bytes, key_type=bytes)

    @app.agent(gate_topic, name="gate")
    async def gate(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            # A publisher's bundle (issue 16) carries many events in one record:
            # transactions of at most BATCH_SIZE events, each covering whole
            # records, so recorded progress never points inside a bundle.
            for chunk in chunks([(e, items_of(e)) for e in events], settings.batch_size):
                await decide_chunk(chunk)

    async def decide_chunk(chunk: list[tuple[Any, list[Item]]]) -> None:
        events = [e for e, _ in chunk]
        items = [it for _, its in chunk for it in its]
        offs = offsets(events)
        cu = backlog_state(app, events)
        parsed = [parse_item(it.incoming, limits.max_event_bytes) for it in items]
        envs = [p.envelope for p in parsed if p.envelope is not None]
        reg0, version0 = await registry()
        signatures = (await asyncio.get_running_loop().run_in_executor(None, verify_ahead, reg0, envs)
                      if envs else {})

        def work(cur: Any) -> tuple[BatchDecision, int]:
            now = store.arrive(cur)
            # Another worker may have accepted a registration, rotation or
            # revocation: every event arriving after it must be judged by it.
            version = store.registry_version(cur)
            reg = reg0
            if version != version0 or needs_registry_reload(envs, reg0):
                reg, version = load(cur)
            known = store.read_knowledge(cur, KnowledgeQuery.for_envelopes(envs))
            batch = store.record(cur, decide_batch(parsed, known, reg, now, limits, signatures))
            marks: dict[tuple[str, int], datetime] = {}
            for it, d in zip(items, batch.decisions, strict=True):
                if d.outcome == "accepted" and d.envelope is not None and accepted_topic_for(d.envelope.event_type):
                    k = it.tp
                    t_ev = d.envelope.time()
                    if k not in marks or t_ev > marks[k]:
                        marks[k] = t_ev
            clock.advance(cur, group, marks, cu)
            raise_gate_flags(cur, batch.integrity(), keys, late=batch.late(), arrived_at=now)
            record_progress(cur, group, offs, ctx.topic_ids)
            # The batch's own registry events are in the log now: the
            # registry after the batch knows them.
            logged = [d.log_index for d in batch.accepted()
                      if d.log_index is not None and d.event_type in REGISTRY_EVENT_TYPES]
            return batch, max([version, *logged])

        try:
            outcome, version = await pg.run(work)
        except Exception:
            # Not a database outage (those retry inside run): a bug.
            # Drop the cached registry and let the worker crash loudly
            # rather than ack a batch whose effects were not written.
            cached.clear()
            log.exception("gate batch failed")
            raise
        cached[:] = [(outcome.registry, version)]
        await ctx.send_all(replies(ctx, items, outcome), lane="gate")


@dataclass(frozen=True, slots=True)
class Item:
    """One event as the gate takes it: alone in its record, or one of a publisher's bundle."""

    incoming: Incoming
    tp: tuple[str, int]  # the record's topic and partition
    publisher: str | None  # the record's cc-publisher header
    event_id: str | None  # the record's cc-event-id header (a single record's), else None


def items_of(e: Any) -> list[Item]:
    """The events a publish record carries: one, or each event of a bundle (``schemas.bundles``).

    A record marked as a bundle that is not a well-formed one is judged as a
    single item, and so refused as a whole (it is not an envelope); its
    publisher's outbox resends the events one by one.
    """
    m = e.message
    value = m.value or b""
    tp = (m.topic, m.partition)
    source = f"{m.topic}/{m.partition}/{m.offset}"
    pub = header(m, "cc-publisher")
    if is_bundle(m.headers):
        raws = split_publisher_bundle(value)
        if raws is not None:
            return [Item(Incoming(raw, f"{source}#{i}"), tp, pub, None) for i, raw in enumerate(raws)]
    return [Item(Incoming(value, source), tp, pub, header(m, "cc-event-id"))]


def replies(ctx: Context, items: list[Item], outcome: BatchDecision) -> list[Msg]:
    """What follows a committed batch: forwards (bundled), rejections and acknowledgements,
    one acknowledgement per event, bundled or not."""
    t = ctx.topic
    acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    msgs: list[Msg] = []
    forwards: dict[str, list[Forward]] = defaultdict(list)
    for it, d in zip(items, outcome.decisions, strict=True):
        pub = d.publisher_id or it.publisher
        # The outbox knows a hand-over by the id in its header (for
        # raw or hostile bytes it may differ from the parsed one); a
        # bundle's events by their own ids (the SDK bundles only what it signed).
        eid = it.event_id or d.event_id
        if pub:
            acks[pub].append({"event_id": eid, "status": d.outcome, "log_index": d.log_index,
                              "reason": d.reason or None, "message": d.message or None})
        if d.outcome == "accepted" and d.envelope is not None:
            ft = accepted_topic_for(d.envelope.event_type)
            if ft and d.log_index is not None:
                forwards[t(ft)].append((d.log_index, partition_key(d.envelope.event_type, d.envelope.payload),
                                        d.envelope.leaf_bytes()))
        elif d.outcome == "rejected":
            msgs.append((t(REJECTIONS_TOPIC), (pub or "").encode(), _dumps(
                {"publisher_id": pub, "event_id": eid, "reason": d.reason, "message": d.message,
                 "source": d.source}), None))
    for pub, results in acks.items():
        msgs.append((t(ACKS_TOPIC), pub.encode(), _dumps({"publisher_id": pub, "results": results}), None))
    return _bundled(ctx, forwards) + msgs


def _dumps(obj: Any) -> bytes:
    """JSON of an acknowledgement or rejection: orjson, or the standard library for what orjson
    refuses (a lone surrogate that reached a message would otherwise stop the gate)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj).encode()


def _bundled(ctx: Context, forwards: dict[str, list[Forward]]) -> list[Msg]:
    out: list[Msg] = []
    for topic, fs in forwards.items():
        n = ctx.partitions_of(topic)
        for part, bundles in sorted(group_by_partition(fs, n, ctx.settings.batch_size).items()):
            for b in bundles:
                out.append((topic, b[0][1], encode_bundle(b), [(BUNDLE_HEADER, b"1")], part))
    return out
