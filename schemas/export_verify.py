"""Check a static copy of the log (C2SP tlog-tiles, written by `cuentas log export`) offline.

Pure core plus reading files from the directory given.  Every entry is
proven into the signed root, with Go's ``golang.org/x/mod/sumdb/tlog``
semantics (a tile is the hashes its tree level stores, ``tlog.StoredHashes``):

1. The head ``checkpoint`` must carry the log's signature (C2SP signed-note,
   tlog-checkpoint) and the cosignatures the :class:`WitnessPolicy` requires
   (C2SP tlog-cosignature).
2. Every earlier checkpoint in ``checkpoints/<size>`` (our extension) must be
   signed by the log, its trusted cosignatures must verify, and none may be
   larger than the head: a head older than a checkpoint the log already
   published is a rollback, reported as an error, never skipped.
3. The entries are read bundle by bundle (``tile/entries/<N>[.p/<W>]``),
   appended to a Merkle tree kept as its frontier (RFC 9162 2.1.1, the
   compact range of :func:`schemas.merkle.append_leaf_hashes`), and every
   hash the tree stores in tiles -- level 0 the leaf hashes, level L the
   hashes at height 8L -- is compared, as soon as it exists, with the same
   position of the stored tile ``tile/<L>/<N>[.p/<W>]`` (and of any older
   partial version of that tile).  So every level is rebuilt from the
   entries, every stored tile is compared byte for byte, and the first
   inconsistency is named: the entry, or the tile and the entries under it.
4. When the rebuilt tree reaches the size of a checkpoint (each earlier one,
   a receipt's, the head's), its RFC 9162 root must be that checkpoint's
   root: the entries are proven into every signed root, which also proves
   each earlier checkpoint consistent with the head (RFC 9162 2.1.4).

Memory is O(tile): one entry bundle, one tile per level, the frontier, and the
(size, root) of each checkpoint; time is linear in the export.

MalformedInput reasons: ``missing_file``, ``oversize``, ``tile_length``,
``checkpoint_name`` and those of the parsers.  VerificationError reasons:
``entry_mismatch``, ``tile_mismatch``, ``root_mismatch``, ``rollback``,
``fork``, ``size_order``, ``not_enough_witnesses``, ``bad_signature`` and
those of receipts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import MalformedInput, VerificationError
from schemas.keys import VerifierKey
from schemas.merkle import EMPTY_ROOT, append_leaf_hashes, frontier_root, leaf_hash
from schemas.note import MAX_NOTE_SIZE, Checkpoint, Note, open_checkpoint
from schemas.receipt import parse_receipts, verify_receipt
from schemas.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    decode_entry_bundle,
    entries_path,
    tile_path,
)
from schemas.witness_policy import WitnessPolicy

__all__ = ["ExportReport", "verify_export"]

_HASH = 32
_MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)
_SIZE_NAME = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class ExportReport:
    size: int
    tiles: int  # tile files compared, older partial versions included
    checkpoints: int  # earlier checkpoints proven
    witnesses: tuple[str, ...]  # trusted witnesses that cosigned the head
    policy: WitnessPolicy = field(default_factory=WitnessPolicy)
    receipt_indices: tuple[int, ...] = ()  # the entries the receipts given are about

    @property
    def receipt_checked(self) -> bool:
        return bool(self.receipt_indices)

    def __str__(self) -> str:
        return (
            f"OK: all {self.size} entries are proven into the signed checkpoint (every tile level "
            f"rebuilt from the entries; {self.tiles} tile file(s) match); {self.checkpoints} earlier "
            f"checkpoint(s) are consistent with it; {self.policy.describe(len(self.witnesses))}"
            + (
                f"; the receipt's event is entry {self.receipt_indices[0]}"
                if len(self.receipt_indices) == 1
                else f"; the receipts' events are entries {', '.join(map(str, self.receipt_indices))}"
                if self.receipt_indices
                else ""
            )
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "size": self.size,
            "tiles": self.tiles,
            "checkpoints": self.checkpoints,
            "witnesses": list(self.witnesses),
            "min_witnesses": self.policy.min_required,
            "receipt_indices": list(self.receipt_indices),
        }


def _read(root: Path, rel: str, limit: int) -> bytes:
    """The file ``rel`` of the export, refused past ``limit`` bytes (never read whole)."""
    try:
        with (root / rel).open("rb") as f:
            # Ask for what the file holds (read(n) allocates n bytes up front).
            data = f.read(min(limit, os.fstat(f.fileno()).st_size) + 1)
    except OSError as e:
        raise MalformedInput(f"export is missing {rel}", reason="missing_file", field=rel) from e
    if len(data) > limit:
        raise MalformedInput(f"{rel} is larger than {limit} bytes", reason="oversize", field=rel)
    return data


def _in(rel: str, e: MalformedInput | VerificationError) -> MalformedInput | VerificationError:
    """The same error, its message prefixed with the file it is about."""
    e.args = (f"{rel}: {e}",)
    return e


def _open(root: Path, rel: str, log_key: VerifierKey) -> tuple[Checkpoint, Note]:
    try:
        return open_checkpoint(_read(root, rel, MAX_NOTE_SIZE), log_key)
    except (MalformedInput, VerificationError) as e:
        raise _in(rel, e) from None


def _width_at(level: int, index: int, size: int) -> int:
    n = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, n - index * TILE_WIDTH))


class _Tiles:
    """The stored tiles being compared, one per level at a time."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.size = size
        self.current: dict[int, tuple[int, bytes, str]] = {}  # level -> (index, data, path)
        self.files = 0

    def _load(self, level: int, index: int) -> tuple[int, bytes, str]:
        width = _width_at(level, index, self.size)
        rel = tile_path(level, index, width)
        data = _read(self.root, rel, width * _HASH)
        if len(data) != width * _HASH:
            raise MalformedInput(
                f"{rel} has {len(data)} bytes, {width * _HASH} expected",
                reason="tile_length",
                field=rel,
            )
        self.files += 1
        self._older_partials(level, index, width, data)
        return index, data, rel

    def _older_partials(self, level: int, index: int, width: int, data: bytes) -> None:
        # Partial versions written for earlier tree sizes (tile/<L>/<N>.p/<W>)
        # stay on a mirror; a client at that size reads them, so they must be
        # prefixes of the tile too.
        base = tile_path(level, index)
        pdir = self.root / (base + ".p")
        if not pdir.is_dir():
            return
        for p in sorted(pdir.iterdir(), key=lambda p: p.name):
            if not p.name.isdigit() or not 1 <= int(p.name) < TILE_WIDTH or str(int(p.name)) != p.name:
                continue
            w = int(p.name)
            if w == width:
                continue
            rel = tile_path(level, index, w)
            old = _read(self.root, rel, w * _HASH)
            n = min(w, width)
            if len(old) != w * _HASH or old[: n * _HASH] != data[: n * _HASH]:
                raise VerificationError(
                    f"{rel} is not a prefix of {tile_path(level, index, width)}: an older partial tile "
                    "was altered",
                    reason="tile_mismatch",
                )
            self.files += 1

    def check(self, height: int, index: int, h: bytes) -> None:
        level = height // TILE_HEIGHT
        t, pos = divmod(index, TILE_WIDTH)
        cur = self.current.get(level)
        if cur is None or cur[0] != t:
            cur = self.current[level] = self._load(level, t)
        _, data, rel = cur
        if data[pos * _HASH : (pos + 1) * _HASH] == h:
            return
        if level == 0:
            bundle = entries_path(t, _width_at(0, t, self.size))
            raise VerificationError(
                f"entry {index} ({bundle}) does not match its hash in {rel}: the entry or the tile "
                "was altered",
                reason="entry_mismatch",
                expected=data[pos * _HASH : (pos + 1) * _HASH].hex(),
                got=h.hex(),
            )
        span = 1 << height
        raise VerificationError(
            f"{rel} hash {pos} differs from the hash rebuilt from entries {index * span} to "
            f"{(index + 1) * span - 1}: the tile, or an entry under it and its lower tiles, was altered",
            reason="tile_mismatch",
            expected=data[pos * _HASH : (pos + 1) * _HASH].hex(),
            got=h.hex(),
        )


def _earlier_checkpoints(
    root: Path, log_key: VerifierKey, head: Checkpoint, policy: WitnessPolicy
) -> dict[int, tuple[bytes, str]]:
    """(root, file) of each signed checkpoint in ``checkpoints/``, checked against the head."""
    out: dict[int, tuple[bytes, str]] = {}
    cdir = root / "checkpoints"
    if not cdir.is_dir():
        return out
    present = WitnessPolicy.of(policy.keys, 0)  # cosignatures present must verify; none required
    for p in sorted(cdir.iterdir(), key=lambda p: (len(p.name), p.name)):
        rel = f"checkpoints/{p.name}"
        if not _SIZE_NAME.fullmatch(p.name):
            raise MalformedInput(
                f"{rel} is not named by a tree size", reason="checkpoint_name", field=rel
            )
        cp, note = _open(root, rel, log_key)
        try:
            present.check(note)
        except VerificationError as e:
            raise _in(rel, e) from None
        if cp.size != int(p.name):
            raise MalformedInput(
                f"{rel} holds the checkpoint of size {cp.size}", reason="checkpoint_name", field=rel
            )
        if cp.size > head.size:
            raise VerificationError(
                f"{rel} is a signed checkpoint of {cp.size} entries, larger than the head checkpoint "
                f"({head.size}): the export was rolled back",
                reason="rollback",
                expected=f">= {cp.size}",
                got=head.size,
            )
        if cp.size == head.size and cp.root != head.root:
            raise VerificationError(
                f"{rel} and checkpoint are two signed roots for {cp.size} entries: a fork",
                reason="fork",
                expected=head.root.hex(),
                got=cp.root.hex(),
            )
        if cp.size == 0 and cp.root != EMPTY_ROOT:
            raise VerificationError(
                f"{rel} is an empty tree with a root that is not SHA-256('')",
                reason="root_mismatch",
            )
        out[cp.size] = (cp.root, rel)
    return out


def verify_export(
    root: Path,
    log_key: VerifierKey,
    *,
    policy: WitnessPolicy | None = None,
    receipt: bytes | None = None,
) -> ExportReport:
    """Prove every entry of the export into its signed checkpoints; raise on the first inconsistency.

    ``receipt`` (one receipt or a bundle) is verified with the same policy,
    and its checkpoint proven against the export's entries.
    """
    policy = policy if policy is not None else WitnessPolicy()
    head, note = _open(root, "checkpoint", log_key)
    try:
        witnesses = policy.check(note)
    except VerificationError as e:
        raise _in("checkpoint", e) from None
    size = head.size
    targets = _earlier_checkpoints(root, log_key, head, policy)
    earlier = len(targets)
    targets[size] = (head.root, "checkpoint")
    indices: list[int] = []
    for r in parse_receipts(receipt) if receipt is not None else []:
        v = verify_receipt(r, log_key, policy=policy)
        if v.checkpoint.size > size:
            raise VerificationError(
                f"the receipt's checkpoint ({v.checkpoint.size} entries) is newer than the export's "
                f"({size})",
                reason="size_order",
            )
        known = targets.get(v.checkpoint.size)
        if known is not None and known[0] != v.checkpoint.root:
            raise VerificationError(
                f"the receipt's checkpoint and {known[1]} are two signed roots for "
                f"{v.checkpoint.size} entries: a fork",
                reason="fork",
            )
        targets.setdefault(v.checkpoint.size, (v.checkpoint.root, "the receipt's checkpoint"))
        indices.append(r.leaf_index)

    tiles = _Tiles(root, size)
    stops = sorted(s for s in targets if s > 0)
    frontier: list[bytes] = []
    n = 0
    if targets.get(0, (EMPTY_ROOT, ""))[0] != EMPTY_ROOT:
        raise VerificationError("a checkpoint of size 0 must have the empty-tree root",
                                reason="root_mismatch")
    stop_at = 0
    for bundle in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - bundle * TILE_WIDTH)
        rel = entries_path(bundle, width)
        try:
            leaves = decode_entry_bundle(_read(root, rel, _MAX_BUNDLE_BYTES), width=width)
        except MalformedInput as e:
            raise _in(rel, e) from None
        hashes = [leaf_hash(e) for e in leaves]
        del leaves
        i = 0
        while i < len(hashes):
            # Up to the next checkpoint size inside this bundle, or its end.
            end = min(len(hashes), i + stops[stop_at] - n) if stop_at < len(stops) else len(hashes)
            frontier, nodes = append_leaf_hashes(frontier, n, hashes[i:end])
            for height, index, h in nodes:
                if height % TILE_HEIGHT == 0:
                    tiles.check(height, index, h)
            n += end - i
            i = end
            while stop_at < len(stops) and stops[stop_at] == n:
                want, what = targets[n]
                got = frontier_root(frontier)
                if got != want:
                    raise VerificationError(
                        f"the first {n} entries hash to another root than {what} says",
                        reason="root_mismatch",
                        expected=want.hex(),
                        got=got.hex(),
                    )
                stop_at += 1
    return ExportReport(size, tiles.files, earlier, tuple(k.name for k, _ in witnesses), policy,
                        tuple(indices))
