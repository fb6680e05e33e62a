"""Integrity flags raised by the gate: equivocation, forgeries, role violations, revoked keys.

They join the same flag store as the reconcilers' discrepancies.  One flag per
(publisher, kind of attack), with the offending events as evidence and a
count, so a flood of forgeries is one alarm, not a million; equivocation is
one flag per event id, since each is a distinct broken promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.identities import PlatformKeys
from schemas.times import parse_time
from stream_processors.flag_store import FlagWriter
from stream_processors.gate.decision import INTEGRITY_REASONS, Decision
from stream_processors.rules.model import FlagSpec

__all__ = ["integrity_spec", "raise_gate_flags"]


def integrity_spec(d: Decision) -> FlagSpec | None:
    if d.reason not in INTEGRITY_REASONS or not d.publisher_id or d.envelope is None:
        return None
    flag_type, severity = INTEGRITY_REASONS[d.reason]
    key = d.event_id or "" if flag_type == "equivocation" else d.reason
    return FlagSpec(
        flag_type=flag_type,
        key=key,
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


def raise_gate_flags(cur: Any, decisions: Sequence[Decision], keys: PlatformKeys) -> list[Any]:
    if not decisions:
        return []
    fw = FlagWriter(cur, keys)
    for d in decisions:
        spec = integrity_spec(d)
        if spec is not None:
            fw.raise_integrity(spec)
    return fw.finish()
