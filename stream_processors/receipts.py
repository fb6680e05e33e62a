"""What the processors' receipt commands are about: one event, a transfer's events, a flag's evidence.

The receipts themselves are built by :mod:`infra.receipts` (the same builder
the dashboard uses); this module finds which logged events a command means:
a transfer by its receipt code's digest (``transfers.receipt_digest``, as the
dashboard's track page) or its id, its events from the reconciler's
``entity_events``; a flag's evidence and its ``flag.changed`` history.
"""

from __future__ import annotations

from typing import Any

from infra import log_store
from infra.receipts import receipt_for, receipts_for
from schemas.errors import MalformedInput
from schemas.privacy import normalize_receipt_code, receipt_digest

__all__ = [
    "flag_history",
    "flag_row",
    "receipt_for",
    "receipts_for",
    "transfer_by_code",
    "transfer_event_ids",
    "with_log_indices",
]


def transfer_by_code(cur: Any, code: str) -> str:
    """The transfer a receipt code belongs to (only its digest is looked up), or ``MalformedInput``."""
    digest = receipt_digest(normalize_receipt_code(code))
    cur.execute(
        "SELECT transfer_id FROM transfers WHERE receipt_digest = %s ORDER BY sent_at NULLS LAST, transfer_id LIMIT 1",
        (digest,),
    )
    row = cur.fetchone()
    if row is None:
        raise MalformedInput("no transfer has this receipt code (yet): check the code on your receipt",
                             reason="unknown_transfer")
    return str(row[0])


def transfer_event_ids(cur: Any, transfer_id: str) -> list[str]:
    """The logged events of a transfer (sent, paid out, cancelled, refunded), in log order."""
    cur.execute(
        "SELECT e.event_id FROM entity_events e JOIN log_entries l ON l.event_id = e.event_id"
        " WHERE e.kind = 'transfer' AND e.entity_id = %s ORDER BY l.idx",
        (transfer_id,),
    )
    ids = [str(r[0]) for r in cur.fetchall()]
    if not ids:
        raise MalformedInput(f"no logged event of transfer {transfer_id} (yet)", reason="unknown_transfer")
    return ids


def with_log_indices(cur: Any, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence items ``{"event_id", "log_index"}`` with the log index of those logged since the flag was written."""
    missing = [e["event_id"] for e in evidence if e.get("log_index") is None and e.get("event_id")]
    found = log_store.indices_of(cur, missing) if missing else {}
    return [{**e, "log_index": e.get("log_index") if e.get("log_index") is not None else found.get(e["event_id"])}
            for e in evidence]


def flag_row(cur: Any, flag_id: str) -> dict[str, Any]:
    cur.execute(
        "SELECT flag_id, flag_type, key, subject_kind, subject_id, accountable, severity, amount_at_stake, currency,"
        " status, raised_at, resolved_at, evidence, detail FROM flags WHERE flag_id = %s",
        (flag_id,),
    )
    row = cur.fetchone()
    if row is None:
        raise MalformedInput(f"no flag {flag_id}", reason="unknown_flag")
    out = dict(zip([d[0] for d in cur.description], row, strict=True))
    out["evidence"] = with_log_indices(cur, list(out["evidence"] or []))
    return out


def flag_history(cur: Any, flag_id: str) -> list[dict[str, Any]]:
    """Every state change of a flag, each a signed ``flag.changed`` event in the log, in order."""
    cur.execute(
        "SELECT n, status, previous_status, actor, reason_code, changed_at, event_id, log_index"
        " FROM flag_history WHERE flag_id = %s ORDER BY n",
        (flag_id,),
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
