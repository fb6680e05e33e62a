"""A witness refuses a forked or rolled-back log, raises the alarm, and never cosigns past it.

A dishonest log operator (played here by the test, with the real log key)
rewrites history: it replaces the log with another one that is bigger but
does not extend what the witness cosigned (a fork), and later shows an older,
smaller checkpoint (a rollback).  Both checkpoints carry valid log
signatures; only the witness's consistency check catches them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import log_store
from infra.db import connect
from infra.identities import PlatformKeys
from schemas.witness import ForkDetected, RollbackDetected
from stream_processors.checkpointer import make_checkpoint
from stream_processors.witness_runner import Witness

pytestmark = pytest.mark.integration


def leaves(tag: str, n: int) -> list[log_store.NewLeaf]:
    return [log_store.NewLeaf(f"{tag}{i}", "transfer.sent", "p", i + 1, datetime(2026, 1, 1, tzinfo=UTC),
                               f"{tag}-leaf-{i}".encode()) for i in range(n)]


def test_witness_refuses_fork_and_rollback(migrated, tmp_path):
    s = migrated
    keys = PlatformKeys.load(s)
    w = Witness("witness.test", Ed25519PrivateKey.generate(), keys.log.verifier, tmp_path / "w.json")
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            log_store.append(cur, leaves("honest", 10))
            make_checkpoint(cur, keys.log)
        with conn, conn.cursor() as cur:
            assert w.step(cur) == 10
            log_store.append(cur, leaves("more", 5))
            make_checkpoint(cur, keys.log)
        with conn, conn.cursor() as cur:
            assert w.step(cur) == 15  # honest growth: consistent, cosigned

        # the operator rewrites history: a different log of 20 leaves, validly signed
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM cosignatures; DELETE FROM checkpoints; DELETE FROM log_entries;"
                        " DELETE FROM log_tiles; UPDATE log_state SET size = 0, frontier = '',"
                        " root = decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex')")
            log_store.append(cur, leaves("forged", 20))
            make_checkpoint(cur, keys.log)
        # the witness process refuses, and records the alarm itself
        with pytest.raises(ForkDetected):
            w.run(s.database_url, s.database_schema, once=True)
        with pytest.raises(ForkDetected):
            w.run(s.database_url, s.database_schema, once=True)  # still refusing; one alarm per offer
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM cosignatures")
            assert cur.fetchone()[0] == 0  # nothing cosigned past the fork
            cur.execute("SELECT reason, cosigned_size, offered_size FROM witness_alarms")
            assert cur.fetchall() == [("fork", 15, 20)]
        assert w.load_state().size == 15  # the witness still holds what it cosigned

        # a rollback: the operator shows an older, smaller tree
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM checkpoints; DELETE FROM log_entries; DELETE FROM log_tiles;"
                        " UPDATE log_state SET size = 0, frontier = '',"
                        " root = decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex')")
            log_store.append(cur, leaves("honest", 10))
            make_checkpoint(cur, keys.log)
        with pytest.raises(RollbackDetected), conn, conn.cursor() as cur:
            w.step(cur)
    finally:
        conn.close()
