"""Read side of the log in PostgreSQL: proofs from tiles in one query, receipts, export.

Every proof reads only the tiles it needs (O(log n) hashes, a handful of
rows) with a single ``SELECT``; the arithmetic is the pure core's
(:mod:`schemas.tiles`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from schemas.errors import MalformedInput
from schemas.tiles import (
    consistency_proof_from_tiles,
    inclusion_proof_from_tiles,
    load_tiles,
    required_tiles_for_consistency,
    required_tiles_for_inclusion,
    required_tiles_for_root,
    root_from_tiles,
)

__all__ = ["PgTileReader", "inclusion", "consistency", "root_at", "entry_by_event_id", "latest_checkpoint_row"]


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
    return inclusion_proof_from_tiles(index, size, _load(cur, required_tiles_for_inclusion(index, size)))


def consistency(cur: Any, size1: int, size2: int) -> list[bytes]:
    return consistency_proof_from_tiles(size1, size2, _load(cur, required_tiles_for_consistency(size1, size2)))


def root_at(cur: Any, size: int) -> bytes:
    return root_from_tiles(size, _load(cur, required_tiles_for_root(size)))


def entry_by_event_id(cur: Any, event_id: str) -> tuple[int, bytes, str, str] | None:
    """(index, leaf, event_type, publisher_id) of an event in the log."""
    cur.execute("SELECT idx, leaf, event_type, publisher_id FROM log_entries WHERE event_id = %s", (event_id,))
    row = cur.fetchone()
    return (int(row[0]), bytes(row[1]), row[2], row[3]) if row else None


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


def check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise MalformedInput(f"leaf index {index} is outside a tree of {size}", reason="index")
