"""The flag workflow: statuses, who may move a flag where and why, and what counts as open.

A flag is a public claim that something is wrong.  Its moves, as the
``flag.changed`` events in the log record them::

    system    (new) -> open                   the condition holds (auto_detected)
              open, acknowledged -> resolved  later evidence ends it (auto_resolved)
              resolved, withdrawn -> open     the condition holds again (auto_detected)
              open, acknowledged, resolved -> withdrawn
                                              the flag is no longer derived (evidence_withdrawn)
    reviewer  open -> acknowledged            (reviewer_ack)
              open, acknowledged -> resolved  (reviewer_resolved)
              open, acknowledged -> dismissed (reviewer_dismissed_explained | _duplicate | _error)

Two actors move flags.  The *system* (the rules, the gate, the sequence check)
follows the evidence (:func:`system_steps`); a *reviewer* (a ``rev_``
pseudonym) acknowledges, resolves or dismisses, with the reason codes of
:data:`REVIEW_ACTIONS`.  Reviewer decisions stand: a dismissed flag is never
reopened by the system, an acknowledged one still resolves when the evidence
says so.  System and reviewer reason codes never mix (``flag.changed``'s
schema check in ``schemas.catalog`` refuses the other actor's codes).

*Open* means someone still has to act: ``open`` or ``acknowledged``
(:data:`OPEN_STATUSES`); every open-flag count uses this definition.

Pure: the flag store (``stream_processors.flag_store``) applies these
transitions to PostgreSQL and the log, the dashboard asks which actions to offer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

from schemas.errors import MalformedInput
from schemas.types_gen import FlagReason, FlagStatus

__all__ = [
    "FLAG_STATUSES",
    "OPEN_STATUSES",
    "REVIEWER_REASONS",
    "REVIEW_ACTIONS",
    "SYSTEM_ACTOR",
    "SYSTEM_REASONS",
    "Condition",
    "FlagReason",
    "FlagStatus",
    "ReviewAction",
    "Step",
    "check_review_reason",
    "is_open",
    "may_review",
    "reason_allowed",
    "review_targets",
    "system_steps",
]

#: Every status, in the schema's order.
FLAG_STATUSES: Final[tuple[FlagStatus, ...]] = get_args(FlagStatus)
#: Statuses in which a flag still asks for action (what "open flags" counts).
OPEN_STATUSES: Final[tuple[FlagStatus, ...]] = ("open", "acknowledged")

#: The ``actor`` of changes the platform makes by itself.
SYSTEM_ACTOR: Final = "system"
#: Reason codes only the system records.
SYSTEM_REASONS: Final[frozenset[FlagReason]] = frozenset(
    {"auto_detected", "auto_resolved", "evidence_withdrawn"}
)
#: Reason codes only a reviewer records, in the schema's order.
REVIEWER_REASONS: Final[tuple[FlagReason, ...]] = tuple(
    r for r in get_args(FlagReason) if r not in SYSTEM_REASONS
)

#: A change: the new status and its reason code.
Step = tuple[FlagStatus, FlagReason]
#: What the evidence says now about a flag's condition: it holds, it held and
#: was resolved by later evidence, or the flag is no longer derived at all.
Condition = Literal["open", "resolved", "absent"]


@dataclass(frozen=True, slots=True)
class ReviewAction:
    """A move a reviewer may make: to ``target``, from one of ``sources``, giving one of ``reasons``."""

    target: FlagStatus
    sources: frozenset[FlagStatus]
    reasons: tuple[FlagReason, ...]


#: Reviewer moves by target status, in the order a page offers them.
REVIEW_ACTIONS: Final[Mapping[str, ReviewAction]] = {
    a.target: a
    for a in (
        ReviewAction("acknowledged", frozenset({"open"}), ("reviewer_ack",)),
        ReviewAction("resolved", frozenset({"open", "acknowledged"}), ("reviewer_resolved",)),
        ReviewAction(
            "dismissed",
            frozenset({"open", "acknowledged"}),
            (
                "reviewer_dismissed_explained",
                "reviewer_dismissed_duplicate",
                "reviewer_dismissed_error",
            ),
        ),
    )
}


def is_open(status: str) -> bool:
    """True for ``open`` and ``acknowledged``."""
    return status in OPEN_STATUSES


def reason_allowed(actor: str, reason_code: str) -> bool:
    """True when ``actor`` (``system`` or a reviewer) may record ``reason_code``."""
    return (actor == SYSTEM_ACTOR) == (reason_code in SYSTEM_REASONS)


def review_targets(status: str) -> tuple[FlagStatus, ...]:
    """The statuses a reviewer may move a flag in ``status`` to (none once it is closed)."""
    return tuple(a.target for a in REVIEW_ACTIONS.values() if status in a.sources)


def may_review(status: str, target: str) -> bool:
    """True when a reviewer may move a flag in ``status`` to ``target`` now."""
    action = REVIEW_ACTIONS.get(target)
    return action is not None and status in action.sources


def check_review_reason(target: str, reason_code: str) -> None:
    """Refuse a reviewer's move that is no move of the workflow at all.

    ``MalformedInput(reason="flag_reason")`` when ``target`` is no reviewer
    action or ``reason_code`` is not one of its reasons (a caller's mistake,
    unlike a flag whose status no longer allows the move: see :func:`may_review`).
    """
    action = REVIEW_ACTIONS.get(target)
    if action is None or reason_code not in action.reasons:
        raise MalformedInput(
            f"a reviewer cannot move a flag to {target!r} with reason {reason_code!r}",
            reason="flag_reason",
        )


def system_steps(status: FlagStatus | None, condition: Condition) -> tuple[Step, ...]:
    """The changes the system makes to a flag in ``status`` (None: not stored yet) given ``condition``.

    Each step's status differs from the one before it (``flag.changed`` refuses
    a change that changes nothing); an empty tuple means leave it as it is.
    """
    if status == "dismissed":
        return ()  # a reviewer's dismissal stands
    opened: Step = ("open", "auto_detected")
    resolved: Step = ("resolved", "auto_resolved")
    if condition == "absent":
        if status is None or status == "withdrawn":
            return ()
        return (("withdrawn", "evidence_withdrawn"),)
    if status is None:
        return (opened,) if condition == "open" else (opened, resolved)
    if condition == "open":
        return (opened,) if status in ("resolved", "withdrawn") else ()
    if status in OPEN_STATUSES:
        return (resolved,)
    if status == "withdrawn":
        # Withdrawn while the clock stood below its moment, and back already
        # resolved: it ends raised and resolved, as a run without the
        # interruption has it.
        return (opened, resolved)
    return ()
