"""C2SP tlog-tiles arithmetic: tile paths, entry bundles and proofs from stored tiles.

Modelled on Go's ``golang.org/x/mod/sumdb/tlog`` (tile.go) with the C2SP path
layout (https://c2sp.org/tlog-tiles): tile height 8, so a full tile holds 256
hashes.

Stored-hash model (C2SP tlog-tiles, "Merkle Tree"): tiles of level L hold the
node hashes at tree height 8·L; the tile at (level L, index N) holds, in index
order, the hashes at height 8·L with indices ``[256·N, 256·N + width)``.  A
tile's data is the plain concatenation of those 32-byte hashes, so a tile
grows only by appending (see :func:`tile_updates`) and a later, wider version
of a partial tile has every narrower version as a prefix.

Any node at height h in ``[8L, 8L + 8)`` is rebuilt from the level-L tile by
hashing its ``2**(h - 8L)`` consecutive stored hashes; a right-edge subtree
that is not complete is folded from its complete-subtree decomposition.  So a
proof or a root needs O(log n) tiles, all listed up front by the
``required_tiles_*`` functions so an adapter can fetch them in one query.

Tiles are named ``(level, index, width)`` with ``width`` in 1..256 (256 = full).
Tile maps passed to the ``*_from_tiles`` functions are keyed by
``(level, index)``; their data may be longer than the width asked for (a later
version of a partial tile) -- only the prefix counts.

MalformedInput reasons: ``tile_level``, ``tile_index``, ``tile_width``,
``tile_path``, ``empty_bundle``, ``bundle_too_large``, ``entry_too_long``,
``truncated``, ``bundle_width``, ``missing_tile``, ``short_tile``,
``tile_length``, ``tile_count``, ``non_contiguous``.  Impossible proof
requests raise :class:`~schemas.errors.ProofError` with the reasons of
:mod:`schemas.merkle` (``index_out_of_range``, ``empty_old_tree``, ...).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Protocol

from schemas.errors import MalformedInput, ProofError
from schemas.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    _check_consistency_args,
    _check_inclusion_args,
    _check_size,
    _consistency_ranges,
    _inclusion_ranges,
)

__all__ = [
    "ENTRIES_LEVEL",
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "HashReader",
    "Tile",
    "consistency_proof_from_tiles",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "inclusion_proof_from_tiles",
    "load_tiles",
    "parse_tile_path",
    "required_tiles_for_consistency",
    "required_tiles_for_inclusion",
    "required_tiles_for_root",
    "root_from_tiles",
    "tile_append_offsets",
    "tile_path",
    "tile_updates",
    "tiles_for_size",
]

#: Tree levels covered by one tile (C2SP tlog-tiles: tiles are 256 hashes wide).
TILE_HEIGHT = 8
#: Hashes in a full tile.
TILE_WIDTH = 1 << TILE_HEIGHT
#: Highest tile level a path may name (C2SP tlog-tiles: ``<L>`` is 0..63).
MAX_LEVEL = 63
#: Level that :func:`parse_tile_path` reports for ``tile/entries/...`` paths
#: (Go's tlog uses level -1 for its data tiles the same way).
ENTRIES_LEVEL = -1
#: Largest entry an entry bundle can carry (2-byte big-endian length prefix).
MAX_ENTRY_SIZE = 0xFFFF

#: A tile as ``(level, index, width)``.
Tile = tuple[int, int, int]

_sha256 = hashlib.sha256


class HashReader(Protocol):
    """Reads stored hash tiles, e.g. a database or an HTTP client of a static log.

    ``read_tiles`` returns one ``bytes`` per tile asked, in the same order, each
    at least ``width * 32`` bytes long.  A reader may return a longer tile than
    asked (a later version of a partial tile); only the prefix counts.
    """

    def read_tiles(self, tiles: Sequence[tuple[int, int, int]]) -> Sequence[bytes]: ...


# --------------------------------------------------------------------------- paths


def _index_path(index: int) -> str:
    # C2SP tlog-tiles: 3-digit path elements, all but the last prefixed with "x",
    # so 1234067 is x001/x234/067 (as Go's tlog Tile.Path does).
    s = f"{index % 1000:03d}"
    index //= 1000
    while index > 0:
        s = f"x{index % 1000:03d}/{s}"
        index //= 1000
    return s


def _check_width(width: int) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= TILE_WIDTH:
        raise MalformedInput(
            f"tile width must be 1..{TILE_WIDTH}, got {width!r}", reason="tile_width"
        )


def _check_index(index: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise MalformedInput(f"tile index must be >= 0, got {index!r}", reason="tile_index")


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (C2SP tlog-tiles, "Merkle Tree")."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
        raise MalformedInput(
            f"tile level must be 0..{MAX_LEVEL}, got {level!r}", reason="tile_level"
        )
    _check_index(index)
    _check_width(width)
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{_index_path(index)}{suffix}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` (C2SP tlog-tiles, "Log entries")."""
    _check_index(index)
    _check_width(width)
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{_index_path(index)}{suffix}"


_PATH_RE = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/){0,6}[0-9]{3})(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """Parse a tile or entry-bundle path into ``(level, index, width)``.

    Strict: the path must be exactly what :func:`tile_path` /
    :func:`entries_path` would produce (no leading zeros in L or W, no
    ``x000/`` padding, width 1..255 only with ``.p/``).  Entry bundles get
    level :data:`ENTRIES_LEVEL` (-1).  Raises ``MalformedInput(reason="tile_path")``.
    """
    m = _PATH_RE.fullmatch(path) if isinstance(path, str) else None
    if m is None:
        raise MalformedInput(f"not a tile path: {path!r}", reason="tile_path", field="path")
    level = ENTRIES_LEVEL if m["level"] == "entries" else int(m["level"])
    index = int(m["index"].replace("x", "").replace("/", ""))
    width = TILE_WIDTH if m["width"] is None else int(m["width"])
    if level > MAX_LEVEL or (width >= TILE_WIDTH and m["width"] is not None):
        raise MalformedInput(f"not a tile path: {path!r}", reason="tile_path", field="path")
    # Round trip so that non-canonical spellings (x000/001 for 1) are refused,
    # as Go's tlog.ParseTilePath does.
    canonical = (
        entries_path(index, width) if level == ENTRIES_LEVEL else tile_path(level, index, width)
    )
    if canonical != path:
        raise MalformedInput(f"non-canonical tile path: {path!r}", reason="tile_path", field="path")
    return level, index, width


# --------------------------------------------------------------------------- entry bundles


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a 2-byte big-endian length then its bytes (C2SP tlog-tiles).

    1 to 256 entries of at most 65535 bytes each; else ``MalformedInput``
    with ``reason`` ``empty_bundle``, ``bundle_too_large`` or ``entry_too_long``.
    """
    if not entries:
        raise MalformedInput("an entry bundle holds at least one entry", reason="empty_bundle")
    if len(entries) > TILE_WIDTH:
        raise MalformedInput(
            f"an entry bundle holds at most {TILE_WIDTH} entries, got {len(entries)}",
            reason="bundle_too_large",
        )
    out = bytearray()
    for i, e in enumerate(entries):
        if len(e) > MAX_ENTRY_SIZE:
            raise MalformedInput(
                f"entry {i} is {len(e)} bytes, more than {MAX_ENTRY_SIZE}",
                reason="entry_too_long",
                field=str(i),
            )
        out += len(e).to_bytes(2, "big")
        out += e
    return bytes(out)


def decode_entry_bundle(data: bytes, *, width: int | None = None) -> list[bytes]:
    """Split an entry bundle into its entries (C2SP tlog-tiles, "Log entries").

    With ``width`` the bundle must hold exactly that many entries.  Raises
    ``MalformedInput`` with ``reason`` ``empty_bundle``, ``truncated``,
    ``bundle_too_large`` or ``bundle_width``.
    """
    if not data:
        raise MalformedInput("empty entry bundle", reason="empty_bundle")
    mv = memoryview(data)
    out: list[bytes] = []
    pos = 0
    end = len(mv)
    while pos < end:
        if len(out) == TILE_WIDTH:
            raise MalformedInput(
                f"entry bundle holds more than {TILE_WIDTH} entries", reason="bundle_too_large"
            )
        if pos + 2 > end:
            raise MalformedInput("entry bundle ends inside a length prefix", reason="truncated")
        n = (mv[pos] << 8) | mv[pos + 1]
        pos += 2
        if pos + n > end:
            raise MalformedInput(
                f"entry {len(out)} needs {n} bytes, only {end - pos} left", reason="truncated"
            )
        out.append(bytes(mv[pos : pos + n]))
        pos += n
    if width is not None and len(out) != width:
        raise MalformedInput(
            f"entry bundle holds {len(out)} entries, expected {width}", reason="bundle_width"
        )
    return out


# --------------------------------------------------------------------------- which tiles exist


def _width_at(level: int, index: int, size: int) -> int:
    """Width of tile (level, index) in the tree of ``size`` leaves (0 if it does not exist)."""
    n = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, n - index * TILE_WIDTH))


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """Every tile, full or right-edge partial, of a tree of ``size`` leaves.

    Level L has ``size >> 8L`` stored hashes: that many // 256 full tiles and,
    when the remainder is not zero, a partial tile of that width (C2SP
    tlog-tiles, "Partial Tiles").  Sorted by level, then index.
    """
    _check_size(size, "tree size")
    out: list[tuple[int, int, int]] = []
    level = 0
    n = size
    while n > 0:
        full, rest = divmod(n, TILE_WIDTH)
        out.extend((level, i, TILE_WIDTH) for i in range(full))
        if rest:
            out.append((level, full, rest))
        level += 1
        n >>= TILE_HEIGHT
    return out


# --------------------------------------------------------------------------- node hashes from tiles


def _perfect_nodes(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees, as (height, index), that make up leaves [lo, hi), left to right.

    Every range in an RFC 9162 proof starts at a multiple of the next power
    of two of its length, so its binary decomposition is made of aligned,
    complete -- hence stored -- subtrees.
    """
    out: list[tuple[int, int]] = []
    n = hi - lo
    start = lo
    for b in range(n.bit_length() - 1, -1, -1):
        if n >> b & 1:
            out.append((b, start >> b))
            start += 1 << b
    return out


def _node_tile(height: int, index: int) -> tuple[int, int, int, int]:
    """(level, tile index, first position, count) of the stored hashes under a node."""
    level, r = divmod(height, TILE_HEIGHT)
    first = index << r
    tile, pos = divmod(first, TILE_WIDTH)
    return level, tile, pos, 1 << r


def _node_from_tiles(height: int, index: int, tiles: Mapping[tuple[int, int], bytes]) -> bytes:
    level, tile, pos, count = _node_tile(height, index)
    data = tiles.get((level, tile))
    if data is None:
        raise MalformedInput(
            f"tile {tile_path(level, tile)} is needed but was not provided",
            reason="missing_tile",
            field=tile_path(level, tile),
        )
    start = pos * HASH_SIZE
    stop = start + count * HASH_SIZE
    if len(data) < stop:
        raise MalformedInput(
            f"tile {tile_path(level, tile)} has {len(data)} bytes, at least {stop} needed",
            reason="short_tile",
            field=tile_path(level, tile),
        )
    if count == 1:
        return bytes(data[start:stop])
    sha = _sha256
    # First level straight from 64-byte slices of the tile (left || right).
    level_hashes = [sha(b"\x01" + data[o : o + 64]).digest() for o in range(start, stop, 64)]
    while len(level_hashes) > 1:
        level_hashes = [
            sha(b"\x01" + level_hashes[i] + level_hashes[i + 1]).digest()
            for i in range(0, len(level_hashes), 2)
        ]
    return level_hashes[0]


def _range_root_from_tiles(lo: int, hi: int, tiles: Mapping[tuple[int, int], bytes]) -> bytes:
    """MTH of leaves [lo, hi): fold its perfect subtrees right to left (RFC 9162 2.1.1)."""
    nodes = _perfect_nodes(lo, hi)
    r = _node_from_tiles(*nodes[-1], tiles)
    sha = _sha256
    for h, i in reversed(nodes[:-1]):
        r = sha(b"\x01" + _node_from_tiles(h, i, tiles) + r).digest()
    return r


def _tiles_for_ranges(ranges: Iterable[tuple[int, int]], size: int) -> set[tuple[int, int, int]]:
    out: set[tuple[int, int, int]] = set()
    for lo, hi in ranges:
        for h, i in _perfect_nodes(lo, hi):
            level, tile, _, _ = _node_tile(h, i)
            out.add((level, tile, _width_at(level, tile, size)))
    return out


# --------------------------------------------------------------------------- required tiles


def required_tiles_for_inclusion(index: int, size: int) -> set[tuple[int, int, int]]:
    """Tiles (with their width at ``size``) needed for PATH(index, D[0:size])."""
    _check_inclusion_args(index, size)
    return _tiles_for_ranges(_inclusion_ranges(index, size), size)


def required_tiles_for_consistency(size1: int, size2: int) -> set[tuple[int, int, int]]:
    """Tiles (with their width at ``size2``) needed for PROOF(size1, D[0:size2])."""
    _check_consistency_args(size1, size2)
    return _tiles_for_ranges(_consistency_ranges(size1, size2), size2)


def required_tiles_for_root(size: int) -> set[tuple[int, int, int]]:
    """Tiles (with their width at ``size``) needed for the root of a tree of ``size`` leaves."""
    _check_size(size, "tree size")
    if size == 0:
        return set()
    return _tiles_for_ranges([(0, size)], size)


def load_tiles(
    reader: HashReader, tiles: Collection[tuple[int, int, int]]
) -> dict[tuple[int, int], bytes]:
    """Read ``tiles`` with ONE ``reader.read_tiles`` call into a map for the ``*_from_tiles`` functions.

    Checks that each tile came back with at least ``width * 32`` bytes, a
    whole number of hashes, and keeps only that prefix.  Raises
    ``MalformedInput`` (``tile_count``, ``short_tile``, ``tile_length``).
    """
    wanted = sorted(tiles)
    got = reader.read_tiles(wanted)
    if len(got) != len(wanted):
        raise MalformedInput(f"asked for {len(wanted)} tiles, got {len(got)}", reason="tile_count")
    out: dict[tuple[int, int], bytes] = {}
    for (level, index, width), data in zip(wanted, got, strict=True):
        need = width * HASH_SIZE
        if len(data) % HASH_SIZE:
            raise MalformedInput(
                f"tile {tile_path(level, index)} is {len(data)} bytes, not a multiple of {HASH_SIZE}",
                reason="tile_length",
                field=tile_path(level, index, width),
            )
        if len(data) < need:
            raise MalformedInput(
                f"tile {tile_path(level, index, width)} has {len(data)} bytes, {need} needed",
                reason="short_tile",
                field=tile_path(level, index, width),
            )
        prev = out.get((level, index))
        if prev is None or len(prev) < need:
            out[(level, index)] = bytes(data[:need])
    return out


# --------------------------------------------------------------------------- proofs from tiles


def inclusion_proof_from_tiles(
    index: int, size: int, tiles: Mapping[tuple[int, int], bytes]
) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 2.1.3.1) computed from stored tiles.

    ``tiles`` must hold at least :func:`required_tiles_for_inclusion`.
    Identical to :func:`schemas.merkle.inclusion_proof_from_hashes`.
    """
    _check_inclusion_args(index, size)
    return [_range_root_from_tiles(lo, hi, tiles) for lo, hi in _inclusion_ranges(index, size)]


def consistency_proof_from_tiles(
    size1: int, size2: int, tiles: Mapping[tuple[int, int], bytes]
) -> list[bytes]:
    """PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1) computed from stored tiles.

    Same edge cases as :func:`schemas.merkle.consistency_proof_from_hashes`
    (``size1 == 0`` -> ``empty_old_tree``, ``size1 == size2`` -> ``[]``).
    """
    _check_consistency_args(size1, size2)
    return [_range_root_from_tiles(lo, hi, tiles) for lo, hi in _consistency_ranges(size1, size2)]


def root_from_tiles(size: int, tiles: Mapping[tuple[int, int], bytes]) -> bytes:
    """Merkle Tree Hash (RFC 9162 2.1.1) of the first ``size`` leaves, from stored tiles."""
    _check_size(size, "tree size")
    if size == 0:
        return EMPTY_ROOT
    return _range_root_from_tiles(0, size, tiles)


# --------------------------------------------------------------------------- writing tiles


def _stored_nodes(
    new_nodes: Iterable[tuple[int, int, bytes]],
) -> dict[tuple[int, int], list[tuple[int, bytes]]]:
    groups: dict[tuple[int, int], list[tuple[int, bytes]]] = {}
    for height, index, h in new_nodes:
        if height % TILE_HEIGHT:
            continue
        if len(h) != HASH_SIZE:
            raise ProofError(
                f"node ({height}, {index}) is not a {HASH_SIZE}-byte hash",
                reason="bad_hash_length",
                expected=HASH_SIZE,
                got=len(h),
            )
        key = (height // TILE_HEIGHT, index // TILE_WIDTH)
        groups.setdefault(key, []).append((index % TILE_WIDTH, h))
    for key, items in groups.items():
        items.sort(key=lambda item: item[0])
        first = items[0][0]
        for k, (pos, _) in enumerate(items):
            if pos != first + k:
                raise MalformedInput(
                    f"new hashes for tile {tile_path(*key)} are not contiguous",
                    reason="non_contiguous",
                    field=tile_path(*key),
                )
    return groups


def tile_updates(new_nodes: Iterable[tuple[int, int, bytes]]) -> dict[tuple[int, int], bytes]:
    """Bytes to APPEND to each tile ``(level, index)`` after an append to the log.

    Takes the ``(height, index, hash)`` nodes returned by
    :func:`schemas.merkle.append_leaf_hashes`, keeps those at heights that are
    multiples of 8 (the stored ones) and groups them per tile.  A tile's data
    is the concatenation of its hashes in index order, so the store applies
    ``data = data || new`` (creating the tile when absent).  Raises
    ``MalformedInput(reason="non_contiguous")`` if a tile's new hashes leave a gap.
    """
    return {key: b"".join(h for _, h in items) for key, items in _stored_nodes(new_nodes).items()}


def tile_append_offsets(new_nodes: Iterable[tuple[int, int, bytes]]) -> dict[tuple[int, int], int]:
    """Byte offset in each tile where :func:`tile_updates`' bytes go.

    Lets a store append only if the tile is exactly that long
    (``... WHERE length(data) = offset``), which makes a retried append a
    no-op instead of a corruption.
    """
    return {key: items[0][0] * HASH_SIZE for key, items in _stored_nodes(new_nodes).items()}
