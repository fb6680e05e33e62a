"""Build receipts from PostgreSQL: the event, its inclusion proof, a cosigned checkpoint."""

from __future__ import annotations

from typing import Any

from schemas.errors import MalformedInput, UnavailableService
from schemas.receipt import Receipt, build_receipt
from stream_processors.log_reader import entry_by_event_id, inclusion, latest_checkpoint_row

__all__ = ["receipt_for", "publisher_key_for"]


def publisher_key_for(cur: Any, publisher_id: str) -> str | None:
    """The verifier key under which the registry admitted ``publisher_id`` (latest rotation wins)."""
    cur.execute(
        "SELECT convert_from(leaf, 'UTF8')::jsonb -> 'payload' FROM log_entries"
        " WHERE event_type IN ('publisher.registered', 'publisher.key_rotated')"
        " AND convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' = %s ORDER BY idx DESC LIMIT 1",
        (publisher_id,),
    )
    row = cur.fetchone()
    if not row:
        return None
    p = row[0]
    key = p.get("new_public_key") or p.get("public_key")
    return str(key) if key else None


def receipt_for(cur: Any, event_id: str, *, require_cosigned: bool = True) -> Receipt:
    e = entry_by_event_id(cur, event_id)
    if e is None:
        raise MalformedInput(f"event {event_id} is not in the log (yet)", reason="unknown_event")
    idx, leaf, _etype, publisher = e
    cp = latest_checkpoint_row(cur, min_size=idx + 1, cosigned=require_cosigned)
    if cp is None:
        raise UnavailableService(
            f"no {'witness-cosigned ' if require_cosigned else ''}checkpoint covers leaf {idx} yet; try again in a few seconds"
        )
    size, _root, note = cp
    proof = inclusion(cur, idx, size)
    return build_receipt(leaf, idx, size, proof, note, publisher_key_for(cur, publisher))
