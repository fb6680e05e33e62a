"""The one writer of the audit log (RFC 9162 tree, C2SP tiles) in PostgreSQL.

Every append, from the gate or from the flag workflow, goes through
:func:`append`, inside the caller's transaction.  ``SELECT ... FOR UPDATE`` on
the single ``log_state`` row makes appends strictly sequential across
processes, so however many workers run there is one writer at a time and
leaf indices never collide (ADR 0003).  The new leaves, the hash tiles they
complete or extend, and the new size/root/frontier commit atomically with the
caller's other effects and consumer progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg2.extras import execute_values

from infra.db import copy_rows
from schemas.merkle import append_leaf_hashes, frontier_root, leaf_hash
from schemas.tiles import tile_updates

__all__ = ["NewLeaf", "append", "current_state"]


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


def current_state(cur, *, lock: bool = False) -> tuple[int, bytes, list[bytes]]:  # type: ignore[no-untyped-def]
    cur.execute(
        "SELECT size, root, frontier FROM log_state WHERE id = 1" + (" FOR UPDATE" if lock else "")
    )
    size, root, frontier = cur.fetchone()
    return int(size), bytes(root), _split(bytes(frontier))


def append(cur, leaves: Sequence[NewLeaf]) -> list[int]:  # type: ignore[no-untyped-def]
    """Append ``leaves`` in order; return their log indices.  Caller commits."""
    if not leaves:
        return []
    size, _root, frontier = current_state(cur, lock=True)
    hashes = [leaf_hash(leaf.leaf) for leaf in leaves]
    new_frontier, nodes = append_leaf_hashes(frontier, size, hashes)
    copy_rows(
        cur, "log_entries", ("idx", "event_id", "event_type", "publisher_id", "seq", "event_time", "leaf", "leaf_hash"),
        ((size + i, lf.event_id, lf.event_type, lf.publisher_id, lf.seq, lf.event_time, lf.leaf, h)
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
