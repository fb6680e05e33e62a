"""Build the ingestion gate's inputs from real Ed25519 keys, and run its pure decision.

A :class:`World` holds a registry authority, the publishers it registered
(deterministic keys per name) and their sequence numbers; it signs registry
events and publishers' events.  :func:`batch`, :func:`logged` and
:func:`decide` turn envelopes (or raw bytes) into what
:func:`stream_processors.gate.decision.decide_batch` takes.  Used by
``tests/unit/test_gate_decision.py`` and the simulator's tests.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import Envelope, event_id_from, sign_event
from schemas.keys import VerifierKey, format_verifier_key, key_id, public_key_bytes
from schemas.merkle import leaf_hash
from schemas.registry import SignatureKey, TrustRegistry
from schemas.thresholds import LATE_PUBLICATION, MAX_EVENT_AGE, MAX_FUTURE_SKEW
from stream_processors.gate.decision import (
    BatchDecision,
    GateLimits,
    Incoming,
    Parsed,
    decide_batch,
    parse_item,
)
from stream_processors.gate.knowledge import Logged, LogKnowledge, Subject
from tests.unit.test_schemas_roundtrip import sample

__all__ = ["AUTHORITY", "NOW", "LIMITS", "key_for", "World", "batch", "logged", "decide", "outcomes"]

AUTHORITY = "registry.cuentasclaras"
#: The gate's clock in these tests; events default to an hour before it.
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
#: The platform's default limits (MAX_EVENT_BYTES, MAX_FUTURE_SKEW_S, MAX_EVENT_AGE_DAYS, LATE_PUBLICATION_DAYS).
LIMITS = GateLimits(max_event_bytes=64 * 1024, max_future_skew=MAX_FUTURE_SKEW, max_age=MAX_EVENT_AGE,
                    late_publication=LATE_PUBLICATION)

_ids = itertools.count(1)


def key_for(name: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key per name, so failures are reproducible."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"gate-builder:" + name.encode()).digest())


def _time(t: datetime | str) -> str:
    return t if isinstance(t, str) else t.strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """A registry authority, its registry, and publishers that sign events."""

    def __init__(self, authority: str = AUTHORITY, authority_key: Ed25519PrivateKey | None = None) -> None:
        self.authority = authority
        self.authority_key = authority_key or key_for(authority)
        self.registry = TrustRegistry(VerifierKey(authority, public_key_bytes(self.authority_key)))
        self.keys: dict[str, Ed25519PrivateKey] = {}  # publisher id -> its current key
        self.clubs: dict[str, str] = {}  # committee -> its club
        self._seq: dict[str, int] = {}

    def next_seq(self, publisher_id: str) -> int:
        self._seq[publisher_id] = self._seq.get(publisher_id, 0) + 1
        return self._seq[publisher_id]

    def key_id(self, publisher_id: str, key: Ed25519PrivateKey | None = None) -> str:
        return key_id(publisher_id, public_key_bytes(key or self.keys[publisher_id])).hex()

    # --- the authority's events -----------------------------------------------------------

    def registry_event(self, event_type: str, payload: Mapping[str, Any], *,
                       event_time: datetime | str = NOW - timedelta(days=30)) -> Envelope:
        return sign_event(self.authority_key, publisher_id=self.authority, event_type=event_type,
                          payload=payload, seq=self.next_seq(self.authority), event_time=_time(event_time),
                          event_id=event_id_from(b"%d" % next(_ids)))

    def registration(self, publisher_id: str, kind: str, *, party: Mapping[str, str] | None = None,
                     key: Ed25519PrivateKey | None = None,
                     valid_from: datetime | str = NOW - timedelta(days=365),
                     club_id: str | None = None, roles: Iterable[str] | None = None,
                     backfill_until: datetime | str | None = None) -> Envelope:
        """A ``publisher.registered`` event (not applied; see :meth:`register`).

        A committee is bound to ``club_id`` (default: a club named like it).
        """
        self.keys[publisher_id] = key or key_for(publisher_id)
        payload: dict[str, Any] = {
            "publisher_id": publisher_id,
            "kind": kind,
            "roles": list(roles or ROLES_BY_KIND[kind]),
            "public_key": format_verifier_key(publisher_id, public_key_bytes(self.keys[publisher_id])),
            "valid_from": _time(valid_from),
        }
        if party is not None:
            payload["party"] = dict(party)
        if kind == "committee":
            payload["club_id"] = club_id or publisher_id
            self.clubs[publisher_id] = payload["club_id"]
        if backfill_until is not None:
            payload["backfill_until"] = _time(backfill_until)
        return self.registry_event("publisher.registered", payload)

    def register(self, publisher_id: str, kind: str, *, arrived_at: datetime | None = None, **kw: Any) -> Envelope:
        """Register ``publisher_id`` in :attr:`registry` (as if the log held the event since ``arrived_at``;
        default: the event's own time, a month before :data:`NOW`)."""
        env = self.registration(publisher_id, kind, **kw)
        self.registry.apply(env, arrived_at=arrived_at)
        return env

    def revoke(self, publisher_id: str, at: datetime | str, *, key_id: str | None = None) -> Envelope:
        env = self.registry_event("publisher.revoked", {"publisher_id": publisher_id, "key_id": key_id,
                                                        "revoked_at": _time(at), "reason_code": "key_compromise"})
        self.registry.apply(env)
        return env

    def rotate(self, publisher_id: str, new_key: Ed25519PrivateKey, *, valid_from: datetime | str,
               old_key_valid_until: datetime | str) -> Envelope:
        env = self.registry_event("publisher.key_rotated", {
            "publisher_id": publisher_id,
            "new_public_key": format_verifier_key(publisher_id, public_key_bytes(new_key)),
            "valid_from": _time(valid_from),
            "old_key_valid_until": _time(old_key_valid_until),
        })
        self.registry.apply(env)
        self.keys[publisher_id] = new_key
        return env

    # --- publishers' events -----------------------------------------------------------------

    def payload(self, publisher_id: str, event_type: str) -> dict[str, Any]:
        """The sample payload of ``event_type`` as ``publisher_id`` would publish it of its own:
        a new transfer or project id, itself as operator, verifier or club (via its committee)."""
        p = sample(event_type)
        n = next(_ids)
        if event_type == "transfer.sent":
            p.update(transfer_id=f"tx-gate-{n:05d}", operator=publisher_id)
        elif event_type == "project.registered":
            p.update(project_id=f"prj-gate-{n:05d}", club_id=self.clubs.get(publisher_id, publisher_id))
        elif event_type == "milestone.verified":
            p["verifier_id"] = publisher_id
        return p

    def sign(self, publisher_id: str, event_type: str, payload: Mapping[str, Any] | None = None, *,
             key: Ed25519PrivateKey | None = None, seq: int | None = None,
             event_time: datetime | str = NOW - timedelta(hours=1), event_id: str | None = None) -> Envelope:
        """An event of ``publisher_id``, signed with its key (or ``key``: a forgery or an old key).

        Without ``payload``, :meth:`payload` (a subject of its own)."""
        return sign_event(key or self.keys.get(publisher_id) or key_for(publisher_id), publisher_id=publisher_id,
                          event_type=event_type,
                          payload=self.payload(publisher_id, event_type) if payload is None else payload,
                          seq=self.next_seq(publisher_id) if seq is None else seq, event_time=_time(event_time),
                          event_id=event_id or event_id_from(b"%d" % next(_ids)))


# --- running the decision ---------------------------------------------------------------------


def batch(*items: Envelope | bytes, max_event_bytes: int = LIMITS.max_event_bytes) -> list[Parsed]:
    """Parsed items as the gate's adapter hands them over (an envelope goes by its wire bytes)."""
    out = []
    for n, it in enumerate(items):
        raw = it.leaf_bytes() if isinstance(it, Envelope) else it
        out.append(parse_item(Incoming(raw, f"test/0/{n}"), max_event_bytes))
    return out


def logged(*envs: Envelope, first_index: int = 0) -> LogKnowledge:
    """What the log knows once it holds ``envs`` (at indices from ``first_index``): their ids,
    sequence numbers, and the subjects the first registrations among them made."""
    subjects: dict[tuple[str, str], Subject] = {}
    for i, e in enumerate(envs):
        sub = Subject.of(e, first_index + i)
        if sub is not None:
            subjects.setdefault((sub.kind, sub.subject_id), sub)
    return LogKnowledge(
        entries={e.event_id: Logged(leaf_hash(e.leaf_bytes()), first_index + i) for i, e in enumerate(envs)},
        seq_owners={(e.publisher_id, e.seq): e.event_id for e in envs},
        subjects=subjects,
    )


def decide(parsed: Iterable[Parsed], registry: TrustRegistry, known: LogKnowledge | None = None, *,
           now: datetime = NOW, limits: GateLimits = LIMITS,
           signatures: Mapping[SignatureKey, bool] | None = None) -> BatchDecision:
    return decide_batch(list(parsed), known or LogKnowledge(), registry, now, limits, signatures or {})


def outcomes(b: BatchDecision) -> list[tuple[str, str | None]]:
    """(outcome, reason or None) per item: the ack's status and reason."""
    return [(d.outcome, d.reason or None) for d in b.decisions]
