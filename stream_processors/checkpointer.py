"""Signed checkpoints (C2SP tlog-checkpoint as a C2SP signed note), all kept."""

from __future__ import annotations

from typing import Any

from infra.identities import Identity
from infra.log_store import current_state, last_checkpoint_size, store_checkpoint
from schemas.note import Checkpoint, sign_checkpoint

__all__ = ["make_checkpoint"]


def make_checkpoint(cur: Any, log_identity: Identity) -> int | None:
    """Sign and store a checkpoint if the tree grew since the last one; return its size."""
    size, root, _ = current_state(cur)
    if size == 0:
        return None
    if last_checkpoint_size(cur) >= size:
        return None
    note = sign_checkpoint(Checkpoint(log_identity.name, size, root), log_identity.private_key)
    store_checkpoint(cur, size, root, note)
    return size
