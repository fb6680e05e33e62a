"""Reconciliation of one remittance: was it paid, in full, on time, at the cost disclosed?

A migrant checks a receipt against these rules, so every definition is written down
here and in ``README.md`` (the simulator's ground truth is built from that table).
Time model, ``raised_at``/``resolved_at`` and ``next_deadline``: see ``model``.

Costs: ``disclosed_cost_bps`` and ``effective_cost_bps`` are defined once, in
:mod:`schemas.costs` (the publishers' side uses the same formulas).
``cost_above_disclosed`` fires when
``effective_cost_bps > disclosed_cost_bps + cost_disclosure_tolerance_bps`` (10).

Other definitions (README.md, "Transfers", is the specification)
-----------------------------------------------------------------
* Value of a payout (in the promised currency): its amount when in the promised
  currency; else converted at its ``fx_rate`` (promised units per unit of its
  currency); else, in the send currency, at the transfer's quoted ``exchange_rate``;
  else none (an *unvalued* payout: it counts as delivered, not in the paid total).
  Conversions are exact and rounded once per event, halves away from zero.
* Paid total ``P(t)``: the sum of the values of the payouts effective by ``t``, leaving
  out payouts to another beneficiary (``wrong_beneficiary``).  "Full":
  ``P*10000 >= R*(10000 - payout_tolerance_bps)``.
* The transfer is *judged* (short and cost rules) from ``J = min(available_by, the
  time the whole promise was paid)`` (``P >= R``, no tolerance: a last instalment
  within the tolerance may still come): instalments before the promised time are silent.
* A cancellation at or before ``J`` voids the payout rules (no short, cost-on-payout,
  late or missing flag); a later one resolves late/missing/short at its time.  A refund
  without a cancellation settles nothing.  A cancelled transfer owes a refund
  ``E`` (send amount, plus the fee if cancelled within ``cancellation_window`` of the
  sent event, minus the value paid out converted back at the quoted rate, floor 0) by
  ``D`` = cancellation + ``refund_period_business_days`` business days.
* Status: ``pending_sent`` while no ``transfer.sent`` is known (no rule runs), else
  ``refunded`` > ``cancelled`` > ``paid`` > ``sent`` by precedence.
* ``delivery_seconds``: first payout's ``paid_at`` minus the sent event's ``event_time``.
* Sender and beneficiary pseudonyms never leave this module (no person data in state).

Authority (:mod:`.authority`): the transfer's ``transfer.sent`` is the first one in log
order that names its own publisher as ``operator``; a foreign-named one or any later
one is disregarded.  Payouts come from that operator or a payout agent it names
(``payout_agents``), cancellations and refunds from the operator; a settling event
dated (payload time or ``event_time``) before the ``transfer.sent`` is disregarded.
Each disregarded event raises ``authority_violation`` (key: its event id; accountable:
its publisher) and changes nothing else (``state.disregarded_event_ids``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any, Final, Literal

from schemas.costs import effective_cost_bps
from schemas.money import (
    ISO_4217_MINOR_UNITS,
    major_fraction,
    minor_units,
    parse_rate,
    round_half_away,
)
from schemas.thresholds import Thresholds
from schemas.times import add_business_days, format_time, parse_time
from stream_processors.rules.authority import disregard, log_order
from stream_processors.rules.model import (
    EVIDENCE_LIMIT,
    TICK,
    Contribution,
    Evt,
    FlagSpec,
    FlagType,
    Point,
    Severity,
    Trace,
    canonical_events,
    effective_time,
    horizon,
    parse_money,
    payload_str,
    trace,
)

__all__ = [
    "TRANSFER_EVENT_TYPES",
    "TransferResult",
    "TransferState",
    "TransferStatus",
    "reconcile_transfer",
]

TransferStatus = Literal["pending_sent", "sent", "paid", "cancelled", "refunded"]

#: Event types that belong to a transfer's history (keyed by ``payload.transfer_id``).
TRANSFER_EVENT_TYPES: Final = frozenset(
    {"transfer.sent", "transfer.paid_out", "transfer.cancelled", "transfer.refunded"}
)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class TransferState:
    """Promised vs actual for one transfer, with no person data (no sender, no beneficiary)."""

    transfer_id: str
    status: TransferStatus
    operator: str | None = None
    corridor_from: str | None = None
    corridor_to: str | None = None
    destination_kind: str | None = None
    project_id: str | None = None
    club_id: str | None = None
    send_amount: int | None = None
    send_currency: str | None = None
    fee_amount: int | None = None
    fee_currency: str | None = None
    exchange_rate: str | None = None
    promised_amount: int | None = None
    promised_currency: str | None = None
    available_by: datetime | None = None
    disclosed_cost_bps: int | None = None
    effective_cost_bps: int | None = None
    paid_amount: int = 0
    payout_count: int = 0
    other_currency_payouts: tuple[tuple[str, int], ...] = ()
    first_paid_at: datetime | None = None
    last_paid_at: datetime | None = None
    delivery_seconds: int | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    refunded_at: datetime | None = None
    refunded_amount: int | None = None
    refunded_currency: str | None = None
    refund_expected: int | None = None
    refund_due_by: datetime | None = None
    wrong_beneficiary_payouts: int = 0
    unvalued_payouts: int = 0
    sent_event_id: str | None = None
    sent_log_index: int | None = None
    sent_at: datetime | None = None
    receipt_digest: str | None = None
    event_count: int = 0
    ignored_event_ids: tuple[str, ...] = ()
    disregarded_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What the rules conclude about one transfer at one instant of the event-time clock."""

    state: TransferState
    flags: list[FlagSpec]
    next_deadline: datetime | None
    contribution: Contribution | None


# --------------------------------------------------------------------------- parsed facts


@dataclass(frozen=True, slots=True)
class _Sent:
    evt: Evt
    operator: str
    corridor_from: str
    corridor_to: str
    send: int
    send_ccy: str
    fee: int
    fee_ccy: str
    rate_text: str
    rate: Fraction
    promised: int
    promised_ccy: str
    available_by: datetime
    dest_kind: str
    project_id: str | None
    club_id: str | None
    receipt_digest: str
    disclosed_bps: int
    beneficiary: str | None


@dataclass(frozen=True, slots=True)
class _Payout:
    evt: Evt
    amount: int
    currency: str
    paid_at: datetime
    at: datetime
    fx_text: str | None = None
    fx: Fraction | None = None
    beneficiary: str | None = None


@dataclass(frozen=True, slots=True)
class _Stop:
    evt: Evt
    kind: Literal["cancelled", "refunded"]
    raw_at: datetime
    at: datetime
    reason: str | None
    amount: int | None
    currency: str | None
    fx_text: str | None = None
    fx: Fraction | None = None


def _fx(payload: Mapping[str, Any]) -> tuple[str | None, Fraction | None]:
    text = payload.get("fx_rate")
    if text is None:
        return None, None
    return str(text), parse_rate(text)


def _parse_sent(e: Evt) -> _Sent:
    p = e.payload
    corridor = p.get("corridor")
    dest = p.get("destination")
    if not isinstance(corridor, Mapping) or not isinstance(dest, Mapping):
        raise ValueError("corridor and destination must be objects")
    send, send_ccy = parse_money(p.get("send"))
    fee, fee_ccy = parse_money(p.get("fee"))
    promised, promised_ccy = parse_money(p.get("receive_promised"))
    disclosed = p.get("disclosed_cost_bps")
    if type(disclosed) is not int:
        raise ValueError("disclosed_cost_bps must be an integer")
    kind = payload_str(dest, "kind")
    project_id = payload_str(dest, "project_id") if kind == "project_fund" else None
    club_id = payload_str(dest, "club_id") if kind == "project_fund" else None
    rate_text = payload_str(p, "exchange_rate")
    return _Sent(
        evt=e,
        operator=payload_str(p, "operator"),
        corridor_from=payload_str(corridor, "from"),
        corridor_to=payload_str(corridor, "to"),
        send=send,
        send_ccy=send_ccy,
        fee=fee,
        fee_ccy=fee_ccy,
        rate_text=rate_text,
        rate=parse_rate(rate_text),
        promised=promised,
        promised_ccy=promised_ccy,
        available_by=parse_time(p.get("available_by")),
        dest_kind=kind,
        project_id=project_id,
        club_id=club_id,
        receipt_digest=payload_str(p, "receipt_digest"),
        disclosed_bps=disclosed,
        beneficiary=payload_str(dest, "beneficiary") if kind == "beneficiary" else None,
    )


def _parse_payout(e: Evt) -> _Payout:
    amount, ccy = parse_money(e.payload.get("paid"))
    paid_at = parse_time(e.payload.get("paid_at"))
    fx_text, fx = _fx(e.payload)
    ben = e.payload.get("beneficiary")
    if ben is not None and not isinstance(ben, str):
        raise ValueError("beneficiary must be a string")
    return _Payout(e, amount, ccy, paid_at, effective_time(paid_at, e), fx_text, fx, ben)


def _parse_stop(e: Evt) -> _Stop:
    p = e.payload
    if e.event_type == "transfer.cancelled":
        raw = parse_time(p.get("cancelled_at"))
        reason = p.get("reason_code")
        return _Stop(
            e,
            "cancelled",
            raw,
            effective_time(raw, e),
            reason if isinstance(reason, str) else None,
            None,
            None,
        )
    raw = parse_time(p.get("refunded_at"))
    amount, ccy = parse_money(p.get("refunded"))
    fx_text, fx = _fx(p)
    return _Stop(e, "refunded", raw, effective_time(raw, e), None, amount, ccy, fx_text, fx)


# --------------------------------------------------------------------------- the rules


def _convert(amount: int, currency: str, rate: Fraction, target: str) -> int | None:
    """``amount`` of ``currency`` times ``rate`` in minor units of ``target`` (None if unknown)."""
    try:
        value = major_fraction(amount, currency) * rate * 10 ** minor_units(target)
    except ValueError:
        return None
    return round_half_away(value)


class _Ledger:
    """Paid and refunded totals as of any instant, for the timeline conditions."""

    def __init__(
        self, sent: _Sent, payouts: list[_Payout], stops: list[_Stop], th: Thresholds
    ) -> None:
        self.sent = sent
        s = sent
        self.th = th
        # A payout naming someone else than the transfer's beneficiary (or naming a
        # person for a project fund) paid nobody the transfer owes: it is
        # wrong_beneficiary and nothing else.
        self.wrong = [
            p for p in payouts if p.beneficiary is not None and p.beneficiary != s.beneficiary
        ]
        self.payouts = [p for p in payouts if p not in self.wrong]
        self.stops = stops
        self.cancels = [x for x in stops if x.kind == "cancelled"]
        self.refunds = [x for x in stops if x.kind == "refunded"]
        self.values: dict[str, int | None] = {p.evt.event_id: self._value(p) for p in self.payouts}
        self.cost_ok = (
            s.fee_ccy == s.send_ccy
            and s.send > 0
            and s.send_ccy in ISO_4217_MINOR_UNITS
            and s.promised_ccy in ISO_4217_MINOR_UNITS
        )
        # effective(t) depends on t only through the amount paid by t, and the
        # conditions ask for it at every point of the timeline: compute each
        # amount's exact Fraction arithmetic once.
        self._effective: dict[int, int] = {}
        self.tol = th.payout_tolerance_bps
        full_at = complete_at = None
        total = 0
        for p in sorted(self.payouts, key=lambda x: (x.at, x.evt.event_id)):
            total += self.values[p.evt.event_id] or 0
            if full_at is None and self._is_full(total, s.promised, self.tol):
                full_at = p.at
            if total >= s.promised:
                complete_at = p.at
                break
        self.full_at = full_at
        # J: the transfer is judged from the promised time, or from when the whole
        # promise was paid if earlier.  Not from when it came within the payout
        # tolerance: a last instalment of less than the tolerance may still come
        # before the promised time, and instalments before it must stay silent
        # (a shortfall within the payout tolerance is still a cost, judged at A).
        self.complete_at = complete_at
        self.judge_from = (
            s.available_by if complete_at is None else min(s.available_by, complete_at)
        )
        self.cancel_at = min((x.at for x in self.cancels), default=None)
        # Cancelled at or before J: no payout was owed when it would have been judged.
        self.void = self.cancel_at is not None and self.cancel_at <= self.judge_from
        self.refund_due: datetime | None = None
        self.fee_back = False
        if self.cancel_at is not None:
            self.refund_due = add_business_days(self.cancel_at, th.refund_period_business_days)
            self.fee_back = (
                s.fee_ccy == s.send_ccy
                and self.cancel_at - s.evt.event_time <= th.cancellation_window
            )
        self.refund_values: dict[str, int | None] = {
            x.evt.event_id: self._refund_value(x) for x in self.refunds
        }

    @staticmethod
    def _is_full(amount: int, owed: int, tol: int) -> bool:
        return amount * 10000 >= owed * (10000 - tol)

    def _value(self, p: _Payout) -> int | None:
        s = self.sent
        if p.currency == s.promised_ccy:
            return p.amount
        if p.fx is not None:
            return _convert(p.amount, p.currency, p.fx, s.promised_ccy)
        if p.currency == s.send_ccy:
            return _convert(p.amount, p.currency, s.rate, s.promised_ccy)
        return None

    def _refund_value(self, x: _Stop) -> int | None:
        s = self.sent
        if x.amount is None or x.currency is None:
            return None
        if x.currency == s.send_ccy:
            return x.amount
        if x.fx is not None:
            return _convert(x.amount, x.currency, x.fx, s.send_ccy)
        if x.currency == s.promised_ccy:
            return _convert(x.amount, x.currency, 1 / s.rate, s.send_ccy)
        return None

    # --- payouts
    def paid(self, t: datetime) -> tuple[int, int]:
        """(paid total P in the promised currency, number of valued payouts) effective by ``t``."""
        vs = [self.values[p.evt.event_id] for p in self.payouts if p.at <= t]
        known = [v for v in vs if v is not None]
        return sum(known), len(known)

    def full(self, t: datetime) -> bool:
        return self.full_at is not None and t >= self.full_at

    def delivered(self, t: datetime) -> bool:
        """Some payout (valued or not) effective by ``t``."""
        return any(p.at <= t for p in self.payouts)

    def unvalued(self, t: datetime) -> bool:
        """A payout with no stated rate in a third currency effective by ``t``."""
        return any(p.at <= t and self.values[p.evt.event_id] is None for p in self.payouts)

    def judged(self, t: datetime) -> bool:
        complete = self.complete_at is not None and t >= self.complete_at
        return not self.void and (t > self.sent.available_by or complete)

    def cancelled(self, t: datetime) -> bool:
        return self.cancel_at is not None and self.cancel_at <= t

    def mismatched(self, t: datetime) -> list[_Payout]:
        return [p for p in self.payouts if p.at <= t and p.currency != self.sent.promised_ccy]

    def effective(self, t: datetime) -> int | None:
        paid, count = self.paid(t)
        if count == 0 or not self.cost_ok:
            return None
        known = self._effective.get(paid)
        if known is not None:
            return known
        s = self.sent
        eff = self._effective[paid] = effective_cost_bps(
            s.send,
            s.fee,
            s.rate_text,
            s.promised,
            paid,
            s.disclosed_bps,
            send_currency=s.send_ccy,
            receive_currency=s.promised_ccy,
        )
        return eff

    # --- refunds
    def refund_expected(self, t: datetime) -> int:
        """E(t): what the sender must get back, in send-currency minor units (floor 0)."""
        s = self.sent
        owed = s.send + (s.fee if self.fee_back else 0)
        paid, _ = self.paid(t)
        back = _convert(paid, s.promised_ccy, 1 / s.rate, s.send_ccy) if paid else 0
        return max(0, owed - (back or 0))

    def refunded(self, t: datetime) -> int:
        return sum(
            v for x in self.refunds if x.at <= t
            for v in (self.refund_values[x.evt.event_id],) if v is not None
        )

    def any_refund(self, t: datetime) -> bool:
        return any(x.at <= t for x in self.refunds)

    def refund_full(self, t: datetime) -> bool:
        return self._is_full(self.refunded(t), self.refund_expected(t), self.tol)

    def unvalued_refund(self, t: datetime) -> bool:
        return any(x.at <= t and self.refund_values[x.evt.event_id] is None for x in self.refunds)


def _ev(*groups: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for g in groups:
        for i in g:
            if i not in out:
                out.append(i)
    return tuple(out[:EVIDENCE_LIMIT])


def _stake(amount: int | None) -> int | None:
    return amount if amount is not None and amount > 0 else None


def reconcile_transfer(
    transfer_id: str, events: Sequence[Evt], now: datetime | None, th: Thresholds
) -> TransferResult:
    """Reconcile one transfer's events (any order, duplicates allowed) at clock ``now``.

    ``now`` is the shared event-time clock; ``None`` means no clock yet, so only what
    the transfer's own events prove is flagged.  Pure: no I/O, no wall clock.
    """
    evs = canonical_events(
        events,
        lambda e: (
            e.event_type in TRANSFER_EVENT_TYPES and e.payload.get("transfer_id") == transfer_id
        ),
    )
    sents: list[_Sent] = []
    payouts: list[_Payout] = []
    stops: list[_Stop] = []
    ignored: list[str] = []
    for e in evs:
        try:
            if e.event_type == "transfer.sent":
                sents.append(_parse_sent(e))
            elif e.event_type == "transfer.paid_out":
                payouts.append(_parse_payout(e))
            else:
                stops.append(_parse_stop(e))
        except (ValueError, TypeError, ArithmeticError):
            ignored.append(e.event_id)
    sent, payouts, stops, aflags = _authority(transfer_id, sents, payouts, stops)
    disregarded = tuple(f.key for f in aflags)
    limit = horizon(evs, now)
    state = _state(transfer_id, evs, sent, payouts, stops, ignored, limit, th, disregarded)
    if sent is None or limit is None:
        return TransferResult(state, aflags, None, None)

    ledger = _Ledger(sent, payouts, stops, th)
    flags: list[FlagSpec] = list(aflags)
    deadlines: list[datetime] = []
    for rule in _RULES:
        raised, deadline = rule(ledger, limit, th)
        flags.extend(raised)
        if deadline is not None:
            deadlines.append(deadline)
    flags.sort(key=lambda f: (f.raised_at, f.flag_type, f.key))
    return TransferResult(
        state, flags, min(deadlines) if deadlines else None, _contribution(sent, ledger, evs)
    )


def _authority(
    transfer_id: str, sents: list[_Sent], payouts: list[_Payout], stops: list[_Stop]
) -> tuple[_Sent | None, list[_Payout], list[_Stop], list[FlagSpec]]:
    """The registration that stands and the settling events its owner may publish; flags for the rest."""
    flags: list[FlagSpec] = []
    sent: _Sent | None = None
    for s in sorted(sents, key=lambda x: log_order(x.evt)):
        if s.evt.publisher_id is not None and s.operator != s.evt.publisher_id:
            flags.append(disregard("transfer", transfer_id, s.evt, "not_subject_owner", "/payload/operator"))
        elif sent is None:
            sent = s
        else:
            flags.append(disregard("transfer", transfer_id, s.evt, "subject_exists", "/payload/transfer_id"))
    if sent is None:
        # No owner known yet: nothing else can be judged (status pending_sent).
        return None, payouts, stops, flags
    owner = sent.evt.publisher_id or sent.operator
    named = sent.evt.payload.get("payout_agents")
    agents = frozenset(a for a in named if isinstance(a, str)) if isinstance(named, list | tuple) else frozenset()
    origin = sent.evt.event_time

    def refused(e: Evt, at: datetime, field: str, agents_ok: bool) -> bool:
        pub = e.publisher_id
        if pub is not None and pub != owner and not (agents_ok and pub in agents):
            flags.append(disregard("transfer", transfer_id, e, "not_subject_owner", "/header/publisher_id"))
            return True
        for path, t in ((f"/payload/{field}", at), ("/header/event_time", e.event_time)):
            if t < origin:
                flags.append(disregard("transfer", transfer_id, e, "time_before_origin", path))
                return True
        return False

    kept_payouts = [p for p in payouts if not refused(p.evt, p.paid_at, "paid_at", True)]
    kept_stops = [
        x for x in stops
        if not refused(x.evt, x.raw_at, "cancelled_at" if x.kind == "cancelled" else "refunded_at", False)
    ]
    return sent, kept_payouts, kept_stops, flags


def _state(
    transfer_id: str,
    evs: list[Evt],
    sent: _Sent | None,
    payouts: list[_Payout],
    stops: list[_Stop],
    ignored: list[str],
    limit: datetime | None,
    th: Thresholds,
    disregarded: tuple[str, ...] = (),
) -> TransferState:
    cancels = [x for x in stops if x.kind == "cancelled"]
    refunds = [x for x in stops if x.kind == "refunded"]
    common: dict[str, Any] = {
        "transfer_id": transfer_id,
        "event_count": len(evs),
        "ignored_event_ids": tuple(ignored),
        "disregarded_event_ids": disregarded,
        "payout_count": len(payouts),
    }
    if cancels:
        common["cancelled_at"] = cancels[0].raw_at
        common["cancel_reason"] = cancels[0].reason
    if refunds:
        common["refunded_at"] = refunds[0].raw_at
        common["refunded_amount"] = sum(
            x.amount or 0 for x in refunds if x.currency == refunds[0].currency
        )
        common["refunded_currency"] = refunds[0].currency
    if sent is None:
        return TransferState(status="pending_sent", **common)
    ledger = _Ledger(sent, payouts, stops, th)
    good = ledger.payouts
    at = limit if limit is not None else max((p.at for p in good), default=sent.evt.event_time)
    valued = [p for p in good if ledger.values[p.evt.event_id] is not None]
    others: dict[str, int] = {}
    for p in good:
        if p.currency != sent.promised_ccy:
            others[p.currency] = others.get(p.currency, 0) + p.amount
    status: TransferStatus
    if refunds:
        status = "refunded"
    elif cancels:
        status = "cancelled"
    elif payouts:
        status = "paid"
    else:
        status = "sent"
    first = min(valued or good, key=lambda p: (p.at, p.evt.event_id), default=None)
    last = max(valued or good, key=lambda p: (p.at, p.evt.event_id), default=None)
    if refunds:
        common["refunded_amount"] = ledger.refunded(at)
        common["refunded_currency"] = sent.send_ccy
    return TransferState(
        status=status,
        operator=sent.operator,
        corridor_from=sent.corridor_from,
        corridor_to=sent.corridor_to,
        destination_kind=sent.dest_kind,
        project_id=sent.project_id,
        club_id=sent.club_id,
        send_amount=sent.send,
        send_currency=sent.send_ccy,
        fee_amount=sent.fee,
        fee_currency=sent.fee_ccy,
        exchange_rate=sent.rate_text,
        promised_amount=sent.promised,
        promised_currency=sent.promised_ccy,
        available_by=sent.available_by,
        disclosed_cost_bps=sent.disclosed_bps,
        effective_cost_bps=ledger.effective(limit) if limit is not None else None,
        paid_amount=ledger.paid(at)[0],
        other_currency_payouts=tuple(sorted(others.items())),
        first_paid_at=first.paid_at if first else None,
        last_paid_at=last.paid_at if last else None,
        delivery_seconds=(
            int((first.paid_at - sent.evt.event_time).total_seconds()) if first else None
        ),
        refund_expected=ledger.refund_expected(at) if ledger.cancel_at is not None else None,
        refund_due_by=ledger.refund_due,
        wrong_beneficiary_payouts=len(ledger.wrong),
        unvalued_payouts=len(good) - len(valued),
        sent_event_id=sent.evt.event_id,
        sent_log_index=sent.evt.log_index,
        sent_at=sent.evt.event_time,
        receipt_digest=sent.receipt_digest,
        **common,
    )


def _contribution(sent: _Sent, ledger: _Ledger, evs: list[Evt]) -> Contribution | None:
    if sent.dest_kind != "project_fund" or sent.project_id is None or sent.club_id is None:
        return None
    mine = [p for p in ledger.payouts if ledger.values[p.evt.event_id] is not None]
    if not mine:
        return None
    return Contribution(
        project_id=sent.project_id,
        club_id=sent.club_id,
        transfer_id=sent.evt.payload["transfer_id"],
        amount=sum(ledger.values[p.evt.event_id] or 0 for p in mine),
        currency=sent.promised_ccy,
        received_at=min(p.at for p in mine),
        evidence=_ev([sent.evt.event_id], [p.evt.event_id for p in mine]),
        version=len(evs),
        operator=sent.evt.publisher_id or sent.operator,
    )


def _points(ledger: _Ledger, *deadlines: datetime) -> list[Point]:
    pts = [Point(ledger.sent.evt.event_time, ledger.sent.evt.event_time)]
    pts += [Point(p.at, p.at) for p in ledger.payouts]
    pts += [Point(x.at, x.at) for x in ledger.stops]
    pts += [Point(d + TICK, d) for d in deadlines]
    return pts


def _make(
    ledger: _Ledger,
    flag_type: FlagType,
    tr: Trace[Any],
    severity: Severity,
    amount: int | None,
    currency: str | None,
    evidence: tuple[str, ...],
    detail: dict[str, Any],
    key: str = "",
) -> FlagSpec:
    detail = dict(detail)
    detail["episodes"] = tr.episodes
    return FlagSpec(
        flag_type=flag_type,
        key=key,
        subject_kind="transfer",
        subject_id=str(ledger.sent.evt.payload["transfer_id"]),
        accountable=ledger.sent.operator,
        severity=severity,
        amount_at_stake=_stake(amount),
        currency=currency if _stake(amount) is not None else None,
        evidence=evidence,
        raised_at=tr.raised_at,
        resolved_at=tr.resolved_at,
        detail=detail,
    )


_Result = tuple[list[FlagSpec], datetime | None]
_Rule = Callable[[_Ledger, datetime, Thresholds], _Result]


def _payout_ids(ledger: _Ledger, t: datetime | None = None) -> list[str]:
    return [p.evt.event_id for p in ledger.payouts if t is None or p.at <= t]


def _one(flag: FlagSpec | None, nxt: datetime | None) -> _Result:
    return ([flag] if flag is not None else []), nxt


def _resolver(ledger: _Ledger, at: datetime | None, with_cancel: bool = True) -> Evt | None:
    """The settling event effective at ``at`` (a payout, else a cancellation)."""
    if at is None:
        return None
    cands = [(p.at, p.evt.event_time, p.evt.event_id, p.evt) for p in ledger.payouts]
    if with_cancel:
        cands += [(x.at, x.evt.event_time, x.evt.event_id, x.evt) for x in ledger.cancels]
    for c_at, _, _, evt in sorted(cands, key=lambda c: c[:3]):
        if c_at == at:
            return evt
    return None


def _short_payout(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        paid, _ = ledger.paid(t)
        short = (
            ledger.judged(t)
            and ledger.delivered(t)
            and not ledger.full(t)
            and not ledger.cancelled(t)
        )
        return short, s.promised - paid

    tr, nxt = trace(_points(ledger, s.available_by), cond, limit)
    if tr is None:
        return [], nxt
    paid, _ = ledger.paid(limit)
    detail: dict[str, Any] = {
        "promised": s.promised,
        "paid": paid,
        "tolerance_bps": th.payout_tolerance_bps,
    }
    if ledger.unvalued(limit):
        detail["unvalued_payouts"] = sum(
            1 for p in ledger.payouts if p.at <= limit and ledger.values[p.evt.event_id] is None
        )
    by = _resolver(ledger, tr.resolved_at)
    if by is not None:
        detail["resolved_by"] = by.event_type
    return _one(_make(
        ledger,
        "short_payout",
        tr,
        "high",
        tr.info,
        s.promised_ccy,
        _ev([s.evt.event_id], _payout_ids(ledger)),
        detail,
    ), nxt)


def _currency_mismatch(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        return bool(ledger.mismatched(t)), s.promised

    tr, nxt = trace(_points(ledger), cond, limit)
    if tr is None:
        return [], nxt
    bad = sorted(ledger.mismatched(limit), key=lambda p: (p.at, p.evt.event_id))
    rates = []
    for p in bad:
        if p.fx_text is not None:
            rates.append(p.fx_text)
        elif p.currency == s.send_ccy:
            rates.append(f"quoted {s.rate_text}")
        else:
            rates.append("undisclosed")
    return _one(_make(
        ledger,
        "payout_currency_mismatch",
        tr,
        "medium",
        s.promised,
        s.promised_ccy,
        _ev([s.evt.event_id], [p.evt.event_id for p in bad]),
        {
            "promised_currency": s.promised_ccy,
            "paid_currencies": ",".join(sorted({p.currency for p in bad})),
            # per payout, in time order: the rate it stated, the quoted rate it was
            # converted at (a payout in the send currency), or "undisclosed" (not
            # counted in the paid total)
            "fx_rate": ",".join(rates),
        },
    ), nxt)


def _paid_twice(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        paid, _ = ledger.paid(t)
        return paid * 10000 > s.promised * (10000 + th.payout_tolerance_bps), paid - s.promised

    tr, nxt = trace(_points(ledger), cond, limit)
    if tr is None:
        return [], nxt
    paid, count = ledger.paid(limit)
    return _one(_make(
        ledger,
        "paid_twice",
        tr,
        "medium",
        tr.info,
        s.promised_ccy,
        _ev([s.evt.event_id], _payout_ids(ledger)),
        {"promised": s.promised, "paid": paid, "payouts": count},
    ), nxt)


def _cost_above_disclosed(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        eff = ledger.effective(t) if ledger.judged(t) else None
        if eff is None:
            return False, 0
        return eff > s.disclosed_bps + th.cost_disclosure_tolerance_bps, eff

    tr, nxt = trace(_points(ledger, s.available_by), cond, limit)
    if tr is None:
        return [], nxt
    eff = tr.info
    return _one(_make(
        ledger,
        "cost_above_disclosed",
        tr,
        "medium",
        round_half_away(Fraction((eff - s.disclosed_bps) * s.send, 10000)),
        s.send_ccy,
        _ev([s.evt.event_id], _payout_ids(ledger)),
        {
            "disclosed_cost_bps": s.disclosed_bps,
            "effective_cost_bps": eff,
            "tolerance_bps": th.cost_disclosure_tolerance_bps,
        },
    ), nxt)


def _cost_above_ceiling(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent
    sent_at = s.evt.event_time

    # A disclosure above the ceiling is the whole flag, from the send: its amount
    # is the disclosed excess and stays what it is when the payout is judged (at
    # J, by the clock), since the effective excess over the disclosure is
    # cost_above_disclosed's.  Otherwise the clock would change a public flag
    # (regression: 501 bps disclosed, 1 centavo paid at available_by).
    by_disclosure = s.disclosed_bps > th.corridor_cost_ceiling_bps

    def cond(t: datetime) -> tuple[bool, int]:
        if by_disclosure:
            return t >= sent_at, s.disclosed_bps
        eff = ledger.effective(t) if ledger.judged(t) else None
        cost = max(s.disclosed_bps, eff if eff is not None else s.disclosed_bps)
        return t >= sent_at and cost > th.corridor_cost_ceiling_bps, cost

    tr, nxt = trace(_points(ledger, s.available_by), cond, limit)
    if tr is None:
        return [], nxt
    eff = ledger.effective(limit) if ledger.judged(limit) and not by_disclosure else None
    detail: dict[str, Any] = {
        "ceiling_bps": th.corridor_cost_ceiling_bps,
        "disclosed_cost_bps": s.disclosed_bps,
        "cost_bps": tr.info,
    }
    if eff is not None:
        detail["effective_cost_bps"] = eff
    return _one(_make(
        ledger,
        "cost_above_ceiling",
        tr,
        "medium",
        round_half_away(Fraction((tr.info - th.corridor_cost_ceiling_bps) * s.send, 10000)),
        s.send_ccy,
        _ev([s.evt.event_id], _payout_ids(ledger)),
        detail,
    ), nxt)


def _late_payout(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent
    deadline = s.available_by

    def cond(t: datetime) -> tuple[bool, int]:
        late = (
            not ledger.void
            and t > deadline
            and not ledger.full(t)
            and not ledger.unvalued(t)
            and not ledger.cancelled(t)
        )
        return late, s.promised - ledger.paid(t)[0]

    tr, nxt = trace(_points(ledger, deadline), cond, limit)
    if tr is None:
        return [], nxt
    detail: dict[str, Any] = {"available_by": format_time(s.available_by, full_fraction=True)}
    evidence = [s.evt.event_id, *_payout_ids(ledger, deadline)]
    severity: Severity = "low"
    if tr.resolved_at is not None:
        delay = tr.resolved_at - s.available_by
        detail["delay_seconds"] = int(delay.total_seconds())
        by = _resolver(ledger, tr.resolved_at)
        if by is not None:
            detail["resolved_by"] = by.event_type
            evidence.append(by.event_id)
        if delay > th.payout_grace:
            severity = "medium"
    return _one(_make(
        ledger, "late_payout", tr, severity, tr.info, s.promised_ccy, _ev(evidence), detail
    ), nxt)


def _missing_payout(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent
    deadline = s.available_by + th.payout_grace

    def cond(t: datetime) -> tuple[bool, int]:
        missing = (
            not ledger.void
            and t > deadline
            and not ledger.delivered(t)
            and not ledger.cancelled(t)
        )
        return missing, s.promised

    tr, nxt = trace(_points(ledger, deadline), cond, limit)
    if tr is None:
        return [], nxt
    detail: dict[str, Any] = {
        "available_by": format_time(s.available_by, full_fraction=True),
        "grace_seconds": int(th.payout_grace.total_seconds()),
    }
    evidence = [s.evt.event_id]
    if tr.resolved_at is not None:
        detail["delay_seconds"] = int((tr.resolved_at - s.available_by).total_seconds())
        by = _resolver(ledger, tr.resolved_at)
        if by is not None:
            detail["resolved_by"] = by.event_type
            evidence.append(by.event_id)
    return _one(_make(
        ledger, "missing_payout", tr, "critical", s.promised, s.promised_ccy, _ev(evidence), detail
    ), nxt)


def _wrong_beneficiary(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    s = ledger.sent
    out: list[FlagSpec] = []
    for p in ledger.wrong:
        if p.at > limit:  # pragma: no cover - facts never lie beyond the horizon
            continue
        tr: Trace[int] = Trace(p.at, None, p.amount, 1)
        out.append(_make(
            ledger,
            "wrong_beneficiary",
            tr,
            "critical",
            p.amount,
            p.currency,
            _ev([s.evt.event_id, p.evt.event_id]),
            {"destination_kind": s.dest_kind},
            key=p.evt.event_id,
        ))
    return out, None


def _refund_detail(ledger: _Ledger, limit: datetime) -> dict[str, Any]:
    s = ledger.sent
    assert ledger.refund_due is not None and ledger.cancel_at is not None
    return {
        "cancelled_at": format_time(ledger.cancel_at, full_fraction=True),
        "refund_due_by": format_time(ledger.refund_due, full_fraction=True),
        "expected": ledger.refund_expected(limit),
        "refunded": ledger.refunded(limit),
        "fee_included": "yes" if ledger.fee_back else "no",
        "currency": s.send_ccy,
    }


def _refund_ids(ledger: _Ledger) -> list[str]:
    return [x.evt.event_id for x in ledger.cancels] + [x.evt.event_id for x in ledger.refunds]


def _refund_resolver(ledger: _Ledger, at: datetime | None) -> Evt | None:
    if at is None:
        return None
    cands = [(x.at, x.evt.event_time, x.evt.event_id, x.evt) for x in ledger.refunds]
    cands += [(p.at, p.evt.event_time, p.evt.event_id, p.evt) for p in ledger.payouts]
    for c_at, _, _, evt in sorted(cands, key=lambda c: c[:3]):
        if c_at == at:
            return evt
    return None


def _refund_late(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    due = ledger.refund_due
    if due is None:
        return [], None
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        late = t > due and not ledger.refund_full(t) and not ledger.unvalued_refund(t)
        return late, ledger.refund_expected(t) - ledger.refunded(t)

    tr, nxt = trace(_points(ledger, due), cond, limit)
    if tr is None:
        return [], nxt
    detail = _refund_detail(ledger, limit)
    severity: Severity = "low"
    evidence = [s.evt.event_id, *_refund_ids(ledger)]
    if tr.resolved_at is not None:
        delay = tr.resolved_at - due
        detail["delay_seconds"] = int(delay.total_seconds())
        by = _refund_resolver(ledger, tr.resolved_at)
        if by is not None:
            detail["resolved_by"] = by.event_type
        if delay > th.payout_grace:
            severity = "medium"
    return _one(_make(
        ledger, "refund_late", tr, severity, tr.info, s.send_ccy, _ev(evidence), detail
    ), nxt)


def _refund_missing(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    if ledger.refund_due is None:
        return [], None
    due = ledger.refund_due + th.payout_grace
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        missing = t > due and not ledger.any_refund(t) and not ledger.refund_full(t)
        return missing, ledger.refund_expected(t)

    tr, nxt = trace(_points(ledger, due), cond, limit)
    if tr is None:
        return [], nxt
    detail = _refund_detail(ledger, limit)
    detail["grace_seconds"] = int(th.payout_grace.total_seconds())
    if tr.resolved_at is not None:
        by = _refund_resolver(ledger, tr.resolved_at)
        if by is not None:
            detail["resolved_by"] = by.event_type
    return _one(_make(
        ledger,
        "refund_missing",
        tr,
        "critical",
        tr.info,
        s.send_ccy,
        _ev([s.evt.event_id], _refund_ids(ledger)),
        detail,
    ), nxt)


def _refund_short(ledger: _Ledger, limit: datetime, th: Thresholds) -> _Result:
    due = ledger.refund_due
    if due is None:
        return [], None
    s = ledger.sent

    def cond(t: datetime) -> tuple[bool, int]:
        short = t > due and ledger.any_refund(t) and not ledger.refund_full(t)
        return short, ledger.refund_expected(t) - ledger.refunded(t)

    tr, nxt = trace(_points(ledger, due), cond, limit)
    if tr is None:
        return [], nxt
    detail = _refund_detail(ledger, limit)
    detail["tolerance_bps"] = th.payout_tolerance_bps
    if tr.resolved_at is not None:
        by = _refund_resolver(ledger, tr.resolved_at)
        if by is not None:
            detail["resolved_by"] = by.event_type
    return _one(_make(
        ledger,
        "refund_short",
        tr,
        "high",
        tr.info,
        s.send_ccy,
        _ev([s.evt.event_id], _refund_ids(ledger)),
        detail,
    ), nxt)


_RULES: Final[tuple[_Rule, ...]] = (
    _short_payout,
    _currency_mismatch,
    _paid_twice,
    _cost_above_disclosed,
    _cost_above_ceiling,
    _late_payout,
    _missing_payout,
    _wrong_beneficiary,
    _refund_late,
    _refund_missing,
    _refund_short,
)
