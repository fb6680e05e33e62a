"""The gate's SQL: what the log knows about a batch, and the batch's effects.

Runs inside the caller's transaction, with the consumer's progress (ADR 0002):
:func:`arrive` takes the log writer's lock first and fixes the batch's arrival
(so arrivals follow log order, and a registry event accepted by another worker
is seen before deciding: :func:`registry_version`), :func:`read_knowledge`
answers a batch's :class:`KnowledgeQuery` from the log and the ``subjects``
table, :func:`record` writes a :class:`BatchDecision` (appends through
:func:`infra.log_store.append`, the one writer, with the arrival as
``accepted_at``; the subjects it registers; ``pending_reconcile`` for the
re-drive; quarantine; duplicate counts; per-publisher sequences), and
:func:`due_for_redrive` hands the re-drive timer the accepted events the
reconcilers have not confirmed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg2.extras import execute_values

from infra import log_store
from schemas.envelope import Envelope
from schemas.keys import VerifierKey
from schemas.registry import TrustRegistry
from schemas.rejections import public_rejection
from schemas.routing import accepted_topic_for
from stream_processors.gate.decision import BatchDecision, Decision
from stream_processors.gate.knowledge import KnowledgeQuery, Logged, LogKnowledge, Subject

__all__ = ["arrive", "registry_version", "load_registry", "read_knowledge", "read_subjects", "record",
           "due_for_redrive"]


def arrive(cur: Any) -> datetime:
    """Take the log writer's lock (ADR 0003) and return the batch's arrival instant.

    Held until the transaction ends, as the append would hold it anyway: gate
    batches are decided one at a time, so every batch decided after a registry
    event was committed sees it, and arrivals increase with log indices.
    """
    log_store.current_state(cur, lock=True)
    return datetime.now(UTC)


def registry_version(cur: Any) -> int:
    """The log index of the latest registry event (-1 for none): a cached registry older is stale."""
    return log_store.registry_version(cur)


def load_registry(cur: Any, authority: VerifierKey) -> TrustRegistry:
    """The trust registry as the log's registry events establish it (each applied at its arrival)."""
    return log_store.load_registry(cur, authority)


def read_knowledge(cur: Any, query: KnowledgeQuery) -> LogKnowledge:
    """What the log holds for the query's event ids, (publisher, seq) pairs and subjects."""
    entries = {eid: Logged(h, idx) for eid, (h, idx) in log_store.hashes_of(cur, query.event_ids).items()}
    return LogKnowledge(entries=entries, seq_owners=log_store.sequence_owners(cur, query.sequences),
                        subjects=read_subjects(cur, query.subjects))


_SUBJECT_COLS = "kind, subject_id, owner, origin_time, event_id, log_index, club_id, payout_agents, verifiers"


def read_subjects(cur: Any, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Subject]:
    """The registered transfers and projects among ``keys`` ((kind, id)): who owns each."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    cur.execute(
        f"SELECT {_SUBJECT_COLS} FROM subjects s"
        " JOIN (SELECT unnest(%s::text[]) AS k, unnest(%s::text[]) AS i) q ON s.kind = q.k AND s.subject_id = q.i",
        ([k for k, _ in wanted], [i for _, i in wanted]),
    )
    out: dict[tuple[str, str], Subject] = {}
    for kind, sid, owner, t, eid, idx, club, agents, verifiers in cur.fetchall():
        out[(kind, sid)] = Subject(kind, sid, owner, t.astimezone(UTC), eid, None if idx is None else int(idx),
                                   club, frozenset(agents or ()), frozenset(verifiers or ()))
    return out


def _record_subjects(cur: Any, subjects: Sequence[Subject]) -> None:
    """Remember who owns what the batch registered; the first registration in the log stays."""
    if subjects:
        execute_values(
            cur,
            f"INSERT INTO subjects ({_SUBJECT_COLS}) VALUES %s ON CONFLICT (kind, subject_id) DO NOTHING",
            [(x.kind, x.subject_id, x.owner, x.origin_time, x.event_id, x.log_index, x.club_id,
              sorted(x.payout_agents), sorted(x.verifiers)) for x in subjects],
        )


def record(cur: Any, batch: BatchDecision) -> BatchDecision:
    """Write the batch's effects; return it with the accepted events' log indices."""
    accepted = batch.accepted()
    if accepted:
        leaves = [
            log_store.NewLeaf(env.event_id, env.event_type, env.publisher_id, env.seq, env.time(), env.leaf_bytes())
            for env in _envelopes(accepted)
        ]
        batch = batch.logged(log_store.append(cur, leaves, accepted_at=batch.arrived_at))
        accepted = batch.accepted()
        _record_subjects(cur, batch.subjects())
        execute_values(
            cur,
            "INSERT INTO pending_reconcile (event_id, idx, event_type) VALUES %s ON CONFLICT DO NOTHING",
            [(d.event_id, d.log_index, d.event_type) for d in accepted if accepted_topic_for(d.event_type or "")],
        )
        _update_sequences(cur, _envelopes(accepted))
    rejected = batch.rejected()
    if rejected:
        execute_values(
            cur,
            "INSERT INTO quarantine (raw_sha256, event_id, publisher_id, event_type, reason, message, raw, source,"
            " public_path, public_event_type, public_publisher)"
            " VALUES %s ON CONFLICT (raw_sha256) DO UPDATE SET deliveries = quarantine.deliveries + 1",
            _dedupe_rows([
                (hashlib.sha256(d.raw).digest(), d.event_id, d.publisher_id, d.event_type, d.reason,
                 d.message[:2000], d.raw, d.source, pub.path, pub.event_type, pub.publisher)
                for d in rejected
                for pub in [public_rejection(d.reason, d.field, d.event_type, d.publisher_id,
                                             publisher_known=bool(d.publisher_id)
                                             and batch.registry.publisher(d.publisher_id or "") is not None)]
            ]),
        )
    dups = batch.duplicates()
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
    _record_seqs(cur, batch.sequence_evidence())
    return batch


def due_for_redrive(cur: Any, after_s: float, limit: int = 5000) -> list[tuple[str, int, bytes]]:
    """(event type, log index, leaf) of accepted events unconfirmed for ``after_s`` seconds.

    Their clock restarts, so each is re-driven once per period; SKIP LOCKED
    lets several workers share the work.
    """
    cur.execute(
        "WITH due AS (SELECT event_id FROM pending_reconcile"
        " WHERE accepted_at < now() - make_interval(secs => %s) ORDER BY accepted_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE pending_reconcile p SET accepted_at = now() FROM due, log_entries l"
        " WHERE p.event_id = due.event_id AND l.event_id = p.event_id"
        " RETURNING l.event_type, l.idx, l.leaf",
        (after_s, limit),
    )
    return [(et, int(i), bytes(leaf)) for et, i, leaf in cur.fetchall()]


def _envelopes(decisions: Sequence[Decision]) -> list[Envelope]:
    return [d.envelope for d in decisions if d.envelope is not None]


def _record_seqs(cur: Any, envs: Sequence[Envelope]) -> None:
    """Remember every (publisher, seq) seen, for gap detection (see sequence_gaps)."""
    pairs = sorted({(env.publisher_id, env.seq) for env in envs})
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


def _dedupe_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # ON CONFLICT cannot touch the same row twice in one statement.
    seen: dict[bytes, tuple[Any, ...]] = {}
    for r in rows:
        seen.setdefault(r[0], r)
    return list(seen.values())


def _update_sequences(cur: Any, accepted: Sequence[Envelope]) -> None:
    agg: dict[str, tuple[int, int, datetime]] = {}
    for env in accepted:
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
