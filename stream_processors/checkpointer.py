"""Signed checkpoints (C2SP tlog-checkpoint as a C2SP signed note), all kept."""

from __future__ import annotations

from typing import Any

from infra.identities import Identity
from infra.log_store import current_state
from schemas.note import Checkpoint, sign_checkpoint

__all__ = ["make_checkpoint", "latest_checkpoint"]


def make_checkpoint(cur: Any, log_identity: Identity) -> int | None:
    """Sign and store a checkpoint if the tree grew since the last one; return its size."""
    size, root, _ = current_state(cur)
    if size == 0:
        return None
    cur.execute("SELECT coalesce(max(size), 0) FROM checkpoints")
    (last,) = cur.fetchone()
    if int(last) >= size:
        return None
    note = sign_checkpoint(Checkpoint(log_identity.name, size, root), log_identity.private_key)
    cur.execute(
        "INSERT INTO checkpoints (size, root, note) VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING",
        (size, root, note),
    )
    return size


def latest_checkpoint(cur: Any) -> tuple[int, bytes, str] | None:
    cur.execute("SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1")
    row = cur.fetchone()
    return (int(row[0]), bytes(row[1]), row[2]) if row else None
