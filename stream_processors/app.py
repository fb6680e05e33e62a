"""The Faust application: ingestion gate, reconcilers, checkpointer and re-drive.

Thin adapter: each agent takes a batch of Kafka events, hands it to plain
functions that run in one PostgreSQL transaction together with the
consumer's progress, and only then produces acknowledgements and forwards.
Faust acks a batch after the loop body returns, so the body never raises:
database trouble is retried inside :class:`PgWorker` until it commits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import faust

from infra.db import connect
from infra.identities import PlatformKeys
from infra.kafka import faust_broker_options, topic_ids
from infra.settings import Settings
from schemas.routing import (
    ACCEPTED_TOPICS,
    ACKS_TOPIC,
    CONTRIBUTIONS_TOPIC,
    FAMILIES,
    FLAGS_TOPIC,
    GATE_SOURCES,
    REJECTIONS_TOPIC,
    accepted_topic_for,
    partition_key,
)
from stream_processors import gate as gate_mod
from stream_processors.checkpointer import make_checkpoint
from stream_processors.forwarding import BUNDLE_HEADER, Forward, encode_bundle, group_by_partition
from stream_processors.pg import PgWorker, record_progress

__all__ = ["create_app", "EXIT_NEW_INCARNATION"]

#: Exit status of a worker that left because the broker's topics were recreated.
EXIT_NEW_INCARNATION = 75

log = logging.getLogger(__name__)

#: A record to produce: topic, key, value, headers and, optionally, the partition.
Msg = tuple[Any, ...]

def _offsets(events: list[Any]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for e in events:
        m = e.message
        key = (m.topic, m.partition)
        out[key] = max(out.get(key, 0), m.offset + 1)
    return out


def _header(msg: Any, name: str) -> str | None:
    for k, v in msg.headers or ():
        if k == name:
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return None


_VERIFY_POOL: Any = None
_KEY_OBJECTS: dict[bytes, Any] = {}


def verify_all(jobs: list[tuple[Any, bytes]]) -> list[bool]:
    """Verify Ed25519 signatures on a small thread pool (cryptography releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    global _VERIFY_POOL
    if _VERIFY_POOL is None:
        _VERIFY_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify")

    def one(job: tuple[Any, bytes]) -> bool:
        env, pub = job
        key = _KEY_OBJECTS.get(pub)
        if key is None:
            key = _KEY_OBJECTS[pub] = Ed25519PublicKey.from_public_bytes(pub)
        try:
            key.verify(env.signature, env.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    return list(_VERIFY_POOL.map(one, jobs, chunksize=64))


def create_app(settings: Settings, db_url: str, *, components: tuple[str, ...] = ("gate", "checkpointer", "redrive", "reconcilers")) -> faust.App:
    keys = PlatformKeys.load(settings)
    app = faust.App(
        f"{settings.kafka_topic_prefix}processors",
        **faust_broker_options(settings),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        datadir=str(settings.data_path / "faust"),
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
    )
    t = settings.topic
    tids: dict[str, str] = {}

    def refresh_topic_ids() -> None:
        try:
            tids.update(topic_ids(settings, [t(n) for n in (*GATE_SOURCES, *ACCEPTED_TOPICS, CONTRIBUTIONS_TOPIC)]))
        except Exception as e:
            log.warning("could not read topic ids: %s", e)

    # One produce in flight per lane (the gate, each reconciler, each timer):
    # a lane's next send first waits for its previous one, so delivery of
    # batch N overlaps the database work of batch N+1 without piling up.
    inflight: dict[str, asyncio.Future[Any]] = {}

    async def send_all(messages: Sequence[Msg], lane: str = "default") -> None:
        """Produce what follows a commit; losing it is safe, so a broker outage never crashes us.

        Everything sent here is re-derived if lost (ADR 0002): acknowledgements
        (the publisher republishes and gets a duplicate ack), forwards (the
        re-drive timer), contributions (the dirty-projects sweep) and flag
        notifications (the flags themselves are in PostgreSQL and the log).
        So the caller does not wait for the broker's acknowledgement of these
        records (ADR 0005): it goes on with its next batch while they are
        delivered, and only the lane's next send waits for them.
        """
        prev = inflight.pop(lane, None)
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
                futs.append(await app.producer.send(topic, key, value, partition=partition, timestamp=None,
                                                    headers=headers))
        except Exception as e:
            log.warning("could not produce %d message(s) after commit (%s: %s); they will be re-derived",
                        len(messages), type(e).__name__, e)
            return
        inflight[lane] = asyncio.ensure_future(_delivered(lane, futs))

    async def _delivered(lane: str, futs: list[Any]) -> None:
        results = await asyncio.gather(*futs, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("%d of %d record(s) produced on %s were not delivered (%s: %s); they will be re-derived",
                        len(failed), len(results), lane, type(failed[0]).__name__, failed[0])

    def partitions_of(topic: str) -> int:
        """Partitions of ``topic`` as the producer's metadata knows them (else the setting)."""
        try:
            producer: Any = app.producer
            parts = producer._producer.client.cluster.partitions_for_topic(topic)
            if parts:
                return len(parts)
        except Exception:
            pass
        return settings.kafka_partitions

    def bundled_forwards(forwards: dict[str, list[Forward]]) -> list[Msg]:
        out: list[Msg] = []
        for topic, fs in forwards.items():
            n = partitions_of(topic)
            for part, bundles in sorted(group_by_partition(fs, n, settings.batch_size).items()):
                for b in bundles:
                    out.append((topic, b[0][1], encode_bundle(b), [(BUNDLE_HEADER, b"1")], part))
        return out

    # -- a broker that lost its topics (the embedded broker after a restart, or
    # a cluster rebuilt from scratch) leaves aiokafka's consumer wedged: it
    # never fetches again.  Each worker watches the topics' incarnation (the
    # topic id in Metadata) and, when it changes, exits so its supervisor
    # starts it afresh; uncommitted work is simply redone (ADR 0002).
    watched = t(FAMILIES["transfer"].publish_topic)
    seen_ids: dict[str, str] = {}

    def incarnation_changed() -> bool:
        try:
            now_id = topic_ids(settings, [watched]).get(watched, "")
        except Exception:
            return False
        if not now_id:
            return False
        first = seen_ids.setdefault(watched, now_id)
        return first != now_id

    @app.timer(5.0)
    async def incarnation_watch() -> None:
        if await asyncio.get_running_loop().run_in_executor(None, incarnation_changed):
            log.error("the broker's topics are a new incarnation (broker restarted or rebuilt); "
                      "exiting so the supervisor restarts this worker with fresh consumers")
            logging.shutdown()
            os._exit(EXIT_NEW_INCARNATION)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _on_assigned(app_: faust.App, assigned: Any, **kw: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(None, refresh_topic_ids)

    # --- the ingestion gate ------------------------------------------------------
    if "gate" in components:
        gate_pg = PgWorker(db_url, settings.database_schema, "gate")
        group = f"{settings.kafka_topic_prefix}gate"
        core_box: dict[str, gate_mod.GateCore] = {}

        def reload_registry() -> Any:
            conn = connect(db_url, settings.database_schema, retries=10)
            try:
                with conn.cursor() as cur:
                    return gate_mod.load_registry(cur, keys.authority.verifier)
            finally:
                conn.close()

        def core() -> gate_mod.GateCore:
            if "c" not in core_box:
                core_box["c"] = gate_mod.GateCore(
                    registry=reload_registry(),
                    max_event_bytes=settings.max_event_bytes,
                    max_future_skew=timedelta(seconds=settings.max_future_skew_s),
                    max_age=timedelta(days=settings.max_event_age_days),
                )
            return core_box["c"]

        gate_topic = app.topic(*[t(n) for n in GATE_SOURCES], value_type=bytes, key_type=bytes)

        @app.agent(gate_topic, name="gate")
        async def gate(stream: Any) -> None:
            async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
                items = [gate_mod.Incoming(e.message.value or b"", f"{e.message.topic}/{e.message.partition}/{e.message.offset}") for e in events]
                offs = _offsets(events)

                from stream_processors import clock
                from stream_processors.reconcilers import backlog_state

                cu = backlog_state(app, events)

                # Parse and verify signatures before the transaction, on both
                # cores (the Ed25519 code releases the GIL); authorize() then
                # uses the results instead of verifying again.
                c0 = core()
                parsed = [c0.parse(it) for it in items]
                jobs = c0.registry.signature_jobs(d.envelope for d in parsed if d.envelope is not None)
                if jobs:
                    oks = await asyncio.get_running_loop().run_in_executor(None, verify_all, jobs)
                    for (env, pk), ok in zip(jobs, oks, strict=True):
                        c0.registry.remember_signature(env, pk, ok)

                def work(cur: Any) -> gate_mod.GateOutcome:
                    c = core()
                    try:
                        out = gate_mod.process_batch(cur, c, items, reload_registry=reload_registry,
                                                     parsed=[gate_mod.Decision(d.outcome, d.raw, d.source, d.envelope,
                                                                               d.reason, d.message, d.event_id,
                                                                               d.publisher_id, d.event_type)
                                                             for d in parsed])
                    finally:
                        c.registry.forget_signatures()
                    marks: dict[tuple[str, int], Any] = {}
                    for ev, d in zip(events, out.decisions, strict=True):
                        if d.outcome == "accepted" and d.envelope is not None and accepted_topic_for(d.envelope.event_type):
                            k = (ev.message.topic, ev.message.partition)
                            t_ev = d.envelope.time()
                            if k not in marks or t_ev > marks[k]:
                                marks[k] = t_ev
                    clock.advance(cur, group, marks, cu)
                    from stream_processors.integrity import raise_gate_flags

                    raise_gate_flags(cur, out.integrity, keys)
                    record_progress(cur, group, offs, tids)
                    return out

                try:
                    outcome = await gate_pg.run(work)
                except Exception:
                    # Not a database outage (those retry inside run): a bug.
                    # Drop the cached registry and let the worker crash loudly
                    # rather than ack a batch whose effects were not written.
                    core_box.clear()
                    log.exception("gate batch failed")
                    raise
                acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
                msgs: list[Msg] = []
                forwards: dict[str, list[Forward]] = defaultdict(list)
                for ev, d in zip(events, outcome.decisions, strict=True):
                    pub = d.publisher_id or _header(ev.message, "cc-publisher")
                    # The outbox knows a hand-over by the id in its header (for
                    # raw or hostile bytes it may differ from the parsed one).
                    eid = _header(ev.message, "cc-event-id") or d.event_id
                    if pub:
                        acks[pub].append({"event_id": eid, "status": d.outcome, "log_index": d.log_index,
                                          "reason": d.reason or None, "message": d.message or None})
                    if d.outcome == "accepted" and d.envelope is not None:
                        ft = accepted_topic_for(d.envelope.event_type)
                        if ft and d.log_index is not None:
                            forwards[t(ft)].append((d.log_index, partition_key(d.envelope.event_type, d.envelope.payload),
                                                    d.envelope.leaf_bytes()))
                    elif d.outcome == "rejected":
                        msgs.append((t(REJECTIONS_TOPIC), (pub or "").encode(), json.dumps(
                            {"publisher_id": pub, "event_id": eid, "reason": d.reason, "message": d.message,
                             "source": d.source}).encode(), None))
                for pub, results in acks.items():
                    msgs.append((t(ACKS_TOPIC), pub.encode(), json.dumps({"publisher_id": pub, "results": results}).encode(), None))
                await send_all(bundled_forwards(forwards) + msgs, lane="gate")

    # --- checkpoints ---------------------------------------------------------------
    if "checkpointer" in components:
        cp_pg = PgWorker(db_url, settings.database_schema, "checkpointer")

        @app.timer(settings.checkpoint_interval_s, on_leader=True)
        async def checkpointer() -> None:
            await cp_pg.run(lambda cur: make_checkpoint(cur, keys.log))

    # --- re-drive of accepted events the reconcilers have not confirmed ---------------
    if "redrive" in components:
        rd_pg = PgWorker(db_url, settings.database_schema, "redrive")

        def lingering(cur: Any) -> list[tuple[str, int, bytes]]:
            cur.execute(
                "WITH due AS (SELECT event_id FROM pending_reconcile"
                " WHERE accepted_at < now() - make_interval(secs => %s) ORDER BY accepted_at LIMIT 5000 FOR UPDATE SKIP LOCKED)"
                " UPDATE pending_reconcile p SET accepted_at = now() FROM due, log_entries l"
                " WHERE p.event_id = due.event_id AND l.event_id = p.event_id"
                " RETURNING l.event_type, l.idx, l.leaf",
                (settings.redrive_after_s,),
            )
            return [(et, int(i), bytes(leaf)) for et, i, leaf in cur.fetchall()]

        @app.timer(max(1.0, settings.redrive_after_s / 3), on_leader=True)
        async def redrive() -> None:
            rows = await rd_pg.run(lingering)
            if not rows:
                return
            log.info("re-driving %d accepted events not yet reconciled", len(rows))
            msgs: list[Msg] = []
            for event_type, idx, leaf in rows:
                ft = accepted_topic_for(event_type)
                if ft:
                    payload = json.loads(leaf)["payload"]
                    msgs.append((t(ft), partition_key(event_type, payload), leaf, [("log-index", str(idx).encode())]))
            await send_all(msgs, lane="redrive")

    if "gate" in components:
        gap_pg = PgWorker(db_url, settings.database_schema, "sequence-gaps")

        @app.timer(max(1.0, settings.redrive_after_s / 3), on_leader=True)
        async def sequence_gaps() -> None:
            from stream_processors.sequence_gaps import check_gaps

            envs = await gap_pg.run(lambda cur: check_gaps(cur, keys, settings.redrive_after_s))
            if envs:
                await send_all([(t(FLAGS_TOPIC), partition_key(e.event_type, e.payload), e.leaf_bytes(), None) for e in envs],
                               lane="gaps")

    if "reconcilers" in components:
        from stream_processors.reconcilers import install as install_reconcilers

        install_reconcilers(app, settings, db_url, keys, send_all, tids)

    return app
