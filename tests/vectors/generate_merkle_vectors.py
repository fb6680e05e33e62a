"""Generate tests/vectors/merkle_vectors.json from a deliberately naive RFC 9162 reference.

Standard library only, and independent of ``schemas.merkle``: MTH, PATH and
PROOF/SUBPROOF are written exactly as the recursive definitions of RFC 9162
sections 2.1.1, 2.1.3.1 and 2.1.4.1, so the vectors check the production code
rather than echo it.  tests/unit/test_merkle.py re-runs :func:`generate` and
compares with the committed file, so the file cannot drift from these rules.

Run from the repository root:  python tests/vectors/generate_merkle_vectors.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("merkle_vectors.json")

#: Leaves 0-7 are the RFC 6962 test-vector leaves used by Certificate
#: Transparency and Go implementations; the rest extend them to cover sizes
#: past the 16 power-of-two boundary.
LEAVES: list[bytes] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
] + [f"leaf {i}".encode() for i in range(8, 17)]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 2.1.1."""
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = k_split(n)
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = k_split(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_split(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1 (0 < m <= n)."""
    return subproof(m, d, True)


def generate() -> dict[str, Any]:
    n_max = len(LEAVES)
    return {
        "description": "RFC 9162 2.1 Merkle tree vectors from a naive recursive reference; "
        "regenerate with tests/vectors/generate_merkle_vectors.py",
        "leaves": [leaf.hex() for leaf in LEAVES],
        "roots": [mth(LEAVES[:n]).hex() for n in range(n_max + 1)],
        "inclusion": [
            {"index": m, "size": n, "path": [h.hex() for h in path(m, LEAVES[:n])]}
            for n in range(1, n_max + 1)
            for m in range(n)
        ],
        "consistency": [
            {"size1": m, "size2": n, "proof": [h.hex() for h in proof(m, LEAVES[:n])]}
            for n in range(1, n_max + 1)
            for m in range(1, n + 1)
        ],
    }


def render() -> str:
    return json.dumps(generate(), indent=1) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
