"""Check a static copy of the log (C2SP tlog-tiles, written by `cuentas log export`) offline.

Pure core plus reading files from the directory given: recompute every leaf
hash from the entry bundles, check them against the level-0 tiles, recompute
the root from the tiles and check it against the log-signed checkpoint, check
that every earlier checkpoint in ``checkpoints/`` is consistent with it
(RFC 9162 2.1.4), and, if a receipt is given, its inclusion proof against a
checkpoint of the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.errors import MalformedInput, VerificationError
from schemas.keys import VerifierKey
from schemas.merkle import leaf_hash, verify_consistency
from schemas.note import open_checkpoint
from schemas.receipt import parse_receipt, verify_receipt
from schemas.tiles import (
    TILE_WIDTH,
    consistency_proof_from_tiles,
    decode_entry_bundle,
    entries_path,
    root_from_tiles,
    tile_path,
    tiles_for_size,
)

__all__ = ["ExportReport", "verify_export"]


@dataclass(frozen=True)
class ExportReport:
    size: int
    checkpoints: int
    receipt_checked: bool

    def __str__(self) -> str:
        return (f"OK: {self.size} entries match their tiles and the signed checkpoint; "
                f"{self.checkpoints} earlier checkpoint(s) are consistent with it"
                + ("; the receipt's event is in the log" if self.receipt_checked else ""))


def _read(root: Path, rel: str) -> bytes:
    try:
        return (root / rel).read_bytes()
    except OSError as e:
        raise MalformedInput(f"export is missing {rel}", reason="missing_file", field=rel) from e


def verify_export(root: Path, log_key: VerifierKey, *, receipt: bytes | None = None) -> ExportReport:
    cp, _ = open_checkpoint(_read(root, "checkpoint"), log_key)
    size = cp.size
    tiles: dict[tuple[int, int], bytes] = {}
    for level, index, width in tiles_for_size(size):
        data = _read(root, tile_path(level, index, width))
        if len(data) != width * 32:
            raise MalformedInput(f"{tile_path(level, index, width)} has {len(data)} bytes", reason="tile_length")
        tiles[(level, index)] = data
    for bundle in range(0, (size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - bundle * TILE_WIDTH)
        leaves = decode_entry_bundle(_read(root, entries_path(bundle, width)), width=width)
        tile = tiles[(0, bundle)]
        for i, leaf in enumerate(leaves):
            if leaf_hash(leaf) != tile[i * 32 : (i + 1) * 32]:
                raise VerificationError(
                    f"entry {bundle * TILE_WIDTH + i} does not match its hash in tile/0", reason="entry_mismatch"
                )
    got = root_from_tiles(size, tiles)
    if got != cp.root:
        raise VerificationError("the tiles do not hash to the signed checkpoint's root", reason="root_mismatch",
                                expected=cp.root.hex(), got=got.hex())
    older = []
    cdir = root / "checkpoints"
    if cdir.is_dir():
        for p in sorted(cdir.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
            old, _ = open_checkpoint(p.read_bytes(), log_key)
            if 0 < old.size < size:
                verify_consistency(old.size, size, consistency_proof_from_tiles(old.size, size, tiles), old.root, cp.root)
            elif old.size == size and old.root != cp.root:
                raise VerificationError(f"two checkpoints of size {size} with different roots: a fork", reason="fork")
            older.append(old)
    checked = False
    if receipt is not None:
        r = parse_receipt(receipt)
        verify_receipt(r, log_key)
        rcp, _ = open_checkpoint(r.checkpoint, log_key)
        if rcp.size > size:
            raise VerificationError("the receipt's checkpoint is newer than the export", reason="size_order")
        if rcp.size < size:
            verify_consistency(rcp.size, size, consistency_proof_from_tiles(rcp.size, size, tiles), rcp.root, cp.root)
        checked = True
    return ExportReport(size, len(older), checked)
