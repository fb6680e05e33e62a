"""`cuentas log export DIR`: a static copy of the log in the C2SP tlog-tiles layout.

``checkpoint`` (the latest, or with ``cosigned`` the latest a witness
cosigned, with its cosignatures), ``tile/<L>/<N>[.p/<W>]`` hash tiles and
``tile/entries/<N>[.p/<W>]`` entry bundles for that tree size, plus (our
extension) ``checkpoints/<size>`` with every earlier signed checkpoint and
its cosignatures, so a verifier can check the whole chain
(:func:`schemas.export_verify.verify_export`), and ``receipts/<2 hex>/<digest>.json``,
every transfer's receipt document against the exported checkpoint
(:mod:`schemas.receipt_doc`, for the receipt check page that ``cuentas log
export`` writes beside them).  Everything but ``checkpoint`` and the
receipt documents is immutable, so any web server or object store can serve it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from infra.log_store import PgTileReader, checkpoint_notes, latest_checkpoint_row, leaves_between
from infra.receipt_docs import export_documents
from schemas.tiles import TILE_WIDTH, encode_entry_bundle, entries_path, tile_path, tiles_for_size

__all__ = ["export_log"]


def _write(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, p)


def export_log(cur: Any, out: Path, *, cosigned: bool = False, receipts: bool = True) -> int:
    """Write the export; return the number of files written (0: no checkpoint to export)."""
    row = latest_checkpoint_row(cur, cosigned=cosigned)
    if row is None:
        return 0
    size, _root, note = row
    n = 0
    tiles = tiles_for_size(size)
    reader = PgTileReader(cur)
    for start in range(0, len(tiles), 500):
        chunk = tiles[start : start + 500]
        for (level, index, width), data in zip(chunk, reader.read_tiles(chunk), strict=True):
            _write(out, tile_path(level, index, width), data[: width * 32])
            n += 1
    for bundle in range(0, (size + TILE_WIDTH - 1) // TILE_WIDTH):
        lo, hi = bundle * TILE_WIDTH, min(size, (bundle + 1) * TILE_WIDTH)
        _write(out, entries_path(bundle, hi - lo), encode_entry_bundle(leaves_between(cur, lo, hi)))
        n += 1
    for s, text in checkpoint_notes(cur, with_cosignatures=True).items():
        if s > size:  # newer than the exported head: not part of this copy
            continue
        _write(out, f"checkpoints/{s}", text.encode())
        n += 1
    if receipts:
        n += export_documents(cur, out, size, note)
    _write(out, "checkpoint", note.encode())
    return n + 1
