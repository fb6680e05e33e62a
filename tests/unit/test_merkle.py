"""schemas.merkle against a naive RFC 9162 reference, pinned vectors and corruptions."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import merkle as M
from schemas.errors import ProofError, VerificationError

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


# --------------------------------------------------------------------------- naive reference
#
# Deliberately naive: MTH, PATH and PROOF/SUBPROOF exactly as the recursive
# definitions of RFC 9162 2.1.1, 2.1.3.1 and 2.1.4.1, over ranges of one leaf
# list.  The only concession to speed is memoizing MTH of a range, which does
# not change what is computed.


def _sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Naive:
    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.memo: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        key = (lo, hi)
        if key not in self.memo:
            n = hi - lo
            if n == 0:
                r = _sha(b"")
            elif n == 1:
                r = _sha(b"\x00" + self.leaves[lo])
            else:
                k = _k(n)
                r = _sha(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
            self.memo[key] = r
        return self.memo[key]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _k(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = _k(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self.subproof(m, 0, n, True)


def inclusion_shape(index: int, size: int) -> tuple[str, ...]:
    """The hash operations RFC 9162 2.1.3.2 performs for (index, size): two
    (index, size) pairs with the same shape rebuild the same root from the
    same leaf hash and path, which is why a root alone does not pin a size."""
    fn, sn, out = index, size - 1, []
    while sn:
        if fn & 1 or fn == sn:
            out.append("L")
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            out.append("R")
        fn >>= 1
        sn >>= 1
    return tuple(out)


def consistency_shape(size1: int, size2: int) -> tuple[object, ...]:
    """Same idea for RFC 9162 2.1.4.2."""
    fn, sn, out = size1 - 1, size2 - 1, []
    while fn & 1:
        fn >>= 1
        sn >>= 1
    while sn:
        if fn & 1 or fn == sn:
            out.append("B")
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            out.append("R")
        fn >>= 1
        sn >>= 1
    return (size1 & (size1 - 1) == 0, tuple(out))


LEAVES_300 = [f"leaf-{i}".encode() for i in range(300)]
HASHES_300 = [M.leaf_hash(d) for d in LEAVES_300]
NAIVE_300 = Naive(LEAVES_300)


def _flip(b: bytes, bit: int = 0) -> bytes:
    out = bytearray(b)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# --------------------------------------------------------------------------- pinned values


def test_known_values() -> None:
    assert M.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert M.root_hash([]) == M.EMPTY_ROOT
    assert M.root_from_leaf_hashes([]) == M.EMPTY_ROOT
    assert M.frontier_root([]) == M.EMPTY_ROOT
    # Leaf hash of the empty leaf, and the RFC 6962 test leaves' roots.
    assert M.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert M.root_hash([b""]) == M.leaf_hash(b"")
    assert M.node_hash(b"\x00" * 32, b"\x11" * 32) == _sha(b"\x01" + b"\x00" * 32 + b"\x11" * 32)
    ct_leaves = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        bytes(range(0x60, 0x70)),
    ]
    assert M.root_hash(ct_leaves[:2]).hex() == (
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
    )
    assert M.root_hash(ct_leaves[:5]).hex() == (
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"
    )
    assert M.root_hash(ct_leaves).hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


# --------------------------------------------------------------------------- vector file


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_merkle_vectors", VECTORS / "generate_merkle_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "merkle_vectors.json").read_text("utf-8"))
    return data


def test_vector_file_is_what_the_generator_produces() -> None:
    gen = _load_generator()
    assert gen.generate() == _vectors()
    assert gen.render() == (VECTORS / "merkle_vectors.json").read_text("utf-8")


def test_vectors_against_production_and_inline_reference() -> None:
    v = _vectors()
    leaves = [bytes.fromhex(x) for x in v["leaves"]]
    naive = Naive(leaves)
    roots = [bytes.fromhex(r) for r in v["roots"]]
    for n, root in enumerate(roots):
        assert M.root_hash(leaves[:n]) == root == naive.mth(0, n)
    for case in v["inclusion"]:
        m, n = case["index"], case["size"]
        path = [bytes.fromhex(h) for h in case["path"]]
        assert M.inclusion_proof(m, leaves[:n]) == path == naive.path(m, 0, n)
        M.verify_inclusion(M.leaf_hash(leaves[m]), m, n, path, roots[n])
    for case in v["consistency"]:
        m, n = case["size1"], case["size2"]
        proof = [bytes.fromhex(h) for h in case["proof"]]
        assert M.consistency_proof(m, leaves[:n]) == proof == naive.proof(m, n)
        M.verify_consistency(m, n, proof, roots[m], roots[n])


# --------------------------------------------------------------------------- exhaustive


def test_roots_up_to_300() -> None:
    for n in range(301):
        assert M.root_from_leaf_hashes(HASHES_300[:n]) == NAIVE_300.mth(0, n)


def test_inclusion_every_index_and_size_up_to_300() -> None:
    for n in range(1, 301):
        hashes = HASHES_300[:n]
        root = NAIVE_300.mth(0, n)
        for m in range(n):
            proof = M.inclusion_proof_from_hashes(m, hashes)
            assert proof == NAIVE_300.path(m, 0, n), (m, n)
            M.verify_inclusion(hashes[m], m, n, proof, root)


def _check_consistency(m: int, n: int) -> None:
    proof = M.consistency_proof_from_hashes(m, HASHES_300[:n])
    assert proof == NAIVE_300.proof(m, n), (m, n)
    M.verify_consistency(m, n, proof, NAIVE_300.mth(0, m), NAIVE_300.mth(0, n))


def test_consistency_full_grid_up_to_64() -> None:
    for n in range(1, 65):
        for m in range(1, n + 1):
            _check_consistency(m, n)


def test_consistency_sampled_pairs_up_to_300() -> None:
    rng = random.Random(9162)
    pairs = {(m, n) for n in (127, 128, 129, 255, 256, 257, 299, 300) for m in range(1, n + 1, 7)}
    while len(pairs) < 2500:
        n = rng.randint(65, 300)
        pairs.add((rng.randint(1, n), n))
    for m, n in sorted(pairs):
        _check_consistency(m, n)


# --------------------------------------------------------------------------- edge cases


def test_inclusion_edge_cases() -> None:
    h = HASHES_300
    root = NAIVE_300.mth(0, 5)
    proof = M.inclusion_proof_from_hashes(2, h[:5])
    for index, size in ((5, 5), (6, 5), (0, 0), (-1, 5)):
        with pytest.raises(ProofError) as e:
            M.verify_inclusion(h[2], index, size, proof, root)
        assert e.value.reason == "index_out_of_range"
    with pytest.raises(ProofError) as e:
        M.verify_inclusion(h[2], 2, -1, proof, root)
    assert e.value.reason == "bad_size"
    # Single-leaf tree: empty path and root = leaf hash.
    M.verify_inclusion(h[0], 0, 1, [], h[0])
    with pytest.raises(ProofError) as e:
        M.verify_inclusion(h[0], 0, 1, [h[1]], h[0])
    assert e.value.reason == "wrong_proof_length"
    assert (e.value.expected, e.value.got) == (0, 1)
    with pytest.raises(ProofError) as e:
        M.verify_inclusion(h[2], 2, 5, proof[:-1], root)
    assert e.value.reason == "wrong_proof_length"
    assert (e.value.expected, e.value.got) == (len(proof), len(proof) - 1)
    with pytest.raises(ProofError) as e:
        M.verify_inclusion(h[3], 2, 5, proof, root)
    assert e.value.reason == "root_mismatch"
    assert e.value.expected == root.hex() and isinstance(e.value.got, str)
    # ProofError is both a VerificationError and a ValueError.
    assert isinstance(e.value, VerificationError) and isinstance(e.value, ValueError)
    # Generation refuses what verification refuses.
    for bad in (-1, 5):
        with pytest.raises(ProofError) as e:
            M.inclusion_proof(bad, LEAVES_300[:5])
        assert e.value.reason == "index_out_of_range"
    with pytest.raises(ProofError):
        M.inclusion_proof(0, [])


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_every_hash_must_be_32_bytes(length: int) -> None:
    h = HASHES_300
    bad = b"\x07" * length
    proof = M.inclusion_proof_from_hashes(2, h[:5])
    root = NAIVE_300.mth(0, 5)
    calls: list[Callable[[], object]] = [
        lambda: M.verify_inclusion(bad, 2, 5, proof, root),
        lambda: M.verify_inclusion(h[2], 2, 5, proof, bad),
        lambda: M.verify_inclusion(h[2], 2, 5, [*proof[:-1], bad], root),
    ]
    cproof = M.consistency_proof_from_hashes(3, h[:7])
    r3, r7 = NAIVE_300.mth(0, 3), NAIVE_300.mth(0, 7)
    calls += [
        lambda: M.verify_consistency(3, 7, cproof, bad, r7),
        lambda: M.verify_consistency(3, 7, cproof, r3, bad),
        lambda: M.verify_consistency(3, 7, [bad, *cproof[1:]], r3, r7),
        lambda: M.verify_consistency(3, 3, [], bad, bad),
        lambda: M.root_from_leaf_hashes([h[0], bad]),
        lambda: M.inclusion_proof_from_hashes(0, [h[0], bad]),
        lambda: M.consistency_proof_from_hashes(1, [h[0], bad]),
        lambda: M.append_leaf_hashes([], 0, [bad]),
        lambda: M.frontier_root([bad]),
    ]
    for call in calls:
        with pytest.raises(ProofError) as e:
            call()
        assert e.value.reason == "bad_hash_length"
        assert e.value.expected == 32


def test_consistency_edge_cases() -> None:
    h = HASHES_300
    r = [NAIVE_300.mth(0, n) for n in range(10)]
    # Equal sizes: only an empty proof and equal roots.
    M.verify_consistency(5, 5, [], r[5], r[5])
    with pytest.raises(ProofError) as e:
        M.verify_consistency(5, 5, [r[1]], r[5], r[5])
    assert (e.value.reason, e.value.expected, e.value.got) == ("wrong_proof_length", 0, 1)
    with pytest.raises(ProofError) as e:
        M.verify_consistency(5, 5, [], r[5], r[6])
    assert e.value.reason == "root_mismatch"
    assert (e.value.expected, e.value.got) == (r[5].hex(), r[6].hex())
    # size1 = 0 is an error, never trivially consistent.
    for size2 in (0, 1, 9):
        with pytest.raises(ProofError) as e:
            M.verify_consistency(0, size2, [], M.EMPTY_ROOT, r[size2])
        assert e.value.reason == "empty_old_tree"
        with pytest.raises(ProofError) as e:
            M.consistency_proof_from_hashes(0, h[:size2])
        assert e.value.reason == "empty_old_tree"
    # Order and signs.
    with pytest.raises(ProofError) as e:
        M.verify_consistency(6, 5, [], r[6], r[5])
    assert e.value.reason == "size_order"
    with pytest.raises(ProofError) as e:
        M.consistency_proof_from_hashes(6, h[:5])
    assert e.value.reason == "size_order"
    with pytest.raises(ProofError) as e:
        M.verify_consistency(-1, 5, [], r[1], r[5])
    assert e.value.reason == "bad_size"
    # Empty proof between different sizes (step 1), even when size1 is a power of two.
    for m in (1, 2, 3, 4):
        with pytest.raises(ProofError) as e:
            M.verify_consistency(m, 9, [], r[m], r[9])
        assert e.value.reason == "wrong_proof_length"
        assert e.value.expected == len(NAIVE_300.proof(m, 9))
    assert M.consistency_proof_from_hashes(7, h[:7]) == []
    # Old and new root mismatches are told apart.
    proof = M.consistency_proof_from_hashes(3, h[:7])
    with pytest.raises(ProofError) as e:
        M.verify_consistency(3, 7, proof, r[4], r[7])
    assert e.value.reason == "old_root_mismatch"
    assert e.value.expected == r[4].hex()
    with pytest.raises(ProofError) as e:
        M.verify_consistency(3, 7, proof, r[3], r[8])
    assert e.value.reason == "root_mismatch"
    # With a power-of-two size1 the old root is the seed: a wrong one shows as old_root_mismatch.
    proof = M.consistency_proof_from_hashes(4, h[:7])
    with pytest.raises(ProofError) as e:
        M.verify_consistency(4, 7, proof, r[3], r[7])
    assert e.value.reason in ("old_root_mismatch", "root_mismatch")


def test_inclusion_proof_for_one_size_fails_for_every_other_size() -> None:
    for n in range(1, 40):
        for m in range(n):
            proof = NAIVE_300.path(m, 0, n)
            for n2 in range(1, 48):
                if n2 == n:
                    continue
                if m >= n2:
                    with pytest.raises(ProofError):
                        M.verify_inclusion(HASHES_300[m], m, n2, proof, NAIVE_300.mth(0, n))
                    continue
                # Against the real root of the other size: always refused.
                with pytest.raises(ProofError):
                    M.verify_inclusion(HASHES_300[m], m, n2, proof, NAIVE_300.mth(0, n2))
                # Against the original root: refused unless RFC 9162 2.1.3.2
                # performs exactly the same hashes for both sizes (documented:
                # the checkpoint, not the proof, binds the size).
                same = inclusion_shape(m, n2) == inclusion_shape(m, n)
                try:
                    M.verify_inclusion(HASHES_300[m], m, n2, proof, NAIVE_300.mth(0, n))
                    ok = True
                except ProofError:
                    ok = False
                assert ok == same, (m, n, n2)


def test_consistency_proof_for_one_size_pair_fails_for_every_other() -> None:
    for n in range(2, 24):
        for m in range(1, n):
            proof = NAIVE_300.proof(m, n)
            r1, r2 = NAIVE_300.mth(0, m), NAIVE_300.mth(0, n)
            for m2 in range(1, 28):
                for n2 in range(m2 + 1, 28):
                    if (m2, n2) == (m, n):
                        continue
                    with pytest.raises(ProofError):
                        M.verify_consistency(
                            m2, n2, proof, NAIVE_300.mth(0, m2), NAIVE_300.mth(0, n2)
                        )
                    same = consistency_shape(m2, n2) == consistency_shape(m, n)
                    try:
                        M.verify_consistency(m2, n2, proof, r1, r2)
                        ok = True
                    except ProofError:
                        ok = False
                    assert ok == same, (m, n, m2, n2)


def test_proof_lengths_reported_match_reference() -> None:
    for n in range(1, 70):
        for m in range(n):
            assert M._inclusion_proof_length(m, n) == len(NAIVE_300.path(m, 0, n))
        for m in range(1, n):
            assert M._consistency_proof_length(m, n) == len(NAIVE_300.proof(m, n))


# --------------------------------------------------------------------------- corruption (hypothesis)

_MUTATIONS = [
    "flip",
    "drop",
    "add",
    "dup",
    "swap",
    "short",
    "long",
    "leaf",
    "root",
    "index",
    "size",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 200),
    data=st.data(),
    mutation=st.sampled_from(_MUTATIONS),
)
def test_corrupted_inclusion_proofs_always_fail(n: int, data: st.DataObject, mutation: str) -> None:
    m = data.draw(st.integers(0, n - 1), label="index")
    proof = M.inclusion_proof_from_hashes(m, HASHES_300[:n])
    leaf, root, size, index = HASHES_300[m], NAIVE_300.mth(0, n), n, m
    if mutation in ("flip", "drop", "dup", "short", "long") and not proof:
        mutation = "add"
    if mutation == "swap" and len(proof) < 2:
        mutation = "root"
    if mutation == "flip":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = _flip(proof[i], data.draw(st.integers(0, 255)))
    elif mutation == "drop":
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "add":
        extra = data.draw(st.binary(min_size=32, max_size=32))
        proof.insert(data.draw(st.integers(0, len(proof))), extra)
    elif mutation == "dup":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof.insert(i, proof[i])
    elif mutation == "swap":
        i = data.draw(st.integers(0, len(proof) - 2))
        j = data.draw(st.integers(i + 1, len(proof) - 1))
        proof[i], proof[j] = proof[j], proof[i]
    elif mutation == "short":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = proof[i][: data.draw(st.integers(0, 31))]
    elif mutation == "long":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = proof[i] + data.draw(st.binary(min_size=1, max_size=8))
    elif mutation == "leaf":
        leaf = _flip(leaf, data.draw(st.integers(0, 255)))
    elif mutation == "root":
        root = _flip(root, data.draw(st.integers(0, 255)))
    elif mutation == "index":
        index = data.draw(st.integers(-3, n + 3).filter(lambda x: x != m))
    elif mutation == "size":
        size = data.draw(st.integers(-2, 260).filter(lambda x: x != n))
        if 0 <= m < size and inclusion_shape(m, size) == inclusion_shape(m, n):
            size = n + (1 << 20)  # same shape would rebuild the same root, by design
    with pytest.raises(ProofError):
        M.verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(2, 200),
    data=st.data(),
    mutation=st.sampled_from([*_MUTATIONS, "old_root", "size1"]),
)
def test_corrupted_consistency_proofs_always_fail(
    n: int, data: st.DataObject, mutation: str
) -> None:
    m = data.draw(st.integers(1, n - 1), label="size1")
    proof = M.consistency_proof_from_hashes(m, HASHES_300[:n])
    r1, r2 = NAIVE_300.mth(0, m), NAIVE_300.mth(0, n)
    size1, size2 = m, n
    if mutation == "swap" and len(proof) < 2:
        mutation = "flip"
    if mutation in ("flip", "leaf"):
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = _flip(proof[i], data.draw(st.integers(0, 255)))
    elif mutation == "drop":
        del proof[data.draw(st.integers(0, len(proof) - 1))]
    elif mutation == "add":
        extra = data.draw(st.binary(min_size=32, max_size=32))
        proof.insert(data.draw(st.integers(0, len(proof))), extra)
    elif mutation == "dup":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof.insert(i, proof[i])
    elif mutation == "swap":
        i = data.draw(st.integers(0, len(proof) - 2))
        j = data.draw(st.integers(i + 1, len(proof) - 1))
        proof[i], proof[j] = proof[j], proof[i]
    elif mutation == "short":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = proof[i][: data.draw(st.integers(0, 31))]
    elif mutation == "long":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof[i] = proof[i] + data.draw(st.binary(min_size=1, max_size=8))
    elif mutation == "root":
        r2 = _flip(r2, data.draw(st.integers(0, 255)))
    elif mutation == "old_root":
        r1 = _flip(r1, data.draw(st.integers(0, 255)))
    elif mutation in ("index", "size1"):
        size1 = data.draw(st.integers(-2, n + 3).filter(lambda x: x != m))
        if 0 < size1 < n and consistency_shape(size1, n) == consistency_shape(m, n):
            size1 = n + 1
    elif mutation == "size":
        size2 = data.draw(st.integers(-2, 260).filter(lambda x: x != n))
        if m < size2 and consistency_shape(m, size2) == consistency_shape(m, n):
            size2 = m - 1
    with pytest.raises(ProofError):
        M.verify_consistency(size1, size2, proof, r1, r2)


# --------------------------------------------------------------------------- frontier


def test_append_leaf_hashes_in_random_batches() -> None:
    rng = random.Random(6962)
    for _ in range(20):
        total = rng.randint(0, 300)
        frontier: list[bytes] = []
        size = 0
        seen: dict[tuple[int, int], bytes] = {}
        while size < total:
            batch = HASHES_300[size : min(total, size + rng.randint(0, 40))]
            before = list(frontier)
            new_frontier, nodes = M.append_leaf_hashes(frontier, size, batch)
            assert frontier == before  # the input is not modified
            for height, index, h in nodes:
                assert (height, index) not in seen
                assert h == NAIVE_300.mth(index << height, (index + 1) << height)
                seen[(height, index)] = h
            frontier, size = new_frontier, size + len(batch)
            assert len(frontier) == size.bit_count()
            assert M.frontier_root(frontier) == NAIVE_300.mth(0, size)
        # Every complete subtree of the final tree was reported exactly once.
        want = {
            (height, index)
            for height in range(total.bit_length() + 1)
            for index in range(total >> height)
        }
        assert set(seen) == want


def test_append_leaf_hashes_rejects_bad_frontier() -> None:
    with pytest.raises(ProofError) as e:
        M.append_leaf_hashes([HASHES_300[0]], 3, [HASHES_300[3]])
    assert (e.value.reason, e.value.expected, e.value.got) == ("frontier_size", 2, 1)
    with pytest.raises(ProofError) as e:
        M.append_leaf_hashes([], 3, [])
    assert (e.value.reason, e.value.expected, e.value.got) == ("frontier_size", 2, 0)
    with pytest.raises(ProofError) as e:
        M.append_leaf_hashes([], -1, [])
    assert e.value.reason == "bad_size"
