"""The audit log in PostgreSQL: its one writer, its readers and its checkpoints, in one module.

The log is an RFC 9162 Merkle tree stored as its leaves (``log_entries``),
its C2SP tlog-tiles hash tiles (``log_tiles``), its current size, root and
frontier (the single ``log_state`` row), its signed checkpoints
(``checkpoints``) and the witnesses' cosignatures of them (``cosignatures``).
The arithmetic is the pure core's (:mod:`schemas.merkle`, :mod:`schemas.tiles`);
this module only moves bytes in and out.

Writing: every append, from the gate or from the flag workflow, goes through
:func:`append`, inside the caller's transaction.  ``SELECT ... FOR UPDATE`` on
the single ``log_state`` row makes appends strictly sequential across
processes, so however many workers run there is one writer at a time and
leaf indices never collide (ADR 0003).  The new leaves, the hash tiles they
complete or extend, and the new size/root/frontier commit atomically with the
caller's other effects and consumer progress.

Reading: every proof reads only the tiles it needs (O(log n) hashes, a
handful of rows) with a single ``SELECT``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg2.extras import execute_values

from infra.db import copy_rows
from schemas.catalog import REGISTRY_EVENT_TYPES
from schemas.envelope import parse_envelope
from schemas.keys import VerifierKey
from schemas.merkle import append_leaf_hashes, frontier_root, leaf_hash
from schemas.registry import TrustRegistry
from schemas.tiles import (
    consistency_proof_from_tiles,
    inclusion_proof_from_tiles,
    load_tiles,
    required_tiles_for_consistency,
    required_tiles_for_inclusion,
    required_tiles_for_root,
    root_from_tiles,
    tile_updates,
)

__all__ = [
    # writing
    "NewLeaf",
    "append",
    "current_state",
    "log_size",
    "log_updated",
    # entries
    "LogEntry",
    "entry_by_event_id",
    "entries_by_event_ids",
    "indices_of",
    "leaves_between",
    "hashes_of",
    "sequence_owners",
    "registry_entries",
    "registered_publishers",
    "load_registry",
    "registry_version",
    # tiles and proofs
    "PgTileReader",
    "inclusion",
    "inclusions",
    "consistency",
    "root_at",
    # checkpoints and cosignatures
    "last_checkpoint_size",
    "store_checkpoint",
    "latest_checkpoint",
    "latest_checkpoint_row",
    "checkpoint_notes",
    "checkpoint_history",
    "store_cosignature",
    "cosignatures_of",
]


# --- writing ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewLeaf:
    event_id: str
    event_type: str
    publisher_id: str
    seq: int
    event_time: datetime
    leaf: bytes  # canonical signed envelope (RFC 8785)


def _split(frontier: bytes) -> list[bytes]:
    return [frontier[i : i + 32] for i in range(0, len(frontier), 32)]


def current_state(cur: Any, *, lock: bool = False) -> tuple[int, bytes, list[bytes]]:
    """(size, root, frontier) of the tree; ``lock`` takes the writer's row lock."""
    cur.execute(
        "SELECT size, root, frontier FROM log_state WHERE id = 1" + (" FOR UPDATE" if lock else "")
    )
    size, root, frontier = cur.fetchone()
    return int(size), bytes(root), _split(bytes(frontier))


def log_size(cur: Any) -> int:
    """How many leaves the log holds now."""
    cur.execute("SELECT size FROM log_state WHERE id = 1")
    return int(cur.fetchone()[0])


def log_updated(cur: Any) -> tuple[int, datetime]:
    """(size, time of the last append) of the log."""
    cur.execute("SELECT size, updated_at FROM log_state WHERE id = 1")
    size, updated_at = cur.fetchone()
    return int(size), updated_at


def append(cur: Any, leaves: Sequence[NewLeaf], *, accepted_at: datetime | None = None) -> list[int]:
    """Append ``leaves`` in order; return their log indices.  Caller commits.

    ``accepted_at`` is their arrival as the gate judged it (the time rules of
    ``docs/adr/0007-authority-and-time.md``); by default the transaction's start.
    """
    if not leaves:
        return []
    size, _root, frontier = current_state(cur, lock=True)
    hashes = [leaf_hash(leaf.leaf) for leaf in leaves]
    new_frontier, nodes = append_leaf_hashes(frontier, size, hashes)
    cols = ("idx", "event_id", "event_type", "publisher_id", "seq", "event_time", "leaf", "leaf_hash")
    if accepted_at is None:
        copy_rows(
            cur, "log_entries", cols,
            ((size + i, lf.event_id, lf.event_type, lf.publisher_id, lf.seq, lf.event_time, lf.leaf, h)
             for i, (lf, h) in enumerate(zip(leaves, hashes, strict=True))),
        )
    else:
        copy_rows(
            cur, "log_entries", (*cols, "accepted_at"),
            ((size + i, lf.event_id, lf.event_type, lf.publisher_id, lf.seq, lf.event_time, lf.leaf, h, accepted_at)
             for i, (lf, h) in enumerate(zip(leaves, hashes, strict=True))),
        )
    updates = tile_updates(nodes)
    if updates:
        # Tiles only ever grow at their right end: appending bytes in SQL
        # avoids reading the partial tile back.
        execute_values(
            cur,
            "INSERT INTO log_tiles (level, idx, data) VALUES %s"
            " ON CONFLICT (level, idx) DO UPDATE SET data = log_tiles.data || EXCLUDED.data",
            [(lvl, idx, data) for (lvl, idx), data in sorted(updates.items())],
        )
    new_size = size + len(leaves)
    cur.execute(
        "UPDATE log_state SET size = %s, root = %s, frontier = %s, updated_at = now() WHERE id = 1",
        (new_size, frontier_root(new_frontier), b"".join(new_frontier)),
    )
    return list(range(size, new_size))


# --- entries ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    index: int
    leaf: bytes  # canonical signed envelope (RFC 8785)
    event_type: str
    publisher_id: str
    event_time: datetime


def entry_by_event_id(cur: Any, event_id: str) -> LogEntry | None:
    """The log entry of an event, or None when it is not in the log."""
    cur.execute(
        "SELECT idx, leaf, event_type, publisher_id, event_time FROM log_entries WHERE event_id = %s", (event_id,)
    )
    row = cur.fetchone()
    return LogEntry(int(row[0]), bytes(row[1]), row[2], row[3], row[4]) if row else None


def entries_by_event_ids(cur: Any, event_ids: Iterable[str]) -> dict[str, LogEntry]:
    """The log entries of those of ``event_ids`` that are in the log."""
    ids = list(set(event_ids))
    if not ids:
        return {}
    cur.execute(
        "SELECT event_id, idx, leaf, event_type, publisher_id, event_time FROM log_entries"
        " WHERE event_id = ANY(%s)",
        (ids,),
    )
    return {e: LogEntry(int(i), bytes(leaf), t, p, when) for e, i, leaf, t, p, when in cur.fetchall()}


def indices_of(cur: Any, event_ids: Iterable[str]) -> dict[str, int]:
    """Log index of each of ``event_ids`` that is in the log (the others are absent)."""
    ids = list(set(event_ids))
    if not ids:
        return {}
    cur.execute("SELECT event_id, idx FROM log_entries WHERE event_id = ANY(%s)", (ids,))
    return {e: int(i) for e, i in cur.fetchall()}


def leaves_between(cur: Any, lo: int, hi: int) -> list[bytes]:
    """The leaves of indices ``lo`` (inclusive) to ``hi`` (exclusive), in order."""
    cur.execute("SELECT leaf FROM log_entries WHERE idx >= %s AND idx < %s ORDER BY idx", (lo, hi))
    return [bytes(r[0]) for r in cur.fetchall()]


def hashes_of(cur: Any, event_ids: Iterable[str]) -> dict[str, tuple[bytes, int]]:
    """(RFC 9162 leaf hash, log index) of each of ``event_ids`` that is in the log."""
    ids = list(set(event_ids))
    if not ids:
        return {}
    cur.execute("SELECT event_id, leaf_hash, idx FROM log_entries WHERE event_id = ANY(%s)", (ids,))
    return {eid: (bytes(h), int(idx)) for eid, h, idx in cur.fetchall()}


def sequence_owners(cur: Any, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The logged event id holding each (publisher, seq) of ``pairs`` that is taken."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    cur.execute(
        "SELECT l.publisher_id, l.seq, l.event_id FROM log_entries l"
        " JOIN (SELECT unnest(%s::text[]) AS p, unnest(%s::bigint[]) AS s) q"
        " ON l.publisher_id = q.p AND l.seq = q.s",
        ([p for p, _ in wanted], [s for _, s in wanted]),
    )
    return {(p, int(s)): e for p, s, e in cur.fetchall()}


def registry_entries(cur: Any, publisher_id: str) -> list[LogEntry]:
    """The registry events that admitted a key of ``publisher_id`` (registration, rotations), in log order.

    Receipts pick among them the one that admitted the key an event names
    (:func:`schemas.receipt.admission_for`), never simply the newest.
    """
    cur.execute(
        "SELECT idx, leaf, event_type, publisher_id, event_time FROM log_entries"
        " WHERE event_type IN ('publisher.registered', 'publisher.key_rotated')"
        " AND convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' = %s ORDER BY idx",
        (publisher_id,),
    )
    return [LogEntry(int(i), bytes(leaf), t, p, when) for i, leaf, t, p, when in cur.fetchall()]


def registered_publishers(cur: Any) -> list[tuple[str, str]]:
    """(publisher id, kind) of every publisher the registry admitted, from its latest registration.

    Uses the index ``log_entries_type``; the registry's own signed events are the source.
    """
    cur.execute(
        "SELECT DISTINCT ON (pid) pid AS publisher_id, kind FROM ("
        " SELECT convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' AS pid,"
        "  convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'kind' AS kind, idx"
        " FROM log_entries WHERE event_type = 'publisher.registered') r"
        " WHERE pid IS NOT NULL ORDER BY pid, idx DESC"
    )
    return [(pid, kind) for pid, kind in cur.fetchall()]


#: Registry events are re-read with a generous limit: one accepted under an
#: earlier, larger MAX_EVENT_BYTES must stay readable.
_REGISTRY_EVENT_MAX_BYTES = 1 << 20


#: The registry's event types, as a list for ``= ANY``, which uses the index on event_type.
_REGISTRY_TYPES = list(REGISTRY_EVENT_TYPES)


def load_registry(cur: Any, authority: VerifierKey) -> TrustRegistry:
    """The trust registry rebuilt from the registry's own events in the log, in log order.

    Every ``publisher.*`` event in the log passed the gate, so replaying them
    (:meth:`schemas.registry.TrustRegistry.apply`), each at its recorded
    arrival (``accepted_at``), gives the registry the platform had when it
    accepted the last one.
    """
    reg = TrustRegistry(authority)
    cur.execute("SELECT leaf, accepted_at FROM log_entries WHERE event_type = ANY(%s) ORDER BY idx",
                (_REGISTRY_TYPES,))
    for leaf, accepted_at in cur.fetchall():
        reg.apply(parse_envelope(bytes(leaf), max_bytes=_REGISTRY_EVENT_MAX_BYTES),
                  arrived_at=accepted_at.astimezone(UTC))
    return reg


def registry_version(cur: Any) -> int:
    """Log index of the latest registry event, -1 when there is none (a cached registry is stale below it)."""
    cur.execute("SELECT coalesce(max(idx), -1) FROM log_entries WHERE event_type = ANY(%s)", (_REGISTRY_TYPES,))
    return int(cur.fetchone()[0])


# --- tiles and proofs ------------------------------------------------------------------


class PgTileReader:
    """A :class:`schemas.tiles.HashReader` over the ``log_tiles`` table."""

    def __init__(self, cur: Any) -> None:
        self.cur = cur

    def read_tiles(self, tiles: Sequence[tuple[int, int, int]]) -> Sequence[bytes]:
        if not tiles:
            return []
        self.cur.execute(
            "SELECT t.level, t.idx, t.data FROM log_tiles t"
            " JOIN unnest(%s::smallint[], %s::bigint[]) AS q(level, idx) ON t.level = q.level AND t.idx = q.idx",
            ([lv for lv, _, _ in tiles], [ix for _, ix, _ in tiles]),
        )
        got = {(int(lv), int(ix)): bytes(d) for lv, ix, d in self.cur.fetchall()}
        return [got.get((lv, ix), b"") for lv, ix, _ in tiles]


def _load(cur: Any, needed: Collection[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
    return load_tiles(PgTileReader(cur), needed)


def inclusion(cur: Any, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3 inclusion proof of leaf ``index`` in the tree of ``size``, from the tiles."""
    return inclusion_proof_from_tiles(index, size, _load(cur, required_tiles_for_inclusion(index, size)))


def inclusions(cur: Any, indices: Iterable[int], size: int) -> dict[int, list[bytes]]:
    """Inclusion proofs of several leaves in the tree of ``size``, from one read of the tiles they need."""
    wanted = sorted(set(indices))
    needed: set[tuple[int, int, int]] = set()
    for i in wanted:
        needed |= required_tiles_for_inclusion(i, size)
    tiles = _load(cur, needed)
    return {i: inclusion_proof_from_tiles(i, size, tiles) for i in wanted}


def consistency(cur: Any, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 §2.1.4 consistency proof between trees of ``size1`` and ``size2``, from the tiles."""
    return consistency_proof_from_tiles(size1, size2, _load(cur, required_tiles_for_consistency(size1, size2)))


def root_at(cur: Any, size: int) -> bytes:
    """Root hash of the tree of ``size`` leaves, from the tiles."""
    return root_from_tiles(size, _load(cur, required_tiles_for_root(size)))


# --- checkpoints and cosignatures ------------------------------------------------------


def last_checkpoint_size(cur: Any) -> int:
    """Size of the newest stored checkpoint, 0 when there is none."""
    cur.execute("SELECT coalesce(max(size), 0) FROM checkpoints")
    return int(cur.fetchone()[0])


def store_checkpoint(cur: Any, size: int, root: bytes, note: str) -> None:
    """Keep a signed checkpoint (C2SP signed note); every one is kept, a size only once."""
    cur.execute(
        "INSERT INTO checkpoints (size, root, note) VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING",
        (size, root, note),
    )


def latest_checkpoint(cur: Any) -> tuple[int, bytes, str] | None:
    """(size, root, note) of the newest checkpoint as the log signed it, without cosignatures."""
    cur.execute("SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
    row = cur.fetchone()
    return (int(row[0]), bytes(row[1]), row[2]) if row else None


def latest_checkpoint_row(cur: Any, *, min_size: int = 0, cosigned: bool = False) -> tuple[int, bytes, str] | None:
    """The newest checkpoint covering ``min_size`` leaves, with its cosignature lines merged in."""
    q = "SELECT c.size, c.root, c.note FROM checkpoints c WHERE c.size >= %s"
    if cosigned:
        q += " AND EXISTS (SELECT 1 FROM cosignatures w WHERE w.checkpoint_size = c.size)"
    cur.execute(q + " ORDER BY c.size DESC LIMIT 1", (min_size,))
    row = cur.fetchone()
    if not row:
        return None
    size, root, note = int(row[0]), bytes(row[1]), row[2]
    cur.execute("SELECT signature_line FROM cosignatures WHERE checkpoint_size = %s ORDER BY witness", (size,))
    lines = [r[0] for r in cur.fetchall()]
    if lines:
        note = note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return size, root, note


def checkpoint_notes(
    cur: Any, sizes: Sequence[int] | None = None, *, with_cosignatures: bool = False
) -> dict[int, str]:
    """Signed notes of the checkpoints of ``sizes`` that exist (all when None), in size order.

    ``with_cosignatures`` merges the witnesses' cosignature lines into each
    note, as :func:`latest_checkpoint_row` does.
    """
    note = (
        "c.note || coalesce((SELECT string_agg(w.signature_line || E'\\n', '' ORDER BY w.witness)"
        " FROM cosignatures w WHERE w.checkpoint_size = c.size), '')"
        if with_cosignatures
        else "c.note"
    )
    if sizes is None:
        cur.execute(f"SELECT c.size, {note} FROM checkpoints c ORDER BY c.size")
    else:
        cur.execute(
            f"SELECT c.size, {note} FROM checkpoints c WHERE c.size = ANY(%s) ORDER BY c.size",
            (list(sizes),),
        )
    return {int(s): n for s, n in cur.fetchall()}


def checkpoint_history(cur: Any, limit: int) -> list[tuple[int, str, datetime, int]]:
    """(size, base64 root, created at, number of cosignatures) of the newest ``limit`` checkpoints, newest first."""
    cur.execute(
        "SELECT c.size, encode(c.root, 'base64') AS root, c.created_at,"
        " (SELECT count(*) FROM cosignatures w WHERE w.checkpoint_size = c.size)::bigint AS cosignatures"
        " FROM checkpoints c ORDER BY c.size DESC LIMIT %s",
        (limit,),
    )
    return [(int(s), root, created, int(n)) for s, root, created, n in cur.fetchall()]


def store_cosignature(cur: Any, size: int, witness: str, key_id: bytes, cosigned_at: int, line: str) -> None:
    """Keep a witness's cosignature line (C2SP tlog-cosignature) of checkpoint ``size``, once."""
    cur.execute(
        "INSERT INTO cosignatures (checkpoint_size, witness, key_id, cosigned_at, signature_line)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (size, witness, key_id.hex(), cosigned_at, line.rstrip("\n")),
    )


def cosignatures_of(cur: Any, size: int) -> list[tuple[str, str, int, datetime]]:
    """(witness, key id in hex, cosigned at (Unix seconds), received at) of checkpoint ``size``'s cosignatures."""
    cur.execute(
        "SELECT witness, key_id, cosigned_at, received_at FROM cosignatures"
        " WHERE checkpoint_size = %s ORDER BY witness",
        (size,),
    )
    return [tuple(r) for r in cur.fetchall()]
