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
                assert log_store.root_at(cur, size) == root
                for _ in range(5):
                    i = rng.randrange(size)
                    proof = log_store.inclusion(cur, i, size)
                    assert proof == merkle.inclusion_proof_from_hashes(i, hashes)
                    merkle.verify_inclusion(hashes[i], i, size, proof, root)
                    old = rng.randint(1, size)
                    cproof = log_store.consistency(cur, old, size)
                    assert cproof == merkle.consistency_proof_from_hashes(old, hashes)
                    merkle.verify_consistency(old, size, cproof, merkle.root_from_leaf_hashes(hashes[:old]), root)
            if batch == 20:
                # a proof for an older tree size is still served from the grown tiles
                with conn, conn.cursor() as cur:
                    assert log_store.root_at(cur, 100) == merkle.root_from_leaf_hashes(hashes[:100])
    finally:
        conn.close()
    assert len(leaves) > 65_536  # the level-1 tiles' boundary was crossed


def test_entries_checkpoints_and_cosignatures_round_trip(migrated):
    s = migrated
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    leaves = [f'{{"n":{i}}}'.encode() for i in range(5)]
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            assert log_store.latest_checkpoint(cur) is None and log_store.last_checkpoint_size(cur) == 0
            log_store.append(cur, [log_store.NewLeaf(f"e{i}", "transfer.sent", "op.a", i + 1, t0, leaf)
                                   for i, leaf in enumerate(leaves)])
            assert log_store.log_size(cur) == 5 and log_store.log_updated(cur)[0] == 5
            e = log_store.entry_by_event_id(cur, "e3")
            assert e == log_store.LogEntry(3, leaves[3], "transfer.sent", "op.a", t0)
            assert log_store.entry_by_event_id(cur, "nope") is None
            assert log_store.indices_of(cur, ["e4", "e0", "e4", "nope"]) == {"e4": 4, "e0": 0}
            assert log_store.indices_of(cur, []) == {}
            assert log_store.leaves_between(cur, 1, 4) == leaves[1:4]

            root3 = log_store.root_at(cur, 3)
            root5 = log_store.root_at(cur, 5)
            log_store.store_checkpoint(cur, 3, root3, "note 3\n")
            log_store.store_checkpoint(cur, 5, root5, "note 5\n")
            log_store.store_checkpoint(cur, 5, root5, "a second note of 5 is ignored\n")
            assert log_store.last_checkpoint_size(cur) == 5
            assert log_store.latest_checkpoint(cur) == (5, root5, "note 5\n")
            assert log_store.checkpoint_notes(cur) == {3: "note 3\n", 5: "note 5\n"}
            assert log_store.checkpoint_notes(cur, [5, 9]) == {5: "note 5\n"}

            # no cosignature yet: the cosigned view has nothing, the plain one the newest
            assert log_store.latest_checkpoint_row(cur, cosigned=True) is None
            log_store.store_cosignature(cur, 3, "w.b", b"\x01\x02\x03\x04", 1_700_000_000, "— w.b AAAA\n")
            log_store.store_cosignature(cur, 3, "w.a", b"\x0a\x0b\x0c\x0d", 1_700_000_001, "— w.a BBBB")
            log_store.store_cosignature(cur, 3, "w.a", b"\x0a\x0b\x0c\x0d", 1_700_000_002, "— w.a CCCC")  # once
            assert log_store.latest_checkpoint_row(cur, cosigned=True) == (3, root3, "note 3\n— w.a BBBB\n— w.b AAAA\n")
            assert log_store.latest_checkpoint_row(cur, min_size=4) == (5, root5, "note 5\n")
            assert log_store.latest_checkpoint_row(cur, min_size=6) is None
            assert [(w, k, at) for w, k, at, _ in log_store.cosignatures_of(cur, 3)] == [
                ("w.a", "0a0b0c0d", 1_700_000_001), ("w.b", "01020304", 1_700_000_000)]
            assert [(size, n) for size, _root, _at, n in log_store.checkpoint_history(cur, 10)] == [(5, 0), (3, 2)]
    finally:
        conn.close()
