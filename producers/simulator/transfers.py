"""Remittances: clean transfers and their payouts, cancellations and refunds, and anomalous ones.

A clean transfer is priced honestly (:meth:`.market.Market.clean_quote`) and
paid in full: 80 % within the hour, the rest by the next business day; a
cancelled one is refunded in full (its fee too: it is cancelled within the
cancellation window) well within the refund period.  Half of the payouts of a
transfer to a person name the beneficiary they paid (chosen by transfer id).
An anomalous one (:func:`anomaly_transfer`) is labelled with its case and
variant (:data:`TRANSFER_CASES`), and its expected flags are worked out by
:func:`.truth.expected_transfer_flags`; a look-alike case must raise nothing,
and says so with a ``no_flag`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from producers.simulator.drafts import Draft, Run, Transfer
from producers.simulator.market import (
    Person,
    Quote,
    Sender,
    money,
    paid_payload,
    price,
    sent_payload,
)
from producers.simulator.truth import Paid, Refunded, expected_transfer_flags, no_flag_line
from producers.simulator.world import DAY, HOUR, MINUTE, hash_parts, operator_secret
from schemas.costs import effective_cost_bps
from schemas.money import major_fraction, minor_units, round_half_away
from schemas.privacy import receipt_code, transfer_pseudonym
from schemas.routing import partition_for
from schemas.thresholds import DEFAULT_THRESHOLDS
from schemas.times import add_business_days, format_time, parse_time

__all__ = [
    "quiet_tail",
    "transfer",
    "payout",
    "pay_clean",
    "sender_destination",
    "clean_transfers",
    "cancel",
    "anomaly_transfer",
    "next_business_day",
    "refund_to",
    "TRANSFER_CASES",
]

#: Transfer cases and how many variants each has; a run with anomalies makes
#: every variant at least once (``build``).  Classes named after a flag raise
#: it (and its collateral flags, as the truth works out); the last four are
#: look-alikes that must raise nothing.
TRANSFER_CASES: Final[Mapping[str, int]] = {
    "short_payout": 3,  # short on time; a token payout; short in a third currency at its rate
    "missing_payout": 2,  # nothing at all; a refund with no cancellation (settles nothing)
    "late_payout": 2,  # all of it late; 60 % on time and the rest late (instalments)
    "cost_above_disclosed": 2,  # understated disclosure; paid exactly at the payout tolerance
    "cost_above_ceiling": 1,
    "payout_currency_mismatch": 3,  # send currency at the quoted rate; third at a rate; undisclosed
    "paid_twice": 2,  # two full payouts; one payout of twice the promise
    "wrong_beneficiary": 2,  # then the right one on time; the wrong one only
    "refund_late": 1,
    "refund_missing": 1,
    "refund_short": 2,  # the fee left out; a partial payout then the fee left out
    "instalments_on_time": 1,
    "prompt_full_refund": 2,  # within the window, fee included; after it, the send amount
    "payout_just_in_time": 1,  # one minute before the promised time
    "at_tolerance": 3,  # overpaid exactly at the limit; refund and cost exactly at theirs
}

_TOL: Final = DEFAULT_THRESHOLDS.payout_tolerance_bps
_DISCLOSURE_TOL: Final = DEFAULT_THRESHOLDS.cost_disclosure_tolerance_bps
_AUTO: Final = "auto"


def transfer(
    run: Run,
    op: str,
    corridor: tuple[str, str],
    major: float,
    at: datetime,
    *,
    sender: Person,
    destination: dict[str, Any],
    instant: bool = True,
    quote: Quote | None = None,
    label: str | None = None,
    phase: int = 0,
) -> Transfer:
    """A ``transfer.sent`` draft (payouts are added by the caller).

    An operator with a paying correspondent in Mexico names it in its
    transfers there (``payout_agents``); the correspondent publishes about
    half of their payouts (chosen by the transfer id: no random draw).
    """
    send = max(1500, round(major * 100))
    q = quote or run.clean_quote(op, corridor, send, at, major)
    tid = run.new_id("trf", 12)
    code = receipt_code(run.secrets.get(op) or operator_secret(run.seed, op), tid)
    run.receipts[tid] = code
    run.senders[tid] = sender.identifier
    available_by = at + HOUR if instant else next_business_day(at)
    payload = sent_payload(
        tid,
        op,
        corridor,
        q,
        available_by,
        destination=destination,
        sender=sender,
        receipt_code=code,
    )
    agent = run.roster.payout_agents.get(op) if corridor[1] == "MX" else None
    if agent is not None:
        payload["payout_agents"] = [agent]
    d = run.draft(op, "transfer.sent", payload, at, label=label, phase=phase)
    tr = Transfer(
        tid,
        op,
        q,
        d,
        available_by,
        label=label,
        beneficiary=destination["kind"] == "beneficiary",
        payer=agent if agent is not None and hash_parts(tid, "payer")[0] % 2 == 0 else op,
    )
    run.transfers.append(tr)
    return tr


def payout(
    run: Run,
    tr: Transfer,
    paid_at: datetime,
    amount: int | None = None,
    currency: str | None = None,
    *,
    publish_at: datetime | None = None,
    label: str | None = None,
    phase: int = 0,
    fx_rate: str | None = None,
    beneficiary: str | None = _AUTO,
) -> Draft:
    """A ``transfer.paid_out`` draft (the promised amount and currency unless told otherwise),
    published by the transfer's payer (its operator or the payout agent it named).

    ``beneficiary``: by default half the transfers to a person (by id) name the
    beneficiary in their payouts, copied from the ``transfer.sent`` (so derived by
    the same function); a pseudonym given here that differs is a wrong beneficiary.
    """
    amount = tr.quote.promised if amount is None else amount
    currency = currency or tr.quote.recv_ccy
    event_time = min(run.end, paid_at + timedelta(seconds=run.rng.randint(5, 90)))
    payload = paid_payload(tr.transfer_id, amount, currency, paid_at, run.new_id("po", 10))
    if fx_rate is not None:
        payload["fx_rate"] = fx_rate
    own = tr.sent.payload["destination"].get("beneficiary")
    if beneficiary == _AUTO:
        beneficiary = own if own and hash_parts(tr.transfer_id, "names")[0] % 2 == 0 else None
    if beneficiary is not None:
        payload["beneficiary"] = beneficiary
    d = run.draft(
        tr.payer or tr.operator,
        "transfer.paid_out",
        payload,
        event_time,
        publish_at=publish_at,
        label=label,
        phase=phase,
    )
    wrong = beneficiary is not None and beneficiary != own
    tr.payouts.append(Paid(amount, currency, min(paid_at, event_time), fx_rate, wrong))
    tr.payout_drafts.append(d)
    return d


def pay_clean(run: Run, tr: Transfer, instant: bool) -> None:
    """Pay a clean transfer in full: minutes after sending if instant, else before its deadline."""
    at = tr.sent.event_time
    if instant:
        paid = at + run.instant_delay()
    else:
        paid = run.between(at + 2 * HOUR, tr.available_by - HOUR)
    payout(run, tr, paid)


def sender_destination(run: Run, s: Sender) -> dict[str, Any]:
    """One of the sender's beneficiaries."""
    return {"kind": "beneficiary", "beneficiary": run.rng.choice(s.beneficiaries)}


def clean_transfers(run: Run, count: int, cancellations: int) -> None:
    """``count`` clean paid transfers, plus cancelled and promptly refunded ones, spread over the window."""
    total = count + cancellations
    if total <= 0:
        return
    lo, hi = run.start + MINUTE, run.end - 75 * MINUTE
    span_days = max(1.0, (hi - lo).total_seconds() / 86400)
    slots: list[tuple[datetime, int]] = []
    senders: list[Sender] = []
    while len(slots) < total:
        corridor = run.pick_corridor()
        op = run.pick_operator(corridor)
        rev = run.revoked_op is not None and run.rng.random() < 0.03
        if rev:
            op, corridor = str(run.revoked_op), ("US", "MX")
        s = run.new_sender(op, corridor, len(senders))
        senders.append(s)
        period = 30.0 / run.rng.choice((2.0, 2.5, 3.0))
        t = run.rng.uniform(0, period)
        last = span_days
        if rev and run.revoked_at is not None:
            last = min(last, (run.revoked_at - DAY - lo).total_seconds() / 86400)
        while t < last:
            slots.append((lo + timedelta(seconds=int(t * 86400)), len(senders) - 1))
            t += period * run.rng.uniform(0.7, 1.3)
    if len(slots) > total:
        drop = set(run.rng.sample(range(len(slots)), len(slots) - total))
        slots = [s for i, s in enumerate(slots) if i not in drop]
    slots.sort()
    cancel_idx = set(run.rng.sample(range(len(slots)), cancellations)) if cancellations else set()
    slow_limit = run.tail_start - 4 * DAY
    for i, (at, si) in enumerate(slots):
        s = senders[si]
        instant = at >= slow_limit or s.operator == run.revoked_op or run.rng.random() < 0.8
        tr = transfer(
            run,
            s.operator,
            s.corridor,
            run.send_amount(s),
            at,
            sender=s.person,
            destination=sender_destination(run, s),
            instant=instant,
        )
        if i in cancel_idx:
            cancel(run, tr, refund=True)
        else:
            pay_clean(run, tr, instant)


def cancel(
    run: Run, tr: Transfer, *, refund: bool, at: datetime | None = None, label: str | None = None
) -> datetime:
    """Cancel a transfer (by default 2-25 minutes after sending, within the cancellation
    window); with ``refund``, refund the send amount and the fee within two hours."""
    if at is None:
        at = tr.sent.event_time + timedelta(seconds=run.rng.randint(120, 1500))
    run.draft(
        tr.operator,
        "transfer.cancelled",
        {
            "transfer_id": tr.transfer_id,
            "cancelled_at": format_time(at),
            "reason_code": "sender_request",
        },
        at,
        label=label,
    )
    tr.cancelled = True
    tr.cancelled_at = at
    if refund:
        rt = min(run.end, at + timedelta(seconds=run.rng.randint(600, 7200)))
        q = tr.quote
        refund_to(run, tr, rt, q.send + q.fee, label=label)
    return at


def refund_to(
    run: Run,
    tr: Transfer,
    at: datetime,
    amount: int,
    currency: str | None = None,
    *,
    fx_rate: str | None = None,
    label: str | None = None,
) -> Draft:
    """A ``transfer.refunded`` draft by the operator (send currency unless told otherwise)."""
    currency = currency or tr.quote.send_ccy
    payload: dict[str, Any] = {
        "transfer_id": tr.transfer_id,
        "refunded": money(amount, currency),
        "refunded_at": format_time(at),
    }
    if fx_rate is not None:
        payload["fx_rate"] = fx_rate
    d = run.draft(tr.operator, "transfer.refunded", payload, at, label=label)
    tr.refunds.append(Refunded(amount, currency, at, fx_rate))
    return d


def _within_cost_tolerance(q: Quote) -> int:
    """The largest amount short of the promise whose effective cost is still within the
    disclosure tolerance (a cost exactly at the tolerance: no flag)."""
    def ok(short: int) -> bool:
        eff = effective_cost_bps(
            q.send, q.fee, q.rate, q.promised, q.promised - short, q.disclosed,
            send_currency=q.send_ccy, receive_currency=q.recv_ccy,
        )
        return eff <= q.disclosed + _DISCLOSURE_TOL
    lo, hi = 0, q.promised * _TOL // 10000  # ok(lo); the payout tolerance bounds the search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def anomaly_transfer(run: Run, label: str, variant: int = 0) -> Transfer:
    """A transfer of case ``label`` (variant ``variant`` of :data:`TRANSFER_CASES`), with the
    flags the table gives it in the truth, or a ``no_flag`` line for a look-alike."""
    refunds = label.startswith("refund_") or label in ("prompt_full_refund",) or (
        label == "at_tolerance" and variant == 1
    )
    # Refund cases need the refund period (up to 5 days with a weekend) and the grace
    # period after it to fall due before the cutoff.
    at = run.between(run.start + 12 * HOUR, run.cutoff - (10 if refunds else 5) * DAY)
    corridor = ("US", "MX")
    op = run.pick_operator(corridor)
    s = run.new_sender(op, corridor, 10_000_000 + len(run.transfers))
    major = run.send_amount(s)
    send = max(1500, round(major * 100))
    q: Quote | None = None
    if label == "cost_above_ceiling":
        q = price(
            corridor,
            send,
            at,
            cost_bps=run.rng.randint(580, 850),
            margin_bps=run.profiles[op][1],
        )
    elif label == "cost_above_disclosed" and variant == 0:
        _, margin = run.profiles[op]
        q = price(
            corridor,
            send,
            at,
            cost_bps=run.rng.randint(150, 250),
            margin_bps=margin,
            withholding_bps=margin + run.rng.randint(120, 260),
            cap_bps=490,
        )
    tr = transfer(
        run,
        op,
        corridor,
        major,
        at,
        sender=s.person,
        destination=sender_destination(run, s),
        quote=q,
        label=label,
        instant=label != "payout_just_in_time",
    )
    q = tr.quote
    paid = at + run.instant_delay()
    R = q.promised
    A = tr.available_by
    key = (label, variant)
    if key == ("short_payout", 0):
        payout(run, tr, paid, R * (10000 - run.rng.randint(200, 900)) // 10000, label=label)
    elif key == ("short_payout", 1):
        payout(run, tr, paid, max(1, R // 100), label=label)  # a token payout
    elif key == ("short_payout", 2):
        # EUR at a stated 20.0000 MXN/EUR, worth about 95 % of the promise.
        payout(run, tr, paid, R * 95 // 2000, "EUR", fx_rate="20.0000", label=label)
    elif key == ("missing_payout", 1):
        refund_to(run, tr, at + 2 * HOUR, q.send + q.fee, label=label)  # no cancellation
    elif key == ("late_payout", 0):
        payout(run, tr, A + timedelta(minutes=run.rng.randint(90, 40 * 60)), label=label)
    elif key == ("late_payout", 1):
        first = R * 60 // 100
        payout(run, tr, paid, first, label=label)
        payout(run, tr, A + timedelta(minutes=run.rng.randint(60, 30 * 60)), R - first, label=label)
    elif key == ("cost_above_disclosed", 1):
        payout(run, tr, paid, _ceil_div(R * (10000 - _TOL), 10000), label=label)
    elif key == ("payout_currency_mismatch", 0):
        payout(run, tr, paid, q.send, q.send_ccy, label=label)
    elif key == ("payout_currency_mismatch", 1):
        payout(run, tr, paid, _ceil_div(R * 2, 41), "EUR", fx_rate="20.5", label=label)
    elif key == ("payout_currency_mismatch", 2):
        payout(run, tr, paid, _ceil_div(R * 2, 41), "EUR", label=label)  # rate undisclosed
    elif key == ("paid_twice", 0):
        payout(run, tr, paid)
        payout(run, tr, paid + timedelta(hours=run.rng.randint(20, 70)), label=label)
    elif key == ("paid_twice", 1):
        payout(run, tr, paid, 2 * R, label=label)
    elif label == "wrong_beneficiary":
        secret = run.secrets.get(op) or operator_secret(run.seed, op)
        other = transfer_pseudonym(secret, "ben", f"{run.run_tag}:someone-else", tr.transfer_id)
        payout(run, tr, paid, beneficiary=other, label=label)
        if variant == 0:
            payout(run, tr, min(A, paid + 5 * MINUTE), label=label)
    elif label in ("refund_late", "refund_missing", "refund_short", "prompt_full_refund") or key == (
        "at_tolerance", 1
    ):
        _refund_case(run, tr, label, variant)
    elif label == "instalments_on_time":
        parts = run.rng.choice((2, 3))
        cut = sorted(run.rng.sample(range(1, R), parts - 1))
        amounts = [b - a for a, b in zip([0, *cut], [*cut, R], strict=True)]
        for i, amount in enumerate(amounts):
            payout(run, tr, at + (i + 1) * 15 * MINUTE, amount, label=label)
    elif label == "payout_just_in_time":
        payout(run, tr, A - MINUTE, label=label)
    elif key == ("at_tolerance", 0):
        payout(run, tr, paid)
        payout(run, tr, paid + 2 * MINUTE, R * _TOL // 10000, label=label)  # P = R(1+tol) exactly
    elif key == ("at_tolerance", 2):
        payout(run, tr, paid, R - _within_cost_tolerance(q), label=label)
    else:
        if label != "missing_payout":
            payout(run, tr, paid)
    expected = expected_transfer_flags(
        q,
        tr.payouts,
        tr.available_by,
        sent_at=tr.sent.event_time,
        cancelled_at=tr.cancelled_at,
        refunds=tr.refunds,
    )
    if label in _LOOK_ALIKES:
        if expected:  # pragma: no cover - a look-alike drafted wrong is a simulator bug
            raise AssertionError(f"look-alike {label}/{variant} would raise {expected}")
        run.truth.append(no_flag_line(label, "transfer", tr.transfer_id))
    else:
        # wrong_beneficiary is keyed by the payout's event id (one flag per payout).
        wrong = iter(d.event_id for d, p in zip(tr.payout_drafts, tr.payouts, strict=True) if p.wrong)
        for flag_type, status in expected:
            key_ = next(wrong) if flag_type == "wrong_beneficiary" else ""
            run.flag(label, flag_type, "transfer", tr.transfer_id, key_, status)
    return tr


_LOOK_ALIKES: Final = frozenset(
    {"instalments_on_time", "prompt_full_refund", "payout_just_in_time", "at_tolerance"}
)


def _refund_case(run: Run, tr: Transfer, label: str, variant: int) -> None:
    q = tr.quote
    sent_at = tr.sent.event_time
    window = DEFAULT_THRESHOLDS.cancellation_window
    owed = q.send + q.fee
    if (label, variant) == ("refund_short", 1):
        # Half the promise paid out (USD value at the quoted rate), then cancelled
        # within the window: the refund leaves out the fee.
        payout(run, tr, sent_at + 3 * MINUTE, q.promised // 2, label=label)
        c = cancel(run, tr, refund=False, at=sent_at + 10 * MINUTE, label=label)
        back = _value_back(q, q.promised // 2)
        refund_to(run, tr, c + HOUR, q.send - back, label=label)
        return
    if (label, variant) == ("prompt_full_refund", 1):
        # Cancelled after the cancellation window: the fee is not owed back.
        late = sent_at + window + timedelta(seconds=run.rng.randint(60, 1200))
        c = cancel(run, tr, refund=False, at=late, label=label)
        refund_to(run, tr, c + run.rng.randint(1, 20) * HOUR, q.send, label=label)
        return
    soon = sent_at + timedelta(seconds=run.rng.randint(120, 1500))
    c = cancel(run, tr, refund=False, at=soon, label=label)
    due = add_business_days(c, DEFAULT_THRESHOLDS.refund_period_business_days)
    if label == "refund_late":
        late = due + timedelta(minutes=run.rng.randint(120, 40 * 60))
        refund_to(run, tr, late, owed, label=label)
    elif label == "refund_short":
        refund_to(run, tr, c + HOUR, q.send, label=label)  # the fee left out
    elif label == "prompt_full_refund":
        refund_to(run, tr, c + timedelta(minutes=run.rng.randint(10, 600)), owed, label=label)
    elif label == "at_tolerance":
        refund_to(run, tr, c + HOUR, _ceil_div(owed * (10000 - _TOL), 10000), label=label)
    # refund_missing: never refunded


def _value_back(q: Quote, paid: int) -> int:
    """``paid`` (promised currency) in send-currency minor units at the quoted rate (as the
    README defines the value already paid out)."""
    rate = Fraction(Decimal(q.rate))
    return round_half_away(major_fraction(paid, q.recv_ccy) / rate * 10 ** minor_units(q.send_ccy))


def next_business_day(at: datetime) -> datetime:
    """23:00 UTC of the next business day (Friday and weekend sends: Monday)."""
    day = at.replace(hour=23, minute=0, second=0, microsecond=0)
    step = {4: 3, 5: 2}.get(at.weekday(), 1)
    return day + timedelta(days=step)


def quiet_tail(run: Run, partitions: int = 4) -> None:
    """Make sure every partition of the transfers topics has a transfer in the run's last hours.

    The platform's event-time clock is the minimum over partitions of their
    latest event time: one partition whose last transfer is a day old holds it
    back a day.  Its latest clean instant transfer of the quiet tail moves to
    three hours before the end (its payout with it), which changes nothing else:
    tail transfers are paid at once and raise no flag.  ``partitions`` is the
    platform's default KAFKA_PARTITIONS.
    """
    latest: dict[int, datetime] = {}
    movable: dict[int, Transfer] = {}
    for tr in run.transfers:
        part = partition_for(tr.transfer_id.encode(), partitions)
        drafts = (tr.sent, *tr.payout_drafts)
        last = max(d.event_time for d in drafts)
        if part not in latest or last > latest[part]:
            latest[part] = last
        clean = (
            tr.label is None
            and not tr.cancelled
            and len(tr.payout_drafts) == 1
            and tr.available_by == tr.sent.event_time + HOUR
            and tr.sent.event_time >= run.tail_start
            and all(d.kind == "normal" and d.phase == 0 for d in drafts)
        )
        if clean and (part not in movable or tr.sent.event_time > movable[part].sent.event_time):
            movable[part] = tr
    target = run.end - 3 * HOUR
    for part, tr in sorted(movable.items()):
        if latest[part] >= run.end - 6 * HOUR or tr.sent.event_time >= target:
            continue
        shift = target - tr.sent.event_time
        tr.sent.event_time += shift
        tr.sent.publish_at += shift
        tr.available_by += shift
        tr.sent.payload["available_by"] = format_time(tr.available_by)
        for d in tr.payout_drafts:
            d.event_time += shift
            d.publish_at += shift
            d.payload["paid_at"] = format_time(parse_time(d.payload["paid_at"]) + shift)
        tr.payouts = [p._replace(at=p.at + shift) for p in tr.payouts]
