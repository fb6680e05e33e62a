"""The simulation fleet: the simulated publishers, registered and publishing on a real platform.

Shared by ``cuentas simulate`` and the demo: one :class:`Fleet` (a
``Publisher`` with its own outbox per simulated publisher, one Kafka
producer), the registry actions a run needs, paced publication, and the
sequence numbers a run continues from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.cli.common import CHUNK, publisher_locks, write_atomic
from producers.cli.publishers import read_registry, registry_authority
from schemas.envelope import Envelope
from schemas.errors import ConfigurationError, UnavailableService, VerificationError

if TYPE_CHECKING:
    from infra.settings import Settings
    from producers.publisher import Publisher
    from producers.simulator import SimEvent, SimPublisher, Simulation

__all__ = ["Fleet", "state_path", "first_seqs", "next_seqs", "register_all", "publish_sim", "publish_phases"]


class Fleet:
    """One Publisher (own outbox) per simulated publisher, sharing a single Kafka producer."""

    def __init__(self, settings: Settings, publishers: Iterable[SimPublisher]) -> None:
        from infra.kafka import make_producer
        from producers.outbox import Outbox
        from producers.publisher import Publisher, outbox_path

        self.producer = make_producer(settings)
        self.pubs: dict[str, Publisher] = {
            p.publisher_id: Publisher(
                settings,
                p.publisher_id,
                p.key,
                Outbox(outbox_path(settings, p.publisher_id)),
                producer=self.producer,
            )
            for p in publishers
        }

    def publish(self, events: Sequence[SimEvent]) -> None:
        """Hand over a chunk; each publisher's events keep their order."""
        by_pub: dict[str, list[SimEvent]] = {}
        for ev in events:
            by_pub.setdefault(ev.publisher_id, []).append(ev)
        for pid, evs in by_pub.items():
            pub = self.pubs[pid]
            run: list[Envelope] = []
            for ev in evs:
                if ev.outbox_seq is not None:
                    run.append(ev.envelope)
                    continue
                if run:
                    pub.publish_many(run)
                    run = []
                # Forgeries, replays, equivocating copies and refused events: as raw bytes,
                # without advancing the outbox's sequence number.
                # An equivocating copy shares its event id with the original but
                # not its bytes: hand it over under an id of its own, or the
                # outbox would keep (and republish) only the original's bytes.
                handed = ev.event_id
                if ev.reason == "equivocation":
                    handed = f"{ev.event_id}~{hashlib.sha256(ev.raw).hexdigest()[:8]}"
                pub.publish_raw(
                    ev.raw,
                    event_id=handed,
                    topic=ev.topic,
                    key=ev.key,
                    event_type=ev.envelope.event_type,
                    seq=None,
                )
            if run:
                pub.publish_many(run)

    def counts(self) -> dict[str, Any]:
        """Each publisher's outbox totals (handed, accepted, rejected, duplicates, pending)."""
        return {pid: p.outbox.counts() for pid, p in self.pubs.items()}

    def settle(self, timeout: float, progress: Callable[[int], None] | None = None) -> int:
        """Poll acknowledgements until nothing is pending; return what is still pending."""
        try:
            self.producer.flush(timeout=60)
        except Exception as e:  # the outboxes keep everything; settle resends it
            raise UnavailableService(f"cannot hand events to Kafka: {e}") from e
        deadline = time.monotonic() + timeout
        last_resend = time.monotonic()
        while True:
            pending = 0
            for p in self.pubs.values():
                if p.outbox.pending():
                    p.poll_acks(timeout=0.05)
                    pending += p.outbox.pending()
            if progress:
                progress(pending)
            if pending == 0 or time.monotonic() > deadline:
                return pending
            if time.monotonic() - last_resend > 20:
                for p in self.pubs.values():
                    p.resend_due()
                last_resend = time.monotonic()
            time.sleep(0.2)

    def statuses(self) -> dict[str, tuple[str, str | None]]:
        """Event id -> (status, reason) as the outboxes recorded the acknowledgements."""
        out: dict[str, tuple[str, str | None]] = {}
        for p in self.pubs.values():
            for eid, status, reason in p.outbox.db.execute(
                "SELECT event_id, status, reason FROM events"
            ):
                out[eid] = (status, reason)
        return out

    def close(self) -> None:
        """Close every outbox, then the one shared producer."""
        for p in self.pubs.values():
            p.close()  # a publisher never closes the producer it was lent: closed once below
        with contextlib.suppress(Exception):
            self.producer.close(timeout=5)


def state_path(settings: Settings, name: str) -> Path:
    """Where a simulation remembers the sequence numbers it started from."""
    return settings.data_path / "simulations" / f"{name}.state.json"


def first_seqs(settings: Settings, ids: Iterable[str], state: Path) -> dict[str, int]:
    """Per publisher, the next sequence number: remembered for a re-run, else from the outbox.

    Remembering it makes a re-run of the same simulation byte-identical (the
    platform reads it as duplicates) instead of a new run under new numbers.
    """
    if state.exists():
        with contextlib.suppress(OSError, ValueError, KeyError):
            return {k: int(v) for k, v in json.loads(state.read_text())["first_seq"].items()}
    out = next_seqs(settings, ids)
    write_atomic(state, json.dumps({"first_seq": out}, sort_keys=True, indent=1))
    return out


def next_seqs(settings: Settings, ids: Iterable[str]) -> dict[str, int]:
    """Each publisher's next sequence number, from its outbox (1 when it has none)."""
    from producers.outbox import Outbox
    from producers.publisher import outbox_path

    out: dict[str, int] = {}
    for pid in ids:
        path = outbox_path(settings, pid)
        if not path.exists():
            out[pid] = 1
            continue
        box = Outbox(path)
        try:
            out[pid] = box.next_seq()
        finally:
            box.close()
    return out


def register_all(
    settings: Settings,
    db_url: str,
    sim: Simulation,
    timeout: float,
    echo: Callable[[str], None],
    phase: int | None = None,
) -> int:
    """Publish the registry actions (of ``phase``, or all) the platform does not have yet; wait
    until accepted.

    Each action has a deterministic event id, and one still pending in the
    authority's outbox (an earlier attempt) is re-sent, never signed again: two
    registrations of one publisher must never reach the gate.
    """
    from infra.identities import AUTHORITY_NAME
    from producers.registry import authority_publisher
    from schemas.keys import parse_verifier_key

    authority = registry_authority(settings)
    reg = read_registry(settings, db_url, authority)
    todo: list[tuple[str, Any]] = []
    for i, action in enumerate(sim.registry):
        if phase is not None and action.phase != phase:
            continue
        info = reg.publisher(action.publisher_id)
        eid = sim.registry_event_id(i)
        if action.event_type == "publisher.registered":
            if info is None:
                todo.append((eid, action))
                continue
            kid = parse_verifier_key(str(action.payload["public_key"])).key_id.hex()
            if info.key(kid) is None:
                raise ConfigurationError(
                    f"publisher {action.publisher_id} is already registered with another key: "
                    "this platform ran a simulation with another seed (use that seed, or a fresh "
                    "CUENTAS_DATA_DIR)"
                )
        else:
            kid = action.payload["key_id"]
            if info is None:
                todo.append((eid, action))
            elif kid is None:
                if info.revoked_at is None:
                    todo.append((eid, action))
            else:
                key = info.key(str(kid))
                if key is None or key.revoked_at is None:
                    todo.append((eid, action))
    if not todo:
        return 0
    with publisher_locks(settings, [AUTHORITY_NAME]):
        pub = authority_publisher(settings, authority)
        try:
            fresh = [(eid, a) for eid, a in todo if pub.outbox.status_of(eid) is None]
            base = pub.outbox.next_seq()
            envs = [
                pub.sign(a.event_type, a.payload, seq=base + k, event_id=eid)
                for k, (eid, a) in enumerate(fresh)
            ]
            if envs:
                pub.publish_many(envs)
            if len(fresh) < len(todo):
                pub.resend_due(0)
            echo(f"publishing {len(todo)} registry event(s) signed by the registry authority...")
            pub.settle(timeout=timeout)
            results = [(a.publisher_id, pub.outbox.status_of(eid)) for eid, a in todo]
        finally:
            pub.close()
    for who, st in results:
        if st is None or st[0] == "pending":
            raise UnavailableService(
                f"no acknowledgement for the registry event of {who} within {timeout:g}s: "
                "are the processors running (cuentas status)?"
            )
        if st[0] == "rejected":
            raise VerificationError(
                f"the registry event of {who} was rejected: {st[1]}: {st[2]}",
                reason=st[1] or "rejected",
            )
    return len(todo)


def publish_sim(
    fleet: Fleet,
    events: Sequence[SimEvent],
    rate: float | None,
    advance: Callable[[int], None],
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish ``events`` in order, in chunks, at ``rate`` a second (None: at once); how many."""
    chunk = CHUNK if not rate else max(1, min(CHUNK, int(rate / 5) or 1))
    t0 = time.monotonic()
    done = 0
    for i in range(0, len(events), chunk):
        if stop():
            break
        part = events[i : i + chunk]
        if rate:
            wait = t0 + (done + len(part)) / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        fleet.publish(part)
        done += len(part)
        advance(len(part))
    return done


def publish_phases(
    settings: Settings,
    db_url: str,
    sim: Simulation,
    fleet: Fleet,
    rate: float | None,
    timeout: float,
    echo: Callable[[str], None],
    advance: Callable[[int], None] = lambda k: None,
    stop: Callable[[], bool] = lambda: False,
    settled: Callable[[int], None] = lambda pending: None,
) -> int:
    """Publish a run phase by phase; how many events were handed over.

    Each phase's registry actions first (a revocation follows the revoked
    publisher's genuine events), then its events; a phase starts once every
    event of the ones before was acknowledged: what the gate decides may depend
    on what reached the log first (``producers.simulator.results.SimEvent.phase``).
    Phase 0's registrations are the caller's (:func:`register_all`).
    """
    done = 0
    for phase in sim.phases:
        if stop():
            break
        if phase != 0:
            fleet.settle(timeout, settled)
            register_all(settings, db_url, sim, timeout, echo, phase=phase)
        done += publish_sim(fleet, sim.events_in(phase), rate, advance, stop)
    return done
