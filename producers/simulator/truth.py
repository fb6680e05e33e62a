"""The ground truth: which flags each injected case must raise, and which cases must raise none.

This is an intentionally independent oracle, not duplicated code.  It is
written from the flag table of ``stream_processors/rules/README.md`` (the
specification), never by calling the rules: a platform is scored against it
(``stream_processors.ground_truth``) and ``tests/unit/test_simulator.py``
checks that the rules raise exactly these flags, so a rule drifting from its
table shows up as a disagreement instead of being copied into the truth.  It
shares only the contracts of the core: the cost formulas
(:mod:`schemas.costs`) and the default thresholds (:mod:`schemas.thresholds`).

A truth line is ``{"class", "flag_type", "subject_kind", "subject_id", "key",
"status"}`` (``key`` None means any key), or ``{"class", "expect": "no_flag",
"subject_kind", "subject_id", ...}`` for a case that must raise nothing.
``class`` is the injected case; its flags follow the table, collateral flags
included (a short payout also raises a cost above the disclosed one, for
example).  The flags of project cases are written where the case is made
(:mod:`.projects`, :mod:`.attacks`); a transfer's depend on its amounts and
times, so :func:`expected_transfer_flags` works them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from producers.simulator.market import Quote
from schemas.costs import effective_cost_bps
from schemas.thresholds import DEFAULT_THRESHOLDS

__all__ = [
    "DISCREPANCY_CLASSES",
    "ATTACK_CLASSES",
    "NO_FLAG_CLASSES",
    "ANOMALY_CLASSES",
    "expected_transfer_flags",
    "flag_line",
    "no_flag_line",
    "truth_order",
]

#: Discrepancy classes (named after the flag they are about).
DISCREPANCY_CLASSES: Final[tuple[str, ...]] = (
    "short_payout",
    "missing_payout",
    "late_payout",
    "cost_above_disclosed",
    "cost_above_ceiling",
    "payout_currency_mismatch",
    "paid_twice",
    "share_unpaid",
    "late_disbursement",
    "funds_without_milestone",
    "spending_above_funds",
    "milestone_overdue",
    "spending_unverified",
    # issue 15 (projects); the new cases of older flags (a club short of its share, a
    # pledge that would postpone a share, verifications before the report or missing for
    # new spending, an overspend in another currency) score under those flags' classes
    "fx_rate_undisclosed",
    "funds_unreturned",
)
#: Attacks on the gate that must raise an integrity flag.
ATTACK_CLASSES: Final[tuple[str, ...]] = (
    "forged_signature",
    "revoked_key",
    "wrong_role",
    "equivocation",
    "sequence_gap",
    # authority over subjects and time (docs/adr/0007-authority-and-time.md)
    "foreign_operator_transfer",
    "cross_operator_payout",
    "cross_operator_payout_first",
    "self_verification",
    "backdated_reregistration",
    "published_late",
    "settlement_before_origin",
    "foreign_project",
    "foreign_contribution",
)
#: Cases that must raise nothing.
NO_FLAG_CLASSES: Final[tuple[str, ...]] = (
    "replay",
    "out_of_order",
    # issue 15 (projects): look-alikes of the cases that must raise nothing
    "club_exact_share",
    "verified_right_after_report",
    "cancelled_full_return",
    "fx_rate_disclosed",
)
ANOMALY_CLASSES: Final[tuple[str, ...]] = DISCREPANCY_CLASSES + ATTACK_CLASSES + NO_FLAG_CLASSES

# The ground truth follows the rules at their default thresholds.
_CEILING_BPS: Final = DEFAULT_THRESHOLDS.corridor_cost_ceiling_bps
_PAYOUT_TOL_BPS: Final = DEFAULT_THRESHOLDS.payout_tolerance_bps
_DISCLOSURE_TOL_BPS: Final = DEFAULT_THRESHOLDS.cost_disclosure_tolerance_bps
_PAYOUT_GRACE: Final = DEFAULT_THRESHOLDS.payout_grace


def expected_transfer_flags(
    q: Quote,
    payouts: Sequence[tuple[int, str, datetime]],
    available_by: datetime,
) -> list[tuple[str, str]]:
    """The flags the rules' table gives one transfer once everything has happened.

    ``payouts`` are ``(amount, currency, effective time)``.  Only used for
    transfers whose events all lie well before the final clock, and whose
    conditions never flip back except the timing ones, which resolve when paid.
    """
    out: list[tuple[str, str]] = []
    mine = [p for p in payouts if p[1] == q.recv_ccy]
    paid = sum(p[0] for p in mine)
    if payouts and paid * 10000 < q.promised * (10000 - _PAYOUT_TOL_BPS):
        out.append(("short_payout", "open"))
    if any(p[1] != q.recv_ccy for p in payouts):
        out.append(("payout_currency_mismatch", "open"))
    if len(mine) > 1 and paid * 10000 > q.promised * (10000 + _PAYOUT_TOL_BPS):
        out.append(("paid_twice", "open"))
    eff = None
    if mine:
        eff = effective_cost_bps(
            q.send,
            q.fee,
            q.rate,
            q.promised,
            paid,
            q.disclosed,
            send_currency=q.send_ccy,
            receive_currency=q.recv_ccy,
        )
        if eff > q.disclosed + _DISCLOSURE_TOL_BPS:
            out.append(("cost_above_disclosed", "open"))
    if max(q.disclosed, eff if eff is not None else q.disclosed) > _CEILING_BPS:
        out.append(("cost_above_ceiling", "open"))
    settled = min((p[2] for p in payouts), default=None)
    if settled is None:
        out += [("late_payout", "open"), ("missing_payout", "open")]
    else:
        if settled > available_by:
            out.append(("late_payout", "resolved"))
        if settled > available_by + _PAYOUT_GRACE:
            out.append(("missing_payout", "resolved"))
    return out


def flag_line(
    cls: str, flag_type: str, kind: str, subject: str, key: str | None, status: str = "open"
) -> dict[str, Any]:
    """One expected flag of case ``cls``."""
    return {
        "class": cls,
        "flag_type": flag_type,
        "subject_kind": kind,
        "subject_id": subject,
        "key": key,
        "status": status,
    }


def no_flag_line(cls: str, kind: str, subject: str, **extra: str) -> dict[str, Any]:
    """A case of ``cls`` that must raise no flag about ``subject``."""
    return {"class": cls, "expect": "no_flag", "subject_kind": kind, "subject_id": subject, **extra}


def truth_order(line: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """The stable order of the truth file: class, flag type, subject, key."""
    return (
        line["class"],
        line.get("flag_type", ""),
        line["subject_id"],
        line.get("key") or "",
    )
