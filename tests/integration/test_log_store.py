"""The log in PostgreSQL agrees with the in-memory RFC 9162 reference, for random batches.

Leaves are appended through the one writer in random batch sizes (crossing
tile boundaries at 256 and 65,536 nodes); after every batch the stored root
must equal ``schemas.merkle.root_hash`` of all leaves, and inclusion and
consistency proofs read from the tiles (one query each) must equal the
reference proofs and verify.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from infra import log_store
from infra.db import connect
from schemas import merkle
from stream_processors import log_reader

pytestmark = pytest.mark.integration


def test_random_batches_match_the_reference(migrated):
    s = migrated
    rng = random.Random(9162)
    leaves: list[bytes] = []
    conn = connect(s.database_url, s.database_schema)
    try:
        for batch in range(40):
            n = 66_000 if batch == 30 else rng.choice([1, 2, 3, 7, 31, 255, 256, 257, 600])
            new = [rng.randbytes(rng.randint(0, 80)) for _ in range(n)]
            with conn, conn.cursor() as cur:
                idx = log_store.append(cur, [
                    log_store.NewLeaf(f"e{len(leaves) + i}", "transfer.sent", "p", len(leaves) + i + 1,
                                       datetime(2026, 1, 1, tzinfo=UTC), leaf) for i, leaf in enumerate(new)])
            assert idx == list(range(len(leaves), len(leaves) + n))
            leaves.extend(new)
            size = len(leaves)
            hashes = [merkle.leaf_hash(x) for x in leaves]
            root = merkle.root_from_leaf_hashes(hashes)
            with conn, conn.cursor() as cur:
                got_size, got_root, _ = log_store.current_state(cur)
                assert (got_size, got_root) == (size, root)
                assert log_reader.root_at(cur, size) == root
                for _ in range(5):
                    i = rng.randrange(size)
                    proof = log_reader.inclusion(cur, i, size)
                    assert proof == merkle.inclusion_proof_from_hashes(i, hashes)
                    merkle.verify_inclusion(hashes[i], i, size, proof, root)
                    old = rng.randint(1, size)
                    cproof = log_reader.consistency(cur, old, size)
                    assert cproof == merkle.consistency_proof_from_hashes(old, hashes)
                    merkle.verify_consistency(old, size, cproof, merkle.root_from_leaf_hashes(hashes[:old]), root)
            if batch == 20:
                # a proof for an older tree size is still served from the grown tiles
                with conn, conn.cursor() as cur:
                    assert log_reader.root_at(cur, 100) == merkle.root_from_leaf_hashes(hashes[:100])
    finally:
        conn.close()
    assert len(leaves) > 65_536  # the level-1 tiles' boundary was crossed
