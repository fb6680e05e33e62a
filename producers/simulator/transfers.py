"""Remittances: clean transfers and their payouts, cancellations and refunds, and anomalous ones.

A clean transfer is priced honestly (:meth:`.market.Market.clean_quote`) and
paid in full: 80 % within the hour, the rest by the next business day.  An
anomalous one (:func:`anomaly_transfer`) is labelled with its case, and its
expected flags are worked out by :func:`.truth.expected_transfer_flags`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

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
from producers.simulator.truth import expected_transfer_flags
from producers.simulator.world import DAY, HOUR, MINUTE, hash_parts, operator_secret
from schemas.privacy import receipt_code
from schemas.routing import partition_for
from schemas.times import format_time, parse_time

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
]


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
) -> Draft:
    """A ``transfer.paid_out`` draft (the promised amount and currency unless told otherwise),
    published by the transfer's payer (its operator or the payout agent it named)."""
    amount = tr.quote.promised if amount is None else amount
    currency = currency or tr.quote.recv_ccy
    event_time = min(run.end, paid_at + timedelta(seconds=run.rng.randint(5, 90)))
    payload = paid_payload(tr.transfer_id, amount, currency, paid_at, run.new_id("po", 10))
    d = run.draft(
        tr.payer or tr.operator,
        "transfer.paid_out",
        payload,
        event_time,
        publish_at=publish_at,
        label=label,
        phase=phase,
    )
    tr.payouts.append((amount, currency, min(paid_at, event_time)))
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


def clean_transfers(run: Run, count: int, cancellations: int, refunded_one: bool) -> None:
    """``count`` clean paid transfers, plus cancelled ones, spread over the window."""
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
    refund_pick = min(cancel_idx) if (refunded_one and cancel_idx) else None
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
            cancel(run, tr, refund=(i == refund_pick))
        else:
            pay_clean(run, tr, instant)


def cancel(run: Run, tr: Transfer, *, refund: bool) -> None:
    """Cancel a transfer shortly after sending; with ``refund``, refund send amount and fee."""
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
    )
    tr.cancelled = True
    if refund:
        rt = min(run.end, at + timedelta(seconds=run.rng.randint(600, 7200)))
        q = tr.quote
        run.draft(
            tr.operator,
            "transfer.refunded",
            {
                "transfer_id": tr.transfer_id,
                "refunded": money(q.send + q.fee, q.send_ccy),
                "refunded_at": format_time(rt),
            },
            rt,
        )


def anomaly_transfer(run: Run, label: str) -> Transfer:
    """A transfer of case ``label``, with the flags the table gives it in the truth."""
    at = run.between(run.start + 12 * HOUR, run.cutoff - 5 * DAY)
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
    elif label == "cost_above_disclosed":
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
    )
    q = tr.quote
    paid = at + run.instant_delay()
    if label == "short_payout":
        short = q.promised * (10000 - run.rng.randint(200, 900)) // 10000
        payout(run, tr, paid, short, label=label)
    elif label == "missing_payout":
        pass
    elif label == "late_payout":
        payout(
            run, tr, tr.available_by + timedelta(minutes=run.rng.randint(90, 40 * 60)), label=label
        )
    elif label == "payout_currency_mismatch":
        payout(run, tr, paid, q.send, q.send_ccy, label=label)
    elif label == "paid_twice":
        payout(run, tr, paid)
        payout(run, tr, paid + timedelta(hours=run.rng.randint(20, 70)), label=label)
    else:
        payout(run, tr, paid)
    for flag_type, status in expected_transfer_flags(q, tr.payouts, tr.available_by):
        run.flag(label, flag_type, "transfer", tr.transfer_id, "", status)
    return tr


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
        tr.payouts = [(a, c, t + shift) for a, c, t in tr.payouts]
