"""A whole platform under test control: its own broker and PostgreSQL, so faults can hit them.

Used by the fault tests: start, kill -9 and restart the processors; restart
or pause the embedded broker (which loses every topic: it keeps them in
memory); restart PostgreSQL; publish a simulation through the real SDK with
its outboxes; wait until the platform is quiescent; and take a snapshot of the
final state (log contents, reconciled tables, flags) to compare runs.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.db import connect, migrate
from infra.embedded import EmbeddedKafka, EmbeddedPostgres
from infra.identities import AUTHORITY_NAME, PlatformKeys, key_path
from infra.kafka import ensure_topics
from infra.keystore import write_private_key
from infra.procs import free_port, spawn
from infra.settings import Settings, load_settings, processor_layout
from producers.publisher import Publisher
from producers.registry import bootstrap_platform
from schemas.errors import CuentasError
from stream_processors import clock

ROOT = Path(__file__).resolve().parents[2]


def fixed_key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"fault-tests|{name}".encode()).digest())


@dataclass
class Stack:
    root: Path
    kafka: EmbeddedKafka = field(init=False)
    pg: EmbeddedPostgres = field(init=False)
    settings: Settings = field(init=False)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    publishers: dict[str, Publisher] = field(default_factory=dict)
    restarts: int = 0
    layout: list[str | None] = field(default_factory=list)  # CUENTAS_COMPONENTS of each process to run
    roles: list[str | None] = field(default_factory=list)  # of each process started, as ``procs``
    target_workers: int = 1

    def start(self, *, workers: int = 1) -> Stack:
        self.kafka = EmbeddedKafka(self.root, free_port()).start()
        self.pg = EmbeddedPostgres(self.root, free_port()).start()
        self.settings = load_settings({
            "CUENTAS_DATA_DIR": str(self.root / "data"),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "DATABASE_URL": self.pg.url,
            "KAFKA_SESSION_TIMEOUT_S": "6", "KAFKA_REBALANCE_TIMEOUT_S": "6", "KAFKA_HEARTBEAT_S": "1",
            "BATCH_WINDOW_S": "0.05", "REDRIVE_AFTER_S": "8", "OUTBOX_RESEND_AFTER_S": "8", "CLOCK_IDLE_S": "5",
        })
        # The same authority, log and platform keys in every run, so two runs of
        # one seed produce byte-identical registry events and can be compared.
        for name, role in (("authority", "registry"), ("log", "log"), ("platform", "platform")):
            path = key_path(self.settings, role)
            if not path.exists():
                write_private_key(path, fixed_key(name))
        migrate(self.pg.url, self.settings.database_schema)
        ensure_topics(self.settings)
        bootstrap_platform(self.settings, self.pg.url)
        # The processes `cuentas up` starts: PROCESSOR_ROLES (gate and
        # reconcilers apart, issue 16) times ``workers`` copies.
        self.layout = [comps for _name, comps in processor_layout(self.settings.replace(processor_workers=workers))]
        self.target_workers = len(self.layout)
        for _ in self.layout:
            self.start_worker()
        return self

    def env(self) -> dict[str, str]:
        s = self.settings
        return {**os.environ, "CUENTAS_DATA_DIR": str(s.data_path), "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
                "DATABASE_URL": s.database_url, "KAFKA_SESSION_TIMEOUT_S": "6", "KAFKA_REBALANCE_TIMEOUT_S": "6",
                "KAFKA_HEARTBEAT_S": "1", "BATCH_WINDOW_S": "0.05", "REDRIVE_AFTER_S": "8", "CLOCK_IDLE_S": "5"}

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start a process of the first role of the layout that has fewer live processes than it should."""
        live = [c for p, c in zip(self.procs, self.roles, strict=True) if p.poll() is None]
        comps = next((c for c in self.layout if live.count(c) < self.layout.count(c)), self.layout[0])
        log = self.settings.data_path / "logs" / f"worker-{len(self.procs)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = self.env()
        if comps is not None:
            env["CUENTAS_COMPONENTS"] = comps
        # spawn(): own process group and the parent-death signal, so a killed
        # test run leaves no worker behind
        p = spawn([sys.executable, "-m", "stream_processors"], log_path=log, env=env, cwd=str(ROOT))
        self.procs.append(p)
        self.roles.append(comps)
        return p

    def kill9_worker(self) -> None:
        live = [p for p in self.procs if p.poll() is None]
        if live:
            live[0].send_signal(signal.SIGKILL)
            live[0].wait(10)

    def restart_broker(self, pause_s: float = 0.0) -> None:
        """Stop the embedded broker (every topic is lost), optionally wait, start it again."""
        port = self.kafka.port
        self.kafka.stop()
        if pause_s:
            time.sleep(pause_s)
        self.kafka = EmbeddedKafka(self.root, port).start()
        ensure_topics(self.settings)

    def restart_postgres(self) -> None:
        port = self.pg.port
        self.pg.stop()
        time.sleep(1.0)
        self.pg = EmbeddedPostgres(self.root, port).start()

    def publisher(self, publisher_id: str, key: Ed25519PrivateKey | None) -> Publisher:
        if publisher_id not in self.publishers:
            self.publishers[publisher_id] = Publisher.open(self.settings, publisher_id, key)
        return self.publishers[publisher_id]

    def stop(self) -> None:
        for pub in self.publishers.values():
            pub.close()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.pg.stop()
        self.kafka.stop()

    # -- reading ----------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = connect(self.settings.database_url, self.settings.database_schema, retries=20)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


def publish(stack: Stack, sim: Any, *, order: Iterable[Any] | None = None, every: int = 500,
            hook: Callable[[int], None] | None = None, twice: bool = False) -> None:
    """Register the simulation's publishers, then hand every event to the SDK (outbox first).

    Phase by phase (``SimEvent.phase``): a phase's registry events, then its
    events (in ``order``'s order), each phase once the one before is settled,
    as ``cuentas simulate`` does: what the gate decides may depend on what
    reached the log first (a revocation after the revoked key's genuine events).
    """
    keys = PlatformKeys.load(stack.settings)
    auth = stack.publisher(AUTHORITY_NAME, keys.authority.private_key)
    first = auth.outbox.next_seq()
    events = list(order if order is not None else sim.events)
    done = 0
    for phase in sim.phases:
        if phase != 0:
            settle_all(stack, timeout=600)
        for env in sim.registry_envelopes(keys.authority.private_key, first_seq=first, phase=phase):
            auth.publish_envelope(env)
        settle_all(stack, timeout=120)
        mine = [ev for ev in events if ev.phase == phase]
        _publish_events(stack, mine, every=every, twice=twice,
                        hook=None if hook is None else (lambda n, base=done: hook(base + n)))
        done += len(mine)


def _publish_events(stack: Stack, events: list[Any], *, every: int, twice: bool,
                    hook: Callable[[int], None] | None) -> None:
    # The outbox keys hand-overs by event id.  An equivocating copy (same id,
    # other bytes) is a different hand-over, so it gets an id of its own (the
    # gate acknowledges by the SDK's header id); otherwise a lost first send
    # would be retried with the original's bytes and the attack would vanish.
    # Which of two equivocating versions the log keeps is decided by arrival
    # (first wins, by design); a broker that loses the first send would let
    # the copy win.  To compare runs, copies are handed over only after
    # everything else was confirmed.
    first_bytes: dict[str, bytes] = {}
    late: dict[str, list[tuple[str, int | None, str | None, str, bytes, bytes]]] = {}
    for start in range(0, len(events), every):
        chunk = events[start : start + every]
        by_pub: dict[str, list[tuple[str, int | None, str | None, str, bytes, bytes]]] = {}
        for ev in chunk:
            handed_id = ev.event_id
            if first_bytes.setdefault(ev.event_id, ev.raw) != ev.raw:
                handed_id = f"{ev.event_id}~{hashlib.sha256(ev.raw).hexdigest()[:8]}"
                late.setdefault(ev.publisher_id, []).append(
                    (handed_id, ev.outbox_seq, ev.envelope.event_type, ev.topic, ev.key, ev.raw))
                continue
            row = (handed_id, ev.outbox_seq, ev.envelope.event_type, ev.topic, ev.key, ev.raw)
            by_pub.setdefault(ev.publisher_id, []).extend([row, row] if twice else [row])
        for pid, rows in by_pub.items():
            stack.publisher(pid, None).publish_raw_many(rows)
        flush_all(stack)
        if hook is not None:
            hook(start + len(chunk))
    if late:
        settle_all(stack, timeout=600)
        for pid, rows in late.items():
            stack.publisher(pid, None).publish_raw_many(rows)
        flush_all(stack)


def flush_all(stack: Stack, timeout: float = 10.0) -> None:
    """Flush every publisher at once.

    After a broker restart a kafka-python idempotent producer spins on
    UnknownProducerId until its flush times out (the SDK then drops it and the
    outbox resends); flushing one publisher after the other made that wait
    once per publisher (regression: the fault suite spent ~6 of its 7 minutes
    there).
    """
    from concurrent.futures import ThreadPoolExecutor

    pubs = list(stack.publishers.values())
    if pubs:
        with ThreadPoolExecutor(max_workers=len(pubs)) as pool:
            list(pool.map(lambda p: p.flush(timeout=timeout), pubs))


def revive(stack: Stack) -> None:
    """Restart processors that died, as `cuentas up` does (its restart policy)."""
    live = [p for p in stack.procs if p.poll() is None]
    for _ in range(stack.target_workers - len(live)):
        stack.start_worker()
        stack.restarts += 1


def settle_all(stack: Stack, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        revive(stack)
        pending = 0
        for p in stack.publishers.values():
            p.poll_acks(timeout=0.2)
            pending += p.outbox.pending()
            if p.outbox.pending():
                p.resend_due()
        if pending == 0:
            return {pid: p.outbox.counts().as_dict() for pid, p in stack.publishers.items()}
    raise AssertionError(f"publishers still have {pending} pending events after {timeout}s")


def wait_quiescent(stack: Stack, timeout: float = 300) -> None:
    """Until nothing is pending reconciliation and no deadline the clock passed is left."""
    s = stack.settings
    from datetime import timedelta

    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline:
        revive(stack)
        try:
            conn = connect(s.database_url, s.database_schema, retries=5)
            try:
                with conn, conn.cursor() as cur:
                    now = clock.now(cur, timedelta(seconds=s.clock_lateness_s), s.clock_idle_s)
                    cur.execute("SELECT (SELECT count(*) FROM pending_reconcile) + (SELECT count(*) FROM dirty_projects)"
                                " + (SELECT count(*) FROM deadlines WHERE due_at <= %s)", (now,))
                    busy = int(cur.fetchone()[0])
                    cur.execute("SELECT max(updated_at) < now() - make_interval(secs => %s),"
                                " max(watermark) - make_interval(secs => %s) FROM clock_partitions",
                                (s.clock_idle_s + 1, s.clock_lateness_s))
                    all_idle, top = cur.fetchone()
                    # quiet only when no partition holds the clock back any more
                    idle = bool(all_idle) and (now is None or top is None or now >= top)
            finally:
                conn.close()
        except CuentasError:
            busy, idle = 1, False
        calm = calm + 1 if busy == 0 and idle else 0
        if calm >= 3:
            return
        time.sleep(1.0)
    raise AssertionError("the platform did not become quiescent")


def snapshot(stack: Stack) -> dict[str, Any]:
    """The final state to compare across runs: publisher events in the log (as a set),
    reconciled tables, and the current flags (withdrawn ones are gone from the view)."""
    q = stack.query
    return {
        # The platform's own flag events and its bootstrap registration (signed at
        # start-up time) are per run; everything the publishers sent must match.
        "log": sorted(bytes(r[0]).hex() for r in q(
            "SELECT leaf_hash FROM log_entries WHERE publisher_id <> 'platform.cuentasclaras' AND NOT"
            " (event_type = 'publisher.registered'"
            "  AND convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' = 'platform.cuentasclaras')")),
        "transfers": q("SELECT transfer_id, status, paid_amount, payout_count, delivery_seconds, effective_cost_bps"
                       " FROM transfers ORDER BY transfer_id"),
        "projects": q("SELECT project_id, status, club_received, disbursed, spent, funds_received FROM projects"
                      " ORDER BY project_id"),
        "parties": q("SELECT project_id, level, owed, pledged, disbursed, status FROM project_parties ORDER BY 1, 2"),
        "milestones": q("SELECT project_id, milestone_id, status, spent FROM milestones ORDER BY 1, 2"),
        "flags": q("SELECT flag_id, flag_type, subject_id, status, amount_at_stake FROM flags"
                   " WHERE status <> 'withdrawn' AND flag_type <> 'sequence_gap' ORDER BY flag_id"),
        "summary": q("SELECT day, corridor_from, corridor_to, operator, currency, transfers, sent_amount,"
                     " paid, paid_within_1h FROM summary_corridor_day ORDER BY 1, 2, 3, 4, 5"),
    }


def shuffled(events: list[Any], seed: int) -> list[Any]:
    """A random order, except that copies sharing an event id keep their relative order.

    (Which of two equivocating copies the log accepts is decided by arrival,
    by design; everything else may arrive in any order.)
    """
    rng = random.Random(seed)
    positions = list(range(len(events)))
    rng.shuffle(positions)
    out: list[Any] = [None] * len(events)
    groups: dict[str, list[int]] = {}
    for i, ev in enumerate(events):
        groups.setdefault(ev.event_id, []).append(i)
    for i, pos in enumerate(positions):
        out[pos] = events[i]
    # put each id's copies back in their original relative order
    for idxs in groups.values():
        if len(idxs) > 1:
            slots = sorted(positions[i] for i in idxs)
            for slot, i in zip(slots, idxs, strict=True):
                out[slot] = events[i]
    return out
