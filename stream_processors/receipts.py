"""Build receipts from PostgreSQL: the event, its inclusion proof, a cosigned checkpoint."""

from __future__ import annotations

from typing import Any

from infra.log_store import entry_by_event_id, inclusion, latest_checkpoint_row, publisher_key_for
from schemas.errors import MalformedInput, UnavailableService
from schemas.receipt import Receipt, build_receipt

__all__ = ["receipt_for"]


def receipt_for(cur: Any, event_id: str, *, require_cosigned: bool = True) -> Receipt:
    e = entry_by_event_id(cur, event_id)
    if e is None:
        raise MalformedInput(f"event {event_id} is not in the log (yet)", reason="unknown_event")
    idx = e.index
    cp = latest_checkpoint_row(cur, min_size=idx + 1, cosigned=require_cosigned)
    if cp is None:
        raise UnavailableService(
            f"no {'witness-cosigned ' if require_cosigned else ''}checkpoint covers leaf {idx} yet; try again in a few seconds"
        )
    size, _root, note = cp
    proof = inclusion(cur, idx, size)
    return build_receipt(e.leaf, idx, size, proof, note, publisher_key_for(cur, e.publisher_id))
