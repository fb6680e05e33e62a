"""Integrity flags raised by the gate: equivocation, forgeries, role violations, revoked keys,
authority over subjects, late publication.

They join the same flag store as the reconcilers' discrepancies.  One flag per
(publisher, kind of attack), with the offending events as evidence and a
count, so a flood of forgeries is one alarm, not a million; equivocation is
one flag per event id, since each is a distinct broken promise.

An event refused because its publisher may not speak for the subject
(``not_subject_owner``, ``subject_exists``, ``time_before_origin``) raises
``authority_violation`` about that transfer or project, keyed by the event id,
the intruder accountable: exactly the flag the rules raise when the event
reached the log before its subject's owner and is disregarded later
(:func:`stream_processors.rules.authority.authority_flag`), so one attempt is
one flag whichever caught it.  An accepted event published long after its
claimed time raises ``published_late`` about its publisher, keyed by the event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from infra.identities import PlatformKeys
from schemas.times import parse_time
from stream_processors.flag_store import GATE_RAISED, FlagWriter
from stream_processors.gate.decision import AUTHORITY_REASONS, INTEGRITY_REASONS, Decision
from stream_processors.gate.knowledge import subject_key
from stream_processors.rules.authority import authority_flag
from stream_processors.rules.model import FlagSpec

__all__ = ["integrity_spec", "late_spec", "raise_gate_flags"]


def integrity_spec(d: Decision) -> FlagSpec | None:
    if d.reason not in INTEGRITY_REASONS or not d.publisher_id or d.envelope is None:
        return None
    if d.reason in AUTHORITY_REASONS:
        key = subject_key(d.envelope)
        if key is None:  # pragma: no cover - authority reasons are only given about a subject
            return None
        spec = authority_flag(key[0], key[1], d.envelope.event_id, d.publisher_id, d.reason, d.field,
                              parse_time(d.envelope.event_time))
        return _gate_raised(spec)
    flag_type, severity = INTEGRITY_REASONS[d.reason]
    key_text = d.event_id or "" if flag_type == "equivocation" else d.reason
    return FlagSpec(
        flag_type=flag_type,
        key=key_text,
        subject_kind="publisher",
        subject_id=d.publisher_id,
        # A forgery's victim is the publisher it names; who forged it is unknown.
        accountable="unattributed" if flag_type == "forged_signature" else d.publisher_id,
        severity=severity,
        amount_at_stake=None,
        currency=None,
        evidence=(d.event_id,) if d.event_id else (),
        raised_at=parse_time(d.envelope.event_time),
        resolved_at=None,
        detail={"reason": d.reason, "claimed_publisher": d.publisher_id},
    )


def late_spec(d: Decision, arrived_at: datetime) -> FlagSpec | None:
    """``published_late`` for an accepted event that arrived long after its claimed time."""
    if d.envelope is None or not d.late:
        return None
    claimed = parse_time(d.envelope.event_time)
    return FlagSpec(
        flag_type="published_late",
        key=d.envelope.event_id,
        subject_kind="publisher",
        subject_id=d.envelope.publisher_id,
        accountable=d.envelope.publisher_id,
        severity="low",
        amount_at_stake=None,
        currency=None,
        evidence=(d.envelope.event_id,),
        raised_at=arrived_at,
        resolved_at=None,
        detail={
            "event_type": d.envelope.event_type,
            "claimed_at": d.envelope.event_time,
            "delay_seconds": int((arrived_at - claimed).total_seconds()),
        },
    )


def _gate_raised(spec: FlagSpec) -> FlagSpec:
    """Mark a flag about a transfer or project as the gate's, so the rules' sync leaves it alone:
    the refused event never reaches the log, so the rules can never raise it themselves."""
    return replace(spec, detail={**dict(spec.detail), GATE_RAISED[0]: GATE_RAISED[1]})


def raise_gate_flags(cur: Any, decisions: Sequence[Decision], keys: PlatformKeys, *,
                     late: Sequence[Decision] = (), arrived_at: datetime | None = None) -> list[Any]:
    specs = [s for s in (integrity_spec(d) for d in decisions) if s is not None]
    if arrived_at is not None:
        specs += [s for s in (late_spec(d, arrived_at) for d in late) if s is not None]
    if not specs:
        return []
    fw = FlagWriter(cur, keys)
    for spec in specs:
        fw.raise_integrity(spec)
    return fw.finish()
