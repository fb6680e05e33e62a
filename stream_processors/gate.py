"""The ingestion gate: decide each incoming event's fate, in batches.

accepted   valid schema, valid signature by a registered, unrevoked key whose
           roles allow the type, event time in range, not seen before:
           appended to the log (through the one writer) and forwarded.
duplicate  same event id, same bytes: acknowledged again, not appended.
rejected   kept in ``quarantine`` with a specific reason code and message.

Equivocation (same event id, other bytes), forged or role-violating events
and reused sequence numbers also raise integrity flags.

The decision logic (:class:`GateCore`) is plain Python over parsed envelopes
and a trust registry; :func:`process_batch` is the PostgreSQL adapter that
runs it inside one transaction with the consumer's progress.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extras import execute_values

from infra import log_store
from schemas.envelope import Envelope, parse_envelope
from schemas.errors import MalformedInput, VerificationError
from schemas.flags import FlagType, Severity
from schemas.registry import TrustRegistry
from schemas.routing import accepted_topic_for

__all__ = ["Incoming", "Decision", "GateCore", "GateOutcome", "process_batch", "load_registry", "INTEGRITY_REASONS",
           "AUTHENTICATED_REJECTIONS"]

log = logging.getLogger(__name__)

#: Rejection reasons that are attacks or integrity failures, not clumsy input;
#: each raises an integrity flag against the publisher named in the event.
INTEGRITY_REASONS: dict[str, tuple[FlagType, Severity]] = {
    "equivocation": ("equivocation", "critical"),
    "bad_signature": ("forged_signature", "critical"),
    "key_mismatch": ("forged_signature", "critical"),
    "unknown_key": ("forged_signature", "high"),
    "role_not_allowed": ("role_violation", "high"),
    "party_mismatch": ("role_violation", "high"),
    "key_revoked": ("revoked_key_used", "high"),
    "publisher_revoked": ("revoked_key_used", "high"),
    "key_expired": ("revoked_key_used", "high"),
    "seq_reused": ("equivocation", "high"),
}


#: Rejections decided after the signature verified: the publisher really sent
#: this sequence number, so it is not a gap.
AUTHENTICATED_REJECTIONS = frozenset({
    "time_out_of_range", "role_not_allowed", "party_mismatch", "key_revoked", "key_expired",
    "publisher_revoked", "key_not_yet_valid", "already_registered",
})


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes
    source: str  # "topic/partition/offset", for the quarantine record


@dataclass(slots=True)
class Decision:
    outcome: str  # accepted | duplicate | rejected
    raw: bytes
    source: str
    envelope: Envelope | None = None
    reason: str = ""
    message: str = ""
    event_id: str | None = None
    publisher_id: str | None = None
    event_type: str | None = None
    log_index: int | None = None


@dataclass
class GateCore:
    """Pure decisions; the caller supplies what PostgreSQL knows."""

    registry: TrustRegistry
    max_event_bytes: int
    max_future_skew: timedelta
    max_age: timedelta

    def parse(self, item: Incoming) -> Decision:
        try:
            env = parse_envelope(item.raw, max_bytes=self.max_event_bytes)
        except MalformedInput as e:
            return Decision("rejected", item.raw, item.source, reason=e.reason, message=str(e))
        return Decision(
            "accepted", item.raw, item.source, envelope=env, event_id=env.event_id,
            publisher_id=env.publisher_id, event_type=env.event_type,
        )

    def check(self, d: Decision, now: datetime) -> Decision:
        env = d.envelope
        assert env is not None
        try:
            self.registry.authorize(env)
        except VerificationError as e:
            return self._reject(d, e.reason, str(e))
        t = env.time()
        if t > now + self.max_future_skew:
            return self._reject(d, "time_out_of_range", f"event_time {env.event_time} is more than {self.max_future_skew} in the future")
        if t < now - self.max_age:
            return self._reject(d, "time_out_of_range", f"event_time {env.event_time} is older than {self.max_age.days} days")
        return d

    @staticmethod
    def _reject(d: Decision, reason: str, message: str) -> Decision:
        d.outcome, d.reason, d.message = "rejected", reason, message
        return d


@dataclass
class GateOutcome:
    decisions: list[Decision] = field(default_factory=list)
    integrity: list[Decision] = field(default_factory=list)


def load_registry(cur, authority) -> TrustRegistry:  # type: ignore[no-untyped-def]
    """Rebuild the trust registry from the registry events already in the log."""
    reg = TrustRegistry(authority)
    cur.execute("SELECT leaf FROM log_entries WHERE event_type LIKE 'publisher.%%' ORDER BY idx")
    for (leaf,) in cur.fetchall():
        reg.apply(parse_envelope(bytes(leaf), max_bytes=1 << 20))
    return reg


def process_batch(cur: Any, core: GateCore, items: Sequence[Incoming], *, now: datetime | None = None,
                  reload_registry: Callable[[], TrustRegistry] | None = None,
                  parsed: list[Decision] | None = None) -> GateOutcome:
    """Decide, append and quarantine a batch inside the caller's transaction.

    ``parsed`` are the items already parsed by ``core.parse`` (an adapter may
    parse and pre-verify signatures outside the transaction).
    """
    now = now or datetime.now(UTC)
    out = GateOutcome()
    decisions = parsed if parsed is not None else [core.parse(it) for it in items]
    # Registry events first, so a batch holding a registration and the new
    # publisher's first events accepts both.
    order = sorted(range(len(decisions)), key=lambda i: 0 if (decisions[i].event_type or "").startswith("publisher.") else 1)
    candidates = [decisions[i] for i in order if decisions[i].outcome == "accepted"]

    # What the log already holds for these ids and (publisher, seq) pairs.
    ids = list({d.event_id for d in candidates})
    known: dict[str, tuple[bytes, int]] = {}
    if ids:
        cur.execute("SELECT event_id, leaf_hash, idx FROM log_entries WHERE event_id = ANY(%s)", (ids,))
        known = {eid: (bytes(h), idx) for eid, h, idx in cur.fetchall()}
    pairs = list({(d.publisher_id, d.envelope.seq) for d in candidates if d.envelope})
    seq_owner: dict[tuple[str, int], str] = {}
    if pairs:
        cur.execute(
            "SELECT l.publisher_id, l.seq, l.event_id FROM log_entries l"
            " JOIN (SELECT unnest(%s::text[]) AS p, unnest(%s::bigint[]) AS s) q"
            " ON l.publisher_id = q.p AND l.seq = q.s",
            ([p for p, _ in pairs], [s for _, s in pairs]),
        )
        seq_owner = {(p, int(s)): e for p, s, e in cur.fetchall()}

    reloaded = False
    accepted: list[Decision] = []
    batch_hashes: dict[str, bytes] = {}
    for d in candidates:
        env = d.envelope
        assert env is not None
        lh = hashlib.sha256(b"\x00" + env.leaf_bytes()).digest()
        prior = known.get(env.event_id)
        if prior is None and env.event_id in batch_hashes:
            prior = (batch_hashes[env.event_id], -1)
        if prior is not None and prior[0] == lh:
            # The very bytes of an event already accepted (so already
            # authenticated): a replay or a redelivery, acknowledged again.
            d.outcome, d.reason = "duplicate", "duplicate"
            d.log_index = prior[1] if prior[1] >= 0 else None
            continue
        # Authenticate before anything is concluded about the publisher:
        # otherwise an unsigned envelope could get a flag raised against it.
        core.check(d, now)
        if d.outcome == "rejected" and d.reason in ("unknown_publisher", "unknown_key") and reload_registry and not reloaded:
            # Another worker may have accepted a registration or rotation.
            core.registry = reload_registry()
            reloaded = True
            d.outcome, d.reason, d.message = "accepted", "", ""
            core.check(d, now)
        if d.outcome == "rejected":
            continue
        if prior is not None:
            GateCore._reject(d, "equivocation", f"event id {env.event_id} was already logged with different content")
            continue
        owner = seq_owner.get((env.publisher_id, env.seq))
        if owner is not None and owner != env.event_id:
            GateCore._reject(d, "seq_reused", f"sequence number {env.seq} of {env.publisher_id} already belongs to event {owner}")
            continue
        if env.event_type.startswith("publisher."):
            try:
                core.registry.apply(env)
            except (VerificationError, MalformedInput) as e:
                GateCore._reject(d, getattr(e, "reason", "registry"), str(e))
                continue
        batch_hashes[env.event_id] = lh
        seq_owner[(env.publisher_id, env.seq)] = env.event_id
        accepted.append(d)

    if accepted:
        leaves = [
            log_store.NewLeaf(d.event_id or "", d.event_type or "", d.publisher_id or "", d.envelope.seq,
                               d.envelope.time(), d.envelope.leaf_bytes())
            for d in accepted if d.envelope
        ]
        for d, idx in zip(accepted, log_store.append(cur, leaves), strict=True):
            d.log_index = idx
        execute_values(
            cur,
            "INSERT INTO pending_reconcile (event_id, idx, event_type) VALUES %s ON CONFLICT DO NOTHING",
            [(d.event_id, d.log_index, d.event_type) for d in accepted if accepted_topic_for(d.event_type or "")],
        )
        _update_sequences(cur, accepted)

    rejected = [d for d in decisions if d.outcome == "rejected"]
    if rejected:
        execute_values(
            cur,
            "INSERT INTO quarantine (raw_sha256, event_id, publisher_id, event_type, reason, message, raw, source)"
            " VALUES %s ON CONFLICT (raw_sha256) DO UPDATE SET deliveries = quarantine.deliveries + 1",
            _dedupe_rows([
                (hashlib.sha256(d.raw).digest(), d.event_id, d.publisher_id, d.event_type, d.reason,
                 d.message[:2000], d.raw, d.source)
                for d in rejected
            ]),
        )
    dups = [d for d in decisions if d.outcome == "duplicate"]
    if dups:
        counts: dict[str, tuple[str, int]] = {}
        for d in dups:
            pub, n = counts.get(d.event_id or "", (d.publisher_id or "", 0))
            counts[d.event_id or ""] = (pub, n + 1)
        execute_values(
            cur,
            "INSERT INTO duplicate_counts (event_id, publisher_id, deliveries) VALUES %s"
            " ON CONFLICT (event_id) DO UPDATE SET deliveries = duplicate_counts.deliveries + EXCLUDED.deliveries",
            [(e, p, n) for e, (p, n) in counts.items()],
        )
    # Only authenticated events count for sequence gaps: a forger must not be
    # able to open or close gaps in someone else's numbering.
    _record_seqs(cur, [d for d in decisions if d.envelope is not None
                       and (d.outcome == "accepted" or d.reason in AUTHENTICATED_REJECTIONS)])
    out.decisions = decisions
    out.integrity = [d for d in rejected if d.reason in INTEGRITY_REASONS and d.publisher_id]
    return out


def _record_seqs(cur: Any, decisions: Sequence[Decision]) -> None:
    """Remember every (publisher, seq) seen, for gap detection (see sequence_gaps)."""
    pairs = sorted({(d.envelope.publisher_id, d.envelope.seq) for d in decisions if d.envelope is not None})
    if not pairs:
        return
    new = execute_values(
        cur, "INSERT INTO publisher_seqs (publisher_id, seq) VALUES %s ON CONFLICT DO NOTHING RETURNING publisher_id, seq",
        pairs, fetch=True,
    )
    agg: dict[str, tuple[int, int]] = {}
    for pub, seq in new:
        n, mx = agg.get(pub, (0, 0))
        agg[pub] = (n + 1, max(mx, int(seq)))
    if agg:
        execute_values(
            cur,
            "INSERT INTO publisher_sequences (publisher_id, max_seq, accepted, seen, last_seen_at) VALUES %s"
            " ON CONFLICT (publisher_id) DO UPDATE SET seen = publisher_sequences.seen + EXCLUDED.seen,"
            " max_seq = GREATEST(publisher_sequences.max_seq, EXCLUDED.max_seq), last_seen_at = now()",
            [(p, mx, 0, n, datetime.now(UTC)) for p, (n, mx) in sorted(agg.items())],
        )


def _dedupe_rows(rows: list[tuple]) -> list[tuple]:  # type: ignore[type-arg]
    # ON CONFLICT cannot touch the same row twice in one statement.
    seen: dict[bytes, tuple] = {}  # type: ignore[type-arg]
    for r in rows:
        seen.setdefault(r[0], r)
    return list(seen.values())


def _update_sequences(cur, accepted: Sequence[Decision]) -> None:  # type: ignore[no-untyped-def]
    agg: dict[str, tuple[int, int, datetime]] = {}
    for d in accepted:
        env = d.envelope
        assert env is not None
        at = env.time()
        mx, n, t = agg.get(env.publisher_id, (0, 0, at))
        agg[env.publisher_id] = (max(mx, env.seq), n + 1, max(t, at))
    execute_values(
        cur,
        "INSERT INTO publisher_sequences (publisher_id, max_seq, accepted, last_event_time, last_accepted_at)"
        " VALUES %s ON CONFLICT (publisher_id) DO UPDATE SET"
        " max_seq = GREATEST(publisher_sequences.max_seq, EXCLUDED.max_seq),"
        " accepted = publisher_sequences.accepted + EXCLUDED.accepted,"
        " last_event_time = GREATEST(publisher_sequences.last_event_time, EXCLUDED.last_event_time),"
        " last_accepted_at = now()",
        [(p, mx, n, t, datetime.now(UTC)) for p, (mx, n, t) in sorted(agg.items())],
    )
