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
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, NamedTuple

from producers.simulator.market import Quote
from schemas.costs import effective_cost_bps
from schemas.money import major_fraction, minor_units, round_half_away
from schemas.thresholds import DEFAULT_THRESHOLDS
from schemas.times import add_business_days

__all__ = [
    "DISCREPANCY_CLASSES",
    "ATTACK_CLASSES",
    "NO_FLAG_CLASSES",
    "ANOMALY_CLASSES",
    "Paid",
    "Refunded",
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
    # issue 15, transfers (new classes at the end)
    "wrong_beneficiary",
    "refund_late",
    "refund_missing",
    "refund_short",
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
    # issue 15, look-alikes of the transfer cases that must raise nothing
    "instalments_on_time",
    "prompt_full_refund",
    "payout_just_in_time",
    "at_tolerance",
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
_CANCELLATION_WINDOW: Final = DEFAULT_THRESHOLDS.cancellation_window
_REFUND_DAYS: Final = DEFAULT_THRESHOLDS.refund_period_business_days


class Paid(NamedTuple):
    """A drafted payout as the truth needs it: ``wrong`` when it named another beneficiary."""

    amount: int
    currency: str
    at: datetime  # effective time: min(paid_at, event_time)
    fx_rate: str | None = None
    wrong: bool = False


class Refunded(NamedTuple):
    """A drafted refund (effective time)."""

    amount: int
    currency: str
    at: datetime
    fx_rate: str | None = None


def _convert(amount: int, currency: str, rate: Fraction, target: str) -> int:
    return round_half_away(major_fraction(amount, currency) * rate * 10 ** minor_units(target))


def expected_transfer_flags(
    q: Quote,
    payouts: Sequence[Paid],
    available_by: datetime,
    *,
    sent_at: datetime,
    cancelled_at: datetime | None = None,
    refunds: Sequence[Refunded] = (),
) -> list[tuple[str, str]]:
    """The flags the rules' table gives one transfer once everything has happened.

    Walks the table's conditions over every instant where one may change (each
    fact, and one microsecond after each deadline) and reports each flag whose
    condition ever held: ``open`` if it still holds long after the last deadline,
    else ``resolved``.  ``wrong_beneficiary`` comes once per payout to someone else.
    Only used for transfers whose events and deadlines all lie well before the
    final clock.
    """
    tol = _PAYOUT_TOL_BPS
    promised = q.promised
    rate = Fraction(Decimal(q.rate))

    def value(p: Paid) -> int | None:
        if p.currency == q.recv_ccy:
            return p.amount
        if p.fx_rate is not None:
            return _convert(p.amount, p.currency, Fraction(Decimal(p.fx_rate)), q.recv_ccy)
        if p.currency == q.send_ccy:
            return _convert(p.amount, p.currency, rate, q.recv_ccy)
        return None

    def refund_value(x: Refunded) -> int | None:
        if x.currency == q.send_ccy:
            return x.amount
        if x.fx_rate is not None:
            return _convert(x.amount, x.currency, Fraction(Decimal(x.fx_rate)), q.send_ccy)
        if x.currency == q.recv_ccy:
            return _convert(x.amount, x.currency, 1 / rate, q.send_ccy)
        return None

    good = sorted((p for p in payouts if not p.wrong), key=lambda p: p.at)
    # When the whole promise (no tolerance) was first paid: the transfer is judged
    # from then or from available_by, whichever comes first.
    complete_at, running = None, 0
    for p in good:
        running += value(p) or 0
        if running >= promised:
            complete_at = p.at
            break
    judge_from = available_by if complete_at is None else min(available_by, complete_at)
    void = cancelled_at is not None and cancelled_at <= judge_from
    tick = timedelta(microseconds=1)
    deadlines = [available_by, available_by + _PAYOUT_GRACE]
    due = None
    if cancelled_at is not None:
        due = add_business_days(cancelled_at, _REFUND_DAYS)
        deadlines += [due, due + _PAYOUT_GRACE]
    facts = [sent_at, *(p.at for p in payouts), *(x.at for x in refunds)]
    if cancelled_at is not None:
        facts.append(cancelled_at)
    final = max([*facts, *deadlines]) + timedelta(days=30)
    instants = sorted({*facts, *(d + tick for d in deadlines), final})

    def conditions(t: datetime) -> dict[str, bool]:
        mine = [p for p in good if p.at <= t]
        values = [value(p) for p in mine]
        paid = sum(v for v in values if v is not None)
        counted = sum(1 for v in values if v is not None)
        full = paid * 10000 >= promised * (10000 - tol)
        cancelled = cancelled_at is not None and cancelled_at <= t
        judged = not void and (t > available_by or (complete_at is not None and t >= complete_at))
        eff = None
        if judged and counted:
            eff = effective_cost_bps(
                q.send, q.fee, q.rate, promised, paid, q.disclosed,
                send_currency=q.send_ccy, receive_currency=q.recv_ccy,
            )
        out = {
            "short_payout": judged and bool(mine) and not full and not cancelled,
            "payout_currency_mismatch": any(p.currency != q.recv_ccy for p in mine),
            "paid_twice": paid * 10000 > promised * (10000 + tol),
            "cost_above_disclosed": eff is not None and eff > q.disclosed + _DISCLOSURE_TOL_BPS,
            "cost_above_ceiling": t >= sent_at
            and max(q.disclosed, eff if eff is not None else q.disclosed) > _CEILING_BPS,
            "late_payout": not void and t > available_by and not full
            and not any(v is None for v in values) and not cancelled,
            "missing_payout": not void and t > available_by + _PAYOUT_GRACE and not mine
            and not cancelled,
        }
        if cancelled_at is not None and due is not None:
            fee = q.fee if cancelled_at - sent_at <= _CANCELLATION_WINDOW else 0
            back = _convert(paid, q.recv_ccy, 1 / rate, q.send_ccy) if paid else 0
            owed = max(0, q.send + fee - back)
            mine_r = [x for x in refunds if x.at <= t]
            rvalues = [refund_value(x) for x in mine_r]
            refunded = sum(v for v in rvalues if v is not None)
            rfull = refunded * 10000 >= owed * (10000 - tol)
            out["refund_late"] = t > due and not rfull and not any(v is None for v in rvalues)
            out["refund_missing"] = t > due + _PAYOUT_GRACE and not mine_r and not rfull
            out["refund_short"] = t > due and bool(mine_r) and not rfull
        return out

    ever: dict[str, bool] = {}
    last: dict[str, bool] = {}
    for t in instants:
        for name, held in conditions(t).items():
            ever[name] = ever.get(name, False) or held
            last[name] = held
    result = [(name, "open" if last[name] else "resolved") for name in ever if ever[name]]
    result += [("wrong_beneficiary", "open") for p in payouts if p.wrong]
    return result


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
