"""Who may speak for a subject: the rules' side of the authority model.

The gate refuses what it can decide on arrival
(:func:`stream_processors.gate.decision.authority_refusal`).  What it cannot
(an event about a transfer or project the log did not know yet) is accepted,
and these rules disregard it once the subject's owner is known: the event
stays in the public log, changes nothing in the subject's state, and raises
the same ``authority_violation`` flag the gate would have raised (same type,
subject and key, so the same flag id), naming the publisher that tried.

The owner of a subject is the publisher of its first registration *in log
order* (``transfer.sent``, ``project.registered``), never the earliest one by
claimed time: arrival in the log is what a publisher cannot rewrite.  Events
without a log index (not logged yet) sort after every logged one.  See
``docs/adr/0007-authority-and-time.md`` and the table in ``README.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from schemas.flags import AUTHORITY_FLAG_TYPE
from stream_processors.rules.model import Evt, FlagSpec

__all__ = ["AUTHORITY_SEVERITY", "UNATTRIBUTED", "authority_flag", "disregard", "log_order"]

#: An authority violation is high: someone spoke for a subject it does not own.
AUTHORITY_SEVERITY: Final = "high"
#: The accountable party of an event whose publisher is not known (legacy data).
UNATTRIBUTED: Final = "unattributed"


def log_order(e: Evt) -> tuple[int, int, datetime, str]:
    """Sort key: log index first (unlogged events last), then claimed time and id for determinism."""
    return (0 if e.log_index is not None else 1, e.log_index or 0, e.event_time, e.event_id)


def authority_flag(kind: str, subject_id: str, event_id: str, publisher: str, reason: str, path: str,
                   raised_at: datetime) -> FlagSpec:
    """The ``authority_violation`` flag of one offending event (gate refusal or rules' disregard).

    Identity ``authority_violation|kind|subject|event id``: one flag per
    offending event.  ``detail`` holds the reason code and the schema path of
    the offending part, never a value from the event.
    """
    return FlagSpec(
        flag_type=AUTHORITY_FLAG_TYPE,
        key=event_id,
        subject_kind="transfer" if kind == "transfer" else "project",
        subject_id=subject_id,
        accountable=publisher,
        severity=AUTHORITY_SEVERITY,
        amount_at_stake=None,
        currency=None,
        evidence=(event_id,),
        raised_at=raised_at,
        resolved_at=None,
        detail={"reason": reason, "path": path},
    )


def disregard(kind: str, subject_id: str, e: Evt, reason: str, path: str) -> FlagSpec:
    """The flag of an event the rules disregard, accountable: its publisher."""
    return authority_flag(kind, subject_id, e.event_id, e.publisher_id or UNATTRIBUTED, reason, path, e.event_time)
