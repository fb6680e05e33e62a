"""schemas.tiles: C2SP tlog-tiles paths, entry bundles, and proofs from stored tiles."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import merkle as M
from schemas import tiles as T
from schemas.errors import MalformedInput, ProofError
from tests.unit.test_merkle import Naive

# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((0, 1234067), "tile/0/x001/x234/067"),
        ((0, 0), "tile/0/000"),
        ((0, 7), "tile/0/007"),
        ((2, 999), "tile/2/999"),
        ((2, 1000), "tile/2/x001/000"),
        ((1, 5, 17), "tile/1/005.p/17"),
        ((0, 273, 112), "tile/0/273.p/112"),
        ((3, 1234067, 255), "tile/3/x001/x234/067.p/255"),
        ((63, 1, 1), "tile/63/001.p/1"),
        ((0, 1, 256), "tile/0/001"),
    ],
)
def test_tile_path(args: tuple[int, ...], path: str) -> None:
    assert T.tile_path(*args) == path
    level, index, width = (*args, 256)[:3]
    assert T.parse_tile_path(path) == (level, index, width)


def test_entries_path() -> None:
    assert T.entries_path(1234067) == "tile/entries/x001/x234/067"
    assert T.entries_path(0, 1) == "tile/entries/000.p/1"
    assert T.entries_path(273, 112) == "tile/entries/273.p/112"
    assert T.parse_tile_path("tile/entries/x001/x234/067") == (T.ENTRIES_LEVEL, 1234067, 256)
    assert T.parse_tile_path("tile/entries/273.p/112") == (-1, 273, 112)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: T.tile_path(64, 0), "tile_level"),
        (lambda: T.tile_path(-1, 0), "tile_level"),
        (lambda: T.tile_path(0, -1), "tile_index"),
        (lambda: T.tile_path(0, 0, 0), "tile_width"),
        (lambda: T.tile_path(0, 0, 257), "tile_width"),
        (lambda: T.entries_path(-5), "tile_index"),
        (lambda: T.entries_path(0, 300), "tile_width"),
    ],
)
def test_tile_path_rejects_bad_arguments(call: object, reason: str) -> None:
    with pytest.raises(MalformedInput) as e:
        call()  # type: ignore[operator]
    assert e.value.reason == reason


@pytest.mark.parametrize(
    "path",
    [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "/tile/0/000",
        "tile/0/000/",
        "tile/0/0",
        "tile/0/01",
        "tile/0/0001",
        "tile/00/000",
        "tile/01/000",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/x000/001",  # non-canonical spelling of 1
        "tile/0/x001",
        "tile/0/001/x234",
        "tile/0/X001/234",
        "tile/0/x1/234",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/300",
        "tile/0/000.p/007",
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000.p/1/2",
        "tile/0/000p/1",
        "tile/8/0/000",  # Go's layout with the tile height
        "tile/data/000",
        "tile/entries/x001",
        "tile/entries/000.p/0",
        "tile/0/ 000",
        "tile/0/000 ",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits
        "tile\\0\\000",
        "TILE/0/000",
    ],
)
def test_parse_tile_path_rejects(path: str) -> None:
    with pytest.raises(MalformedInput) as e:
        T.parse_tile_path(path)
    assert e.value.reason == "tile_path"


@settings(max_examples=300, deadline=None)
@given(level=st.integers(0, 63), index=st.integers(0, 10**12), width=st.integers(1, 256))
def test_tile_path_round_trip(level: int, index: int, width: int) -> None:
    assert T.parse_tile_path(T.tile_path(level, index, width)) == (level, index, width)
    assert T.parse_tile_path(T.entries_path(index, width)) == (-1, index, width)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet="tile/0123456789x.pentrs", max_size=40),
        st.builds(lambda a, b: f"tile/{a}/{b}", st.text(max_size=4), st.text(max_size=20)),
    )
)
def test_parse_tile_path_fuzz(path: str) -> None:
    try:
        level, index, width = T.parse_tile_path(path)
    except MalformedInput:
        return
    again = T.entries_path(index, width) if level == -1 else T.tile_path(level, index, width)
    assert again == path


# --------------------------------------------------------------------------- entry bundles


def test_entry_bundle_encoding() -> None:
    assert T.encode_entry_bundle([b"a"]) == b"\x00\x01a"
    assert T.encode_entry_bundle([b"", b"xy"]) == b"\x00\x00\x00\x02xy"
    big = b"z" * 65535
    assert T.decode_entry_bundle(T.encode_entry_bundle([big])) == [big]
    assert T.decode_entry_bundle(b"\x00\x00") == [b""]
    assert T.decode_entry_bundle(b"\x00\x01a\x00\x00", width=2) == [b"a", b""]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: T.encode_entry_bundle([b"z" * 65536]), "entry_too_long"),
        (lambda: T.encode_entry_bundle([b"a"] * 257), "bundle_too_large"),
        (lambda: T.encode_entry_bundle([]), "empty_bundle"),
        (lambda: T.decode_entry_bundle(b""), "empty_bundle"),
        (lambda: T.decode_entry_bundle(b"\x00"), "truncated"),
        (lambda: T.decode_entry_bundle(b"\x00\x02a"), "truncated"),
        (lambda: T.decode_entry_bundle(b"\x00\x01a\x00"), "truncated"),
        (lambda: T.decode_entry_bundle(b"\x00\x00" * 257), "bundle_too_large"),
        (lambda: T.decode_entry_bundle(b"\x00\x01a", width=2), "bundle_width"),
    ],
)
def test_entry_bundle_rejects(call: object, reason: str) -> None:
    with pytest.raises(MalformedInput) as e:
        call()  # type: ignore[operator]
    assert e.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = T.encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert T.decode_entry_bundle(data, width=len(entries)) == entries


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decode_entry_bundle_fuzz(data: bytes) -> None:
    try:
        entries = T.decode_entry_bundle(data)
    except MalformedInput:
        return
    assert T.encode_entry_bundle(entries) == data


# --------------------------------------------------------------------------- which tiles exist


def test_tiles_for_size_matches_the_spec_examples() -> None:
    assert T.tiles_for_size(0) == []
    assert T.tiles_for_size(1) == [(0, 0, 1)]
    assert T.tiles_for_size(255) == [(0, 0, 255)]
    # C2SP: "a tree of size 256 will be represented by a full level 0 tile and
    # a partial level 1 tile of width 1".
    assert T.tiles_for_size(256) == [(0, 0, 256), (1, 0, 1)]
    # C2SP: size 70,000 = 273 full level-0 tiles, a partial one of width 112,
    # one full level-1 tile, a partial level-1 tile of width 17 and a partial
    # level-2 tile of width 1.
    tiles = T.tiles_for_size(70_000)
    assert tiles[:273] == [(0, i, 256) for i in range(273)]
    assert tiles[273:] == [(0, 273, 112), (1, 0, 256), (1, 1, 17), (2, 0, 1)]
    assert T.tiles_for_size(65536)[-2:] == [(1, 0, 256), (2, 0, 1)]


# --------------------------------------------------------------------------- a tile store

N_MAX = 70_001
HASHES = [hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest() for i in range(N_MAX)]


def stored_levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Hashes at heights 0, 8, 16, ...: complete subtrees only, built pairwise (independent of T)."""
    out = [list(hashes)]
    level = list(hashes)
    height = 0
    while True:
        level = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        height += 1
        if not level:
            break
        if height % 8 == 0:
            out.append(level)
    return out


LEVELS = stored_levels(HASHES)


def direct_tiles(size: int) -> dict[tuple[int, int], bytes]:
    """Every tile of a tree of ``size`` leaves, straight from the stored-hash model."""
    out: dict[tuple[int, int], bytes] = {}
    for level, index, width in T.tiles_for_size(size):
        n = size >> (8 * level)
        assert index * 256 + width <= n
        out[(level, index)] = b"".join(LEVELS[level][index * 256 : index * 256 + width])
    return out


FULL_STORE = direct_tiles(N_MAX)


def test_appends_in_random_batches_give_the_same_tiles_and_root() -> None:
    rng = random.Random(7)
    for total in (0, 1, 255, 256, 257, 600, 65535, 65536, 65537, 70_000):
        store: dict[tuple[int, int], bytearray] = {}
        frontier: list[bytes] = []
        size = 0
        while size < total:
            step = rng.choice([1, 2, 3, 100, 255, 256, 1000, 5000, 20_000])
            batch = HASHES[size : min(total, size + rng.randint(1, step))]
            frontier, nodes = M.append_leaf_hashes(frontier, size, batch)
            nodes = list(nodes)
            offsets = T.tile_append_offsets(nodes)
            for key, data in T.tile_updates(nodes).items():
                tile = store.setdefault(key, bytearray())
                assert len(tile) == offsets[key]  # appends land exactly at the end
                tile += data
            size += len(batch)
        assert M.frontier_root(frontier) == M.root_from_leaf_hashes(HASHES[:total])
        assert {k: bytes(v) for k, v in store.items()} == direct_tiles(total)
        assert T.root_from_tiles(
            total, {k: bytes(v) for k, v in store.items()}
        ) == M.root_from_leaf_hashes(HASHES[:total])
        assert sorted((lv, i, len(d) // 32) for (lv, i), d in store.items()) == T.tiles_for_size(
            total
        )


def test_tile_updates_filters_groups_and_orders() -> None:
    h = [bytes([i]) * 32 for i in range(6)]
    nodes = [(0, 257, h[1]), (1, 3, h[2]), (0, 256, h[0]), (8, 0, h[3]), (16, 5, h[4])]
    assert T.tile_updates(nodes) == {(0, 1): h[0] + h[1], (1, 0): h[3], (2, 0): h[4]}
    assert T.tile_append_offsets(nodes) == {(0, 1): 0, (1, 0): 0, (2, 0): 5 * 32}
    with pytest.raises(MalformedInput) as e:
        T.tile_updates([(0, 1, h[0]), (0, 3, h[1])])
    assert e.value.reason == "non_contiguous"
    with pytest.raises(ProofError) as pe:
        T.tile_updates([(0, 1, b"short")])
    assert pe.value.reason == "bad_hash_length"
    assert T.tile_updates([]) == {}


SIZES = [1, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537, 70_001]


def test_roots_from_tiles() -> None:
    rng = random.Random(1)
    for size in [*SIZES, *(rng.randint(1, N_MAX) for _ in range(10))]:
        want = M.root_from_leaf_hashes(HASHES[:size])
        needed = T.required_tiles_for_root(size)
        assert needed <= set(T.tiles_for_size(size))
        assert T.root_from_tiles(size, FULL_STORE) == want
        assert T.root_from_tiles(size, _exact(needed)) == want
    assert T.root_from_tiles(0, {}) == M.EMPTY_ROOT
    assert T.required_tiles_for_root(0) == set()


def _exact(tiles: set[tuple[int, int, int]]) -> dict[tuple[int, int], bytes]:
    """Only the tiles asked for, cut to the width asked for."""
    return {(lv, i): FULL_STORE[(lv, i)][: w * 32] for lv, i, w in tiles}


def test_inclusion_proofs_from_tiles_equal_the_reference() -> None:
    rng = random.Random(2)
    cases = [(s - 1, s) for s in SIZES] + [(0, s) for s in SIZES]
    cases += [(255, 256), (256, 257), (65535, 65536), (65536, 65537), (12345, 65536)]
    for _ in range(8):
        size = rng.randint(1, N_MAX)
        cases.append((rng.randrange(size), size))
    for index, size in cases:
        want = M.inclusion_proof_from_hashes(index, HASHES[:size])
        needed = T.required_tiles_for_inclusion(index, size)
        assert needed <= set(T.tiles_for_size(size))
        assert T.inclusion_proof_from_tiles(index, size, FULL_STORE) == want
        assert T.inclusion_proof_from_tiles(index, size, _exact(needed)) == want
        root = T.root_from_tiles(size, FULL_STORE)
        M.verify_inclusion(HASHES[index], index, size, want, root)


def test_consistency_proofs_from_tiles_equal_the_reference() -> None:
    rng = random.Random(3)
    cases = [(1, 2), (255, 256), (256, 257), (256, 70_001), (65535, 65536), (65536, 65537)]
    cases += [(1000, 65536), (4097, 70_000), (7, 7), (70_001, 70_001)]
    for _ in range(6):
        b = rng.randint(2, N_MAX)
        cases.append((rng.randint(1, b), b))
    for size1, size2 in cases:
        want = M.consistency_proof_from_hashes(size1, HASHES[:size2])
        needed = T.required_tiles_for_consistency(size1, size2)
        assert needed <= set(T.tiles_for_size(size2))
        assert T.consistency_proof_from_tiles(size1, size2, FULL_STORE) == want
        assert T.consistency_proof_from_tiles(size1, size2, _exact(needed)) == want
        M.verify_consistency(
            size1,
            size2,
            want,
            T.root_from_tiles(size1, FULL_STORE),
            T.root_from_tiles(size2, FULL_STORE),
        )


def test_tiles_against_the_naive_reference() -> None:
    # A small tree with unusual sizes, checked against RFC 9162's recursive
    # definitions directly rather than via schemas.merkle.
    leaves = [i.to_bytes(4, "big") for i in range(1300)]
    naive = Naive(leaves)
    assert [M.leaf_hash(d) for d in leaves] == HASHES[:1300]
    for size in (1, 255, 256, 257, 513, 1024, 1299, 1300):
        assert T.root_from_tiles(size, FULL_STORE) == naive.mth(0, size)
        for index in {0, size // 3, size - 1}:
            assert T.inclusion_proof_from_tiles(index, size, FULL_STORE) == naive.path(
                index, 0, size
            )
        for size1 in {1, size // 2 or 1, size - 1 or 1, size}:
            assert T.consistency_proof_from_tiles(size1, size, FULL_STORE) == naive.proof(
                size1, size
            )


class FakeReader:
    def __init__(self, store: dict[tuple[int, int], bytes], extra: int = 0) -> None:
        self.store = store
        self.extra = extra
        self.calls: list[list[tuple[int, int, int]]] = []

    def read_tiles(self, tiles: Sequence[tuple[int, int, int]]) -> Sequence[bytes]:
        self.calls.append(list(tiles))
        # Return later (longer) versions of partial tiles when available.
        return [self.store[(lv, i)][: (w + self.extra) * 32] for lv, i, w in tiles]


def test_load_tiles_reads_once_and_keeps_only_the_prefix() -> None:
    reader = FakeReader(FULL_STORE, extra=10)
    index, size = 60_000, 65_600
    needed = T.required_tiles_for_inclusion(index, size)
    tiles = T.load_tiles(reader, needed)
    assert len(reader.calls) == 1 and set(reader.calls[0]) == needed
    assert len(needed) <= 2 * 3  # O(log n): at most a couple of tiles per level
    for lv, i, w in needed:
        assert len(tiles[(lv, i)]) == w * 32
    assert T.inclusion_proof_from_tiles(index, size, tiles) == M.inclusion_proof_from_hashes(
        index, HASHES[:size]
    )
    all_needed = (
        T.required_tiles_for_inclusion(index, size)
        | T.required_tiles_for_consistency(1000, size)
        | T.required_tiles_for_root(size)
    )
    tiles = T.load_tiles(FakeReader(FULL_STORE), all_needed)
    assert T.root_from_tiles(size, tiles) == M.root_from_leaf_hashes(HASHES[:size])
    assert T.consistency_proof_from_tiles(1000, size, tiles) == M.consistency_proof_from_hashes(
        1000, HASHES[:size]
    )


def test_load_tiles_rejects_bad_reader_output() -> None:
    class Bad:
        def __init__(self, out: list[bytes]) -> None:
            self.out = out

        def read_tiles(self, tiles: Sequence[tuple[int, int, int]]) -> Sequence[bytes]:
            return self.out

    for out, reason in (
        ([], "tile_count"),
        ([b""], "short_tile"),
        ([b"\x00" * 31], "tile_length"),
        ([b"\x00" * 33], "tile_length"),
    ):
        with pytest.raises(MalformedInput) as e:
            T.load_tiles(Bad(out), {(0, 0, 1)})
        assert e.value.reason == reason


def test_missing_or_short_tiles_are_reported() -> None:
    with pytest.raises(MalformedInput) as e:
        T.inclusion_proof_from_tiles(5, 300, {})
    assert e.value.reason == "missing_tile"
    assert e.value.field == "tile/0/000"
    short = dict(FULL_STORE)
    short[(0, 1)] = FULL_STORE[(0, 1)][:32]
    with pytest.raises(MalformedInput) as e:
        T.root_from_tiles(300, short)
    assert e.value.reason == "short_tile"


def test_bad_proof_requests() -> None:
    with pytest.raises(ProofError) as e:
        T.required_tiles_for_inclusion(10, 10)
    assert e.value.reason == "index_out_of_range"
    with pytest.raises(ProofError) as e:
        T.inclusion_proof_from_tiles(-1, 10, FULL_STORE)
    assert e.value.reason == "index_out_of_range"
    with pytest.raises(ProofError) as e:
        T.required_tiles_for_consistency(0, 10)
    assert e.value.reason == "empty_old_tree"
    with pytest.raises(ProofError) as e:
        T.consistency_proof_from_tiles(11, 10, FULL_STORE)
    assert e.value.reason == "size_order"
    assert T.consistency_proof_from_tiles(10, 10, {}) == []
    with pytest.raises(ProofError):
        T.tiles_for_size(-1)


def test_proofs_of_a_ten_million_leaf_tree_are_fast() -> None:
    # Tile contents do not change the work, so random tiles of the right
    # widths stand in for a real 10M-leaf log.
    size = 10_000_000
    rng = random.Random(4)
    needed = (
        T.required_tiles_for_inclusion(9_876_543, size)
        | T.required_tiles_for_consistency(6_543_210, size)
        | T.required_tiles_for_root(size)
    )
    assert len(needed) < 20
    tiles = {(lv, i): rng.randbytes(w * 32) for lv, i, w in needed}
    start = time.perf_counter()
    for _ in range(5):
        inc = T.inclusion_proof_from_tiles(9_876_543, size, tiles)
        cons = T.consistency_proof_from_tiles(6_543_210, size, tiles)
        T.root_from_tiles(size, tiles)
    per_round = (time.perf_counter() - start) / 5
    assert len(inc) == M._inclusion_proof_length(9_876_543, size) == 22
    assert len(cons) == M._consistency_proof_length(6_543_210, size)
    # The target is < 20 ms; the bound is loose for busy CI machines.
    assert per_round < 0.2, per_round
