"""What a simulated run returns: the envelopes to publish, the registry actions, the truth.

A :class:`Simulation` is a plain value: it publishes nothing.  Each
:class:`SimEvent` says what the gate should make of it, so a run checks the
platform's decisions as well as its flags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from producers.simulator.world import AUTHORITY, HOUR, SimPublisher
from schemas.envelope import Envelope, event_id_from, sign_event
from schemas.routing import accepted_topic_for, partition_for, partition_key, topic_for
from schemas.times import format_time

__all__ = ["RegistryAction", "Expect", "SimEvent", "Simulation"]


@dataclass(frozen=True)
class RegistryAction:
    """A registry event for the authority to sign and publish before the events of its ``phase``.

    Phase 0 holds the registrations; a revocation is phase 1: it must reach
    the log after the revoked publisher's genuine events, which it never erases.
    """

    event_type: Literal["publisher.registered", "publisher.revoked"]
    payload: Mapping[str, Any]
    phase: int = 0

    @property
    def publisher_id(self) -> str:
        return str(self.payload["publisher_id"])


Expect = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One envelope to publish, with what the gate should make of it.

    ``outbox_seq`` is the sequence number to record in the publisher's outbox
    (events the publisher signed, refused ones included: they used a number),
    or None for bytes that must not advance it (a forgery, a replay, an
    equivocating copy).  ``phase``: published once everything of the phases
    before it was acknowledged, after the registry actions of its own phase
    (what the gate decides can depend on what reached the log first).
    """

    envelope: Envelope
    expect: Expect
    reason: str | None
    label: str | None
    outbox_seq: int | None
    phase: int = 0

    @property
    def raw(self) -> bytes:
        return self.envelope.leaf_bytes()

    @property
    def publisher_id(self) -> str:
        return self.envelope.publisher_id

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def topic(self) -> str:
        return topic_for(self.envelope.event_type)

    @property
    def key(self) -> bytes:
        return partition_key(self.envelope.event_type, self.envelope.payload)


@dataclass(frozen=True)
class Simulation:
    """Everything one simulated run publishes, and what the platform should conclude."""

    seed: int
    start: datetime
    end: datetime
    cutoff: datetime
    tail_start: datetime
    anomalies: bool
    run_tag: str
    publishers: tuple[SimPublisher, ...]
    registry: tuple[RegistryAction, ...]
    events: tuple[SimEvent, ...]
    truth: tuple[Mapping[str, Any], ...]
    receipts: Mapping[str, str]
    demo_receipts: Mapping[str, tuple[str, str]]
    skipped: tuple[str, ...]
    #: Operator-side, never published: transfer id -> who sent it (the operator's own identifier of the
    #: person).  The public record cannot link two transfers of one person (issue 14.6); per-person
    #: figures (how much a sender sends a month) come from here, as an operator's would from its books.
    senders: Mapping[str, str] = field(default_factory=dict)

    @property
    def phases(self) -> tuple[int, ...]:
        """The publication phases, in order: each is published once the ones before are acknowledged."""
        return tuple(sorted({0, *(e.phase for e in self.events), *(a.phase for a in self.registry)}))

    def events_in(self, phase: int) -> list[SimEvent]:
        """The events of one phase, in publication order."""
        return [e for e in self.events if e.phase == phase]

    def registry_in(self, phase: int) -> list[tuple[int, RegistryAction]]:
        """(index, action) of the registry actions of one phase (the index names its event id)."""
        return [(i, a) for i, a in enumerate(self.registry) if a.phase == phase]

    def publisher(self, publisher_id: str) -> SimPublisher:
        for p in self.publishers:
            if p.publisher_id == publisher_id:
                return p
        raise KeyError(publisher_id)

    def truth_jsonl(self) -> str:
        """The ground truth, one JSON object per line (sorted keys, stable order)."""
        return "".join(json.dumps(t, sort_keys=True) + "\n" for t in self.truth)

    def digest(self) -> str:
        """SHA-256 over every envelope's bytes in order: equal digests, equal runs."""
        h = hashlib.sha256()
        for e in self.events:
            h.update(e.raw)
            h.update(b"\n")
        return h.hexdigest()

    def accepted(self) -> list[Envelope]:
        """The envelopes the gate should accept, in publication order."""
        return [e.envelope for e in self.events if e.expect == "accepted"]

    def final_clock(self, partitions: int = 4, lateness: timedelta = HOUR) -> datetime:
        """The platform's event-time clock once everything is reconciled.

        Minimum over the partitions of ``accepted.transfers`` and
        ``accepted.projects`` (keyed like the publish topics) of the latest event
        time there, minus ``lateness`` (CLOCK_LATENESS_S).
        """
        marks: dict[tuple[str, int], datetime] = {}
        for ev in self.events:
            if ev.expect != "accepted":
                continue
            topic = ev.topic
            if accepted_topic_for(ev.envelope.event_type) is None:
                continue
            part = partition_for(ev.key, partitions)
            t = ev.envelope.time()
            if marks.get((topic, part), t) <= t:
                marks[(topic, part)] = t
        if not marks:
            return self.end - lateness
        return min(marks.values()) - lateness

    def registry_event_id(self, i: int) -> str:
        """The event id of the ``i``-th registry action: fixed per run, so a retry re-sends it."""
        return event_id_from(f"{self.run_tag}|registry|{i}".encode())

    def registry_envelopes(
        self,
        authority_key: Ed25519PrivateKey,
        authority_id: str = AUTHORITY,
        *,
        first_seq: int = 1,
        event_time: datetime | None = None,
        phase: int | None = None,
    ) -> list[Envelope]:
        """The registry actions (of ``phase``, or all) signed by ``authority_key`` (tests; the CLI
        signs its own).  Numbered in the order of :attr:`registry` from ``first_seq``."""
        at = event_time or (self.start - HOUR)
        return [
            sign_event(
                authority_key,
                publisher_id=authority_id,
                event_type=a.event_type,
                payload=a.payload,
                seq=first_seq + i,
                event_time=at,
                event_id=self.registry_event_id(i),
            )
            for i, a in enumerate(self.registry)
            if phase is None or a.phase == phase
        ]

    def summary(self) -> dict[str, Any]:
        """Counts by event type, expected outcome, class and publisher kind."""
        by_type: dict[str, int] = {}
        by_expect: dict[str, int] = {}
        by_label: dict[str, int] = {}
        for e in self.events:
            by_type[e.envelope.event_type] = by_type.get(e.envelope.event_type, 0) + 1
            by_expect[e.expect] = by_expect.get(e.expect, 0) + 1
            if e.label:
                by_label[e.label] = by_label.get(e.label, 0) + 1
        return {
            "seed": self.seed,
            "run_tag": self.run_tag,
            "start": format_time(self.start),
            "end": format_time(self.end),
            "events": len(self.events),
            "publishers": len(self.publishers),
            "transfers": len(self.receipts),
            "projects": by_type.get("project.registered", 0),
            "by_type": dict(sorted(by_type.items())),
            "expected": dict(sorted(by_expect.items())),
            "labelled_events": dict(sorted(by_label.items())),
            "truth_lines": len(self.truth),
            "skipped_classes": list(self.skipped),
        }
