"""Receipts built from the log in PostgreSQL: the one builder behind `cuentas receipt` and the dashboard.

A receipt (:mod:`schemas.receipt`, format v2) is the event, its inclusion
proof, a signed checkpoint with the witnesses' cosignatures, and the registry
entry that admitted the key the event names with that entry's own inclusion
proof in the same checkpoint.  Everything is read from the log through
:mod:`infra.log_store` (entries, hash tiles, checkpoints); the choice of the
registry entry is the pure :func:`schemas.receipt.admission_for`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra import log_store
from infra.log_store import LogEntry
from schemas.envelope import parse_envelope
from schemas.errors import MalformedInput, UnavailableService
from schemas.receipt import PublisherProof, Receipt, admission_for, build_receipt

__all__ = [
    "LogCheckpoint",
    "LogReceipt",
    "checkpoint_covering",
    "find_receipt",
    "publisher_proof",
    "receipt_at",
    "receipt_for",
    "receipts_for",
]

#: Logged events are re-read with a generous limit: one accepted under an
#: earlier, larger MAX_EVENT_BYTES must stay readable.
_MAX_LOGGED_BYTES = 1 << 20


@dataclass(frozen=True)
class LogCheckpoint:
    size: int
    note: str  # the log's signed note with the cosignature lines merged in
    cosigned: bool


@dataclass(frozen=True)
class LogReceipt:
    """An event's log entry and, once a checkpoint covers it, its receipt."""

    entry: LogEntry
    receipt: Receipt | None
    cosigned: bool = False


def checkpoint_covering(cur: Any, size: int, *, cosigned: bool | None = True) -> LogCheckpoint | None:
    """The newest checkpoint of at least ``size`` leaves.

    ``cosigned``: True only a witness-cosigned one, False any, None a
    cosigned one if there is one, else any.
    """
    if cosigned is not False:
        row = log_store.latest_checkpoint_row(cur, min_size=size, cosigned=True)
        if row is not None:
            return LogCheckpoint(row[0], row[2], True)
        if cosigned:
            return None
    row = log_store.latest_checkpoint_row(cur, min_size=size)
    if row is None:
        return None
    # A checkpoint found without asking for cosignatures may still carry some.
    return LogCheckpoint(row[0], row[2], bool(log_store.cosignatures_of(cur, row[0])))


def publisher_proof(cur: Any, leaf: bytes, index: int, size: int) -> PublisherProof | None:
    """The registry entry that admitted the key of the event ``leaf`` (logged at ``index``), proven at ``size``.

    None for events no logged registry entry admits (the registry
    authority's own events): their receipts stay v1, "publisher key not proven".
    """
    env = parse_envelope(leaf, max_bytes=_MAX_LOGGED_BYTES)
    candidates = [
        (e.index, parse_envelope(e.leaf, max_bytes=_MAX_LOGGED_BYTES))
        for e in log_store.registry_entries(cur, env.publisher_id)
        if e.index < index
    ]
    found = admission_for(env, index, candidates)
    if found is None:
        return None
    at, entry = found
    return PublisherProof(json.loads(entry.leaf_bytes()), at, tuple(log_store.inclusion(cur, at, size)))


def receipt_at(cur: Any, entry: LogEntry, checkpoint: LogCheckpoint) -> Receipt:
    """The receipt of a logged event against one checkpoint that covers it."""
    size = checkpoint.size
    if entry.index >= size:
        raise MalformedInput(
            f"leaf {entry.index} is not in the checkpoint of size {size}", reason="index_out_of_range"
        )
    proof = log_store.inclusion(cur, entry.index, size)
    return build_receipt(
        entry.leaf, entry.index, size, proof, checkpoint.note,
        publisher_proof=publisher_proof(cur, entry.leaf, entry.index, size),
    )


def find_receipt(cur: Any, event_id: str, *, cosigned: bool | None = None) -> LogReceipt | None:
    """The event's entry and its receipt (None while no checkpoint covers it); None if not logged."""
    e = log_store.entry_by_event_id(cur, event_id)
    if e is None:
        return None
    cp = checkpoint_covering(cur, e.index + 1, cosigned=cosigned)
    if cp is None:
        return LogReceipt(e, None)
    return LogReceipt(e, receipt_at(cur, e, cp), cp.cosigned)


def _no_checkpoint(index: int, require_cosigned: bool) -> UnavailableService:
    what = "witness-cosigned " if require_cosigned else ""
    return UnavailableService(
        f"no {what}checkpoint covers leaf {index} yet; try again in a few seconds"
    )


def receipt_for(cur: Any, event_id: str, *, require_cosigned: bool = True) -> Receipt:
    """The receipt of one logged event; one-line errors when it is not logged or not yet checkpointed."""
    found = find_receipt(cur, event_id, cosigned=require_cosigned)
    if found is None:
        raise MalformedInput(f"event {event_id} is not in the log (yet)", reason="unknown_event")
    if found.receipt is None:
        raise _no_checkpoint(found.entry.index, require_cosigned)
    return found.receipt


def receipts_for(cur: Any, event_ids: Sequence[str], *, require_cosigned: bool = True) -> list[Receipt]:
    """Receipts of several logged events against ONE checkpoint covering them all, in log order."""
    entries = log_store.entries_by_event_ids(cur, event_ids)
    missing = [e for e in event_ids if e not in entries]
    if missing:
        raise MalformedInput(
            f"event {missing[0]} is not in the log (yet)"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            reason="unknown_event",
        )
    if not entries:
        return []
    ordered = sorted(entries.values(), key=lambda e: e.index)
    cp = checkpoint_covering(cur, ordered[-1].index + 1, cosigned=require_cosigned)
    if cp is None:
        raise _no_checkpoint(ordered[-1].index, require_cosigned)
    return [receipt_at(cur, e, cp) for e in ordered]
