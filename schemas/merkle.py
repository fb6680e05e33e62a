"""RFC 9162 section 2.1 Merkle tree: hashes, proofs, verification, incremental appends.

Everything here is a pure function over bytes (SHA-256, no I/O) so the same code
runs in the log writer, the proof API, the witness and any client, and can be
checked against independent implementations of RFC 9162 / RFC 6962 byte for byte.

Conventions:

* A *leaf* is raw entry data; its *leaf hash* is ``SHA-256(0x00 || data)``.
* Functions named ``*_from_hashes`` take leaf hashes (what the log stores);
  the plain ones take raw leaf data and hash it first.
* Every hash handled here is exactly 32 bytes; anything else is a
  :class:`~schemas.errors.ProofError` with ``reason="bad_hash_length"``.
* Impossible proof requests and proofs that do not verify both raise
  :class:`~schemas.errors.ProofError` (a ``ValueError``) with a stable
  ``reason`` code and ``expected`` / ``got`` detail.

Reason codes: ``bad_hash_length``, ``bad_size``, ``index_out_of_range``,
``size_order``, ``empty_old_tree``, ``wrong_proof_length``, ``root_mismatch``,
``old_root_mismatch``, ``frontier_size``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from schemas.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "append_leaf_hashes",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "frontier_root",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

#: Size in bytes of every hash in the tree (SHA-256).
HASH_SIZE = 32

#: Merkle Tree Hash of the empty tree: SHA-256 of the empty string (RFC 9162 2.1.1).
EMPTY_ROOT: bytes = _sha256(b"").digest()

# Domain-separation prefixes of RFC 9162 2.1.1: they make a leaf hash and an
# interior-node hash of the same bytes different, which is what stops a leaf
# from being passed off as a subtree (second-preimage attack).
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``, the hash of one leaf (RFC 9162 2.1.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``, an interior node (RFC 9162 2.1.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------- helpers


def _hex(b: bytes) -> str:
    return b.hex()


def _check_hash(h: object, what: str) -> None:
    if not isinstance(h, bytes | bytearray | memoryview) or len(h) != HASH_SIZE:
        got = len(h) if isinstance(h, bytes | bytearray | memoryview) else type(h).__name__
        raise ProofError(
            f"{what} must be a {HASH_SIZE}-byte hash",
            reason="bad_hash_length",
            expected=HASH_SIZE,
            got=got,
        )


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            _check_hash(h, f"{what}[{i}]")


def _check_size(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{what} must be a non-negative integer", reason="bad_size", got=value)


def _largest_power_of_two_below(n: int) -> int:
    """k of RFC 9162 2.1.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of the leaf hashes ``hashes[lo:hi]`` (``hi > lo``).

    Hashing level by level and carrying an unpaired last node up unchanged
    gives exactly the RFC 9162 2.1.1 split-at-largest-power-of-two tree, with
    no recursion and one list per level instead of one call per node.
    """
    n = hi - lo
    if n == 1:
        return hashes[lo]
    sha = _sha256
    level = [sha(b"\x01" + hashes[i] + hashes[i + 1]).digest() for i in range(lo, hi - 1, 2)]
    if n & 1:
        level.append(hashes[hi - 1])
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [
            sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if odd is not None:
            level.append(odd)
    return level[0]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges [lo, hi) whose MTHs form PATH(index, D[0:size]) (RFC 9162 2.1.3.1).

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])   if m < k
                  = PATH(m - k, D[k:n]) : MTH(D[0:k]) otherwise
    The recursion is walked top-down and the collected siblings reversed, so
    the result is ordered leaf-to-root like the RFC's.  Shared with
    :mod:`schemas.tiles`, which hashes the same ranges from stored tiles.
    """
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges whose MTHs form PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1), 0 < size1 <= size2.

    SUBPROOF(m, D[m], true)  = {}
    SUBPROOF(m, D[m], false) = {MTH(D[m])}
    SUBPROOF(m, D[n], b)     = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])         if m <= k
                             = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) if m > k
    """
    out: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, size2, size1, True
    while True:
        n = hi - lo
        if m == n:
            if not whole:
                out.append((lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            whole = False
    out.reverse()
    return out


def _check_inclusion_args(index: int, size: int) -> None:
    _check_size(size, "tree size")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ProofError(
            f"leaf index {index} is not in a tree of {size} leaves",
            reason="index_out_of_range",
            expected=f"0 <= index < {size}",
            got=index,
        )


def _check_consistency_args(size1: int, size2: int) -> None:
    _check_size(size1, "size1")
    _check_size(size2, "size2")
    if size1 > size2:
        raise ProofError(
            f"old tree size {size1} is larger than new tree size {size2}",
            reason="size_order",
            expected=f"size1 <= {size2}",
            got=size1,
        )
    if size1 == 0:
        raise ProofError(
            "no consistency proof from an empty tree: it is never checkpointed as an old tree",
            reason="empty_old_tree",
            expected="size1 > 0",
            got=0,
        )


def _inclusion_proof_length(index: int, size: int) -> int:
    # Number of siblings on the path: the levels below the point where index
    # and size - 1 diverge, plus one per left-hand perfect subtree above it.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_proof_length(size1: int, size2: int) -> int:
    # Same decomposition as transparency-dev's VerifyConsistency: the
    # inclusion path of leaf size1-1 in size2, minus the levels covered by
    # the perfect subtree ending at size1, plus its seed hash unless that
    # subtree is the whole old tree (size1 a power of two).
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    start = 0 if size1 & (size1 - 1) == 0 else 1
    return start + inner - shift + border


# --------------------------------------------------------------------------- roots


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash (RFC 9162 2.1.1) of a tree given by its leaf hashes."""
    _check_hashes(hashes, "leaf hash")
    if not hashes:
        return EMPTY_ROOT
    return _range_root(hashes, 0, len(hashes))


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash (RFC 9162 2.1.1) over raw leaf data; ``EMPTY_ROOT`` for no leaves."""
    if not leaves:
        return EMPTY_ROOT
    return root_from_leaf_hashes([leaf_hash(d) for d in leaves])


# --------------------------------------------------------------------------- proof generation


def inclusion_proof_from_hashes(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[0:n]) of RFC 9162 2.1.3.1 for a tree given by its n leaf hashes.

    Ordered from the leaf's sibling up to the child of the root.  Raises
    ``ProofError(reason="index_out_of_range")`` unless ``0 <= index < n``.
    """
    _check_inclusion_args(index, len(hashes))
    _check_hashes(hashes, "leaf hash")
    return [_range_root(hashes, lo, hi) for lo, hi in _inclusion_ranges(index, len(hashes))]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[0:n]) of RFC 9162 2.1.3.1 over raw leaf data."""
    _check_inclusion_args(index, len(leaves))
    return inclusion_proof_from_hashes(index, [leaf_hash(d) for d in leaves])


def consistency_proof_from_hashes(size1: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, D[0:n]) of RFC 9162 2.1.4.1 for the tree of the n leaf hashes given.

    ``size1 == n`` gives the empty proof.  ``size1 == 0`` raises
    ``ProofError(reason="empty_old_tree")`` (see :func:`verify_consistency`),
    ``size1 > n`` raises ``reason="size_order"``.
    """
    size2 = len(hashes)
    _check_consistency_args(size1, size2)
    _check_hashes(hashes, "leaf hash")
    return [_range_root(hashes, lo, hi) for lo, hi in _consistency_ranges(size1, size2)]


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, D[0:n]) of RFC 9162 2.1.4.1; ``leaves`` is the raw data of the newer tree."""
    _check_consistency_args(size1, len(leaves))
    return consistency_proof_from_hashes(size1, [leaf_hash(d) for d in leaves])


# --------------------------------------------------------------------------- verification


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof exactly as RFC 9162 2.1.3.2 says; return None or raise.

    Raises :class:`ProofError` with ``reason``:

    * ``bad_hash_length`` -- the leaf hash, root or a proof element is not 32 bytes;
    * ``bad_size`` -- negative size;
    * ``index_out_of_range`` -- ``index >= size`` (step 1) or negative;
    * ``wrong_proof_length`` -- the path is longer or shorter than the tree
      shape requires (``expected`` is the right length);
    * ``root_mismatch`` -- the recomputed root differs (``expected`` is the
      given root, ``got`` the recomputed one, both hex).

    Note that, as in RFC 9162, a proof and root do not by themselves commit to
    the tree size: two sizes whose paths have the same shape recompute the same
    root.  The size is bound by the signed checkpoint the root comes from.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    _check_hashes(proof, "proof")
    _check_inclusion_args(index, size)

    sha = _sha256
    # Step 2.
    fn = index
    sn = size - 1
    r = bytes(leaf_hash)
    # Step 3.
    for p in proof:
        if sn == 0:
            raise ProofError(
                "inclusion proof is longer than the path to the root",
                reason="wrong_proof_length",
                expected=_inclusion_proof_length(index, size),
                got=len(proof),
            )
        if fn & 1 or fn == sn:
            r = sha(b"\x01" + p + r).digest()
            if not fn & 1:
                # fn is the last node of its level and has no right sibling:
                # climb until it is a right child again (or the root).
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    # Step 4.
    if sn != 0:
        raise ProofError(
            "inclusion proof is shorter than the path to the root",
            reason="wrong_proof_length",
            expected=_inclusion_proof_length(index, size),
            got=len(proof),
        )
    if r != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} leads to another root",
            reason="root_mismatch",
            expected=_hex(bytes(root)),
            got=_hex(r),
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check a consistency proof exactly as RFC 9162 2.1.4.2 says; return None or raise.

    Edge cases (audit-log.md):

    * ``size1 == 0`` raises ``ProofError(reason="empty_old_tree")`` whatever
      ``size2`` is: we never checkpoint an empty tree as the "old" tree, so a
      request for it is a bug, not something to accept trivially.
    * ``size1 == size2`` accepts only an empty proof (else ``wrong_proof_length``)
      and equal roots (else ``root_mismatch``).
    * ``size1 > size2`` raises ``size_order``; negative sizes ``bad_size``.
    * Every hash must be 32 bytes (``bad_hash_length``).

    Otherwise the reasons are ``wrong_proof_length`` (empty, too long or too
    short; ``expected`` is the right length), ``old_root_mismatch`` (the path
    does not rebuild ``root1``) and ``root_mismatch`` (it does not rebuild
    ``root2``), with hex ``expected`` / ``got`` roots.
    """
    _check_hash(root1, "old root")
    _check_hash(root2, "new root")
    _check_hashes(proof, "proof")
    _check_consistency_args(size1, size2)

    if size1 == size2:
        if proof:
            raise ProofError(
                "consistency proof between equal tree sizes must be empty",
                reason="wrong_proof_length",
                expected=0,
                got=len(proof),
            )
        if root1 != root2:
            raise ProofError(
                f"two different roots for the same tree size {size1}",
                reason="root_mismatch",
                expected=_hex(bytes(root1)),
                got=_hex(bytes(root2)),
            )
        return

    want_len = _consistency_proof_length(size1, size2)
    # Step 1.
    if not proof:
        raise ProofError(
            "empty consistency proof between different tree sizes",
            reason="wrong_proof_length",
            expected=want_len,
            got=0,
        )
    path: list[bytes] = list(proof)
    # Step 2: when the old tree is a perfect subtree, its root is the seed.
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    # Step 3.
    fn = size1 - 1
    sn = size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 4.
    sha = _sha256
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                "consistency proof is longer than the tree shape allows",
                reason="wrong_proof_length",
                expected=want_len,
                got=len(proof),
            )
        if fn & 1 or fn == sn:
            fr = sha(b"\x01" + c + fr).digest()
            sr = sha(b"\x01" + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError(
            "consistency proof is shorter than the tree shape requires",
            reason="wrong_proof_length",
            expected=want_len,
            got=len(proof),
        )
    if fr != root1:
        raise ProofError(
            f"consistency proof {size1}->{size2} does not rebuild the old root",
            reason="old_root_mismatch",
            expected=_hex(bytes(root1)),
            got=_hex(fr),
        )
    if sr != root2:
        raise ProofError(
            f"consistency proof {size1}->{size2} does not rebuild the new root",
            reason="root_mismatch",
            expected=_hex(bytes(root2)),
            got=_hex(sr),
        )


# --------------------------------------------------------------------------- incremental appends


def append_leaf_hashes(
    frontier: list[bytes], size: int, new_hashes: Sequence[bytes]
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a tree known only by its frontier (compact range).

    ``frontier`` holds the roots of the perfect subtrees that make up the tree
    of ``size`` leaves, largest (leftmost) first, one per set bit of ``size``
    -- the minimal state an append-only log must keep (the RFC 9162 2.1.1
    tree of n leaves is exactly these subtrees folded right to left, see
    :func:`frontier_root`).  The input list is not modified.

    Returns ``(new_frontier, new_nodes)`` where ``new_nodes`` lists every
    complete subtree node created by the append as ``(height, index, hash)``:
    height 0 entries are the new leaf hashes themselves, and a node at height
    h with index i covers leaves ``[i * 2**h, (i + 1) * 2**h)``.  Nodes come in
    creation order, so for each height the indices are increasing.
    """
    _check_size(size, "tree size")
    if len(frontier) != size.bit_count():
        raise ProofError(
            f"a tree of {size} leaves has {size.bit_count()} frontier hashes",
            reason="frontier_size",
            expected=size.bit_count(),
            got=len(frontier),
        )
    _check_hashes(frontier, "frontier")
    _check_hashes(new_hashes, "leaf hash")
    sha = _sha256
    stack = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    for h in new_hashes:
        h = bytes(h)
        nodes.append((0, size, h))
        # Each trailing 1 bit of the old size is a perfect subtree of the
        # same height as the one being carried: merge them (binary carry).
        n = size
        height = 0
        index = size
        while n & 1:
            h = sha(b"\x01" + stack.pop() + h).digest()
            height += 1
            index >>= 1
            n >>= 1
            nodes.append((height, index, h))
        stack.append(h)
        size += 1
    return stack, nodes


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """RFC 9162 root of the tree whose frontier is given (``EMPTY_ROOT`` for none).

    The split at the largest power of two below n (RFC 9162 2.1.1) makes the
    root ``H(P1, H(P2, ... H(Pk-1, Pk)))`` for perfect subtrees P1 > ... > Pk,
    so the frontier is folded right to left.
    """
    _check_hashes(frontier, "frontier")
    if not frontier:
        return EMPTY_ROOT
    sha = _sha256
    r = bytes(frontier[-1])
    for i in range(len(frontier) - 2, -1, -1):
        r = sha(b"\x01" + frontier[i] + r).digest()
    return r
