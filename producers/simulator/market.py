"""The market: mid rates, prices, senders and how much and how often they send.

Shared by the backfill (:mod:`.build`) and the live trickle (:mod:`.live`), so
live traffic looks like the backfill.  Prices are disclosed with the one
formula of the core (:func:`schemas.costs.disclosed_cost_bps`), honestly
unless a case asks otherwise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from producers.simulator.world import CORRIDORS, build_roster, operator_secret, seeded_rng
from schemas.costs import disclosed_cost_bps
from schemas.privacy import PseudonymKind, receipt_digest, transfer_pseudonym
from schemas.times import format_time

__all__ = [
    "Quote",
    "mid_rate",
    "price",
    "Person",
    "Sender",
    "money",
    "sent_payload",
    "paid_payload",
    "Market",
]


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced transfer: amounts in minor units, rates as decimal text as on the wire."""

    corridor: tuple[str, str]
    send: int
    send_ccy: str
    fee: int
    rate: str
    mid: str
    promised: int
    recv_ccy: str
    disclosed: int


def mid_rate(corridor: tuple[str, str], at: datetime) -> Decimal:
    """A smooth, deterministic market mid rate (a few % of drift over weeks)."""
    _, _, base, _ = CORRIDORS[corridor]
    if base == "1":
        return Decimal(1)
    days = (at - datetime(2020, 1, 1, tzinfo=UTC)).total_seconds() / 86400
    phase = sum(map(ord, "".join(corridor)))
    drift = 0.018 * math.sin(2 * math.pi * days / 47 + phase) + 0.005 * math.sin(
        2 * math.pi * days / 9.3 + phase / 3
    )
    return (Decimal(base) * Decimal(repr(round(1 + drift, 6)))).quantize(Decimal("0.000001"))


def price(
    corridor: tuple[str, str],
    send: int,
    at: datetime,
    *,
    cost_bps: int,
    margin_bps: int,
    withholding_bps: int = 0,
    cap_bps: int | None = None,
) -> Quote:
    """Price a transfer: fee + FX margin of about ``cost_bps``, disclosed by the core's formula.

    ``withholding_bps`` pays less than the quoted rate promises while disclosing
    as if it did not (an understated disclosure); ``cap_bps`` lowers the fee
    until the honest disclosure is at most that.
    """
    src, dst, _, _ = CORRIDORS[corridor]
    mid = mid_rate(corridor, at)
    if src == dst:
        margin_bps = 0
    rate = (mid * (10000 - margin_bps) / 10000).quantize(Decimal("0.0001"), ROUND_DOWN)
    if src == dst:
        rate = Decimal(1)
    rate_s, mid_s = str(rate), str(mid)
    nominal = int((Decimal(send) * rate).to_integral_value(ROUND_FLOOR))
    promised = nominal * (10000 - withholding_bps) // 10000
    fee = max(0, (send * max(0, cost_bps - margin_bps) + 5000) // 10000)
    while True:
        disclosed = disclosed_cost_bps(
            send, fee, rate_s, nominal, mid_s, send_currency=src, receive_currency=dst
        )
        if cap_bps is None or disclosed <= cap_bps or fee == 0:
            break
        fee = max(0, fee - max(1, send // 2000))
    return Quote(corridor, send, src, fee, rate_s, mid_s, promised, dst, disclosed)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the operator knows, off the record: only per-transfer pseudonyms are published."""

    secret: bytes  # the operator's off-record secret
    identifier: str  # who the person is to the operator (never published)

    def pseudonym(self, kind: PseudonymKind, transfer_id: str) -> str:
        """The person's pseudonym on one transfer (``schemas.privacy.transfer_pseudonym``)."""
        return transfer_pseudonym(self.secret, kind, self.identifier, transfer_id)


@dataclass(slots=True)
class Sender:
    """A sender abroad with one or two beneficiaries at home; each appears in public only as a
    pseudonym of one transfer (issue 14.6: nothing public links two transfers of a person)."""

    operator: str
    corridor: tuple[str, str]
    person: Person
    beneficiaries: tuple[Person, ...]
    typical: float  # typical send, major units


def money(amount: int, currency: str) -> dict[str, Any]:
    """The wire shape of an amount: integer minor units and an ISO 4217 code."""
    return {"amount": amount, "currency": currency}


def sent_payload(
    transfer_id: str,
    operator: str,
    corridor: tuple[str, str],
    q: Quote,
    available_by: datetime,
    *,
    destination: Mapping[str, Any],
    sender: Person,
    receipt_code: str,
) -> dict[str, Any]:
    """The ``transfer.sent`` payload of a priced transfer (only the receipt code's digest).

    The sender and a beneficiary (a :class:`Person` in ``destination``) are
    written as their pseudonyms on this transfer only.
    """
    destination = dict(destination)
    ben = destination.get("beneficiary")
    if isinstance(ben, Person):
        destination["beneficiary"] = ben.pseudonym("ben", transfer_id)
    return {
        "transfer_id": transfer_id,
        "operator": operator,
        "corridor": {"from": corridor[0], "to": corridor[1]},
        "send": money(q.send, q.send_ccy),
        "fee": money(q.fee, q.send_ccy),
        "exchange_rate": q.rate,
        "receive_promised": money(q.promised, q.recv_ccy),
        "available_by": format_time(available_by),
        "destination": destination,
        "sender": sender.pseudonym("snd", transfer_id),
        "receipt_digest": receipt_digest(receipt_code),
        "disclosed_cost_bps": q.disclosed,
    }


def paid_payload(
    transfer_id: str, amount: int, currency: str, paid_at: datetime, payout_ref: str
) -> dict[str, Any]:
    """The ``transfer.paid_out`` payload."""
    return {
        "transfer_id": transfer_id,
        "paid": money(amount, currency),
        "paid_at": format_time(paid_at),
        "payout_ref": payout_ref,
    }


class Market:
    """Operators, corridors, pricing and senders: what the backfill and the live trickle share."""

    def __init__(self, seed: int, rng: random.Random, run_tag: str) -> None:
        self.seed = seed
        self.roster = build_roster(seed)
        self.rng = rng
        self.run_tag = run_tag
        self.secrets = {op: operator_secret(seed, op) for op in self.roster.operators}
        self.profiles = {op: self.operator_profile(op) for op in self.roster.operators}

    def operator_profile(self, op: str) -> tuple[int, int]:
        """An operator's pricing habits, from its own random stream (the same in every run)."""
        r = seeded_rng(self.seed, "profile", op)
        return r.randint(300, 420), r.randint(80, 220)  # (typical cost bps, FX margin bps)

    def clean_quote(
        self, op: str, corridor: tuple[str, str], send: int, at: datetime, major: float
    ) -> Quote:
        """An honest price of 2.2-4.8 %: under the 5 % ceiling, as clean traffic must be."""
        base, margin = self.profiles[op]
        cost = base + int(self.rng.gauss(0, 30)) + (60 if major < 100 else 0)
        cost = max(220, min(480, cost))
        return price(
            corridor, send, at, cost_bps=cost, margin_bps=min(margin, cost - 40), cap_bps=490
        )

    def instant_delay(self) -> timedelta:
        """Time to payout of an instant transfer: lognormal, median ~4 min, under 50 min."""
        secs = self.rng.lognormvariate(math.log(240), 0.9)
        return timedelta(seconds=int(min(3000, max(20, secs))))

    def new_sender(self, op: str, corridor: tuple[str, str], n: int) -> Sender:
        """A new sender of ``op`` in ``corridor`` (known to the operator by its secret and an identifier)."""
        secret = self.secrets.get(op) or operator_secret(self.seed, op)
        ident = f"{self.run_tag}:sender:{n}"
        bens = tuple(Person(secret, f"{ident}:ben:{i}") for i in range(self.rng.choice((1, 1, 2))))
        monthly = min(2500.0, max(80.0, self.rng.lognormvariate(math.log(340), 0.45)))
        per_month = self.rng.choice((2.0, 2.5, 3.0))
        return Sender(op, corridor, Person(secret, ident), bens, monthly / per_month)

    def pick_corridor(self) -> tuple[str, str]:
        """A corridor, weighted by its share of sends."""
        corridors = list(CORRIDORS)
        return self.rng.choices(corridors, weights=[CORRIDORS[c][3] for c in corridors])[0]

    def pick_operator(self, corridor: tuple[str, str]) -> str:
        """An operator serving ``corridor``, the first ones more often (market leaders)."""
        ops = [o for o in self.roster.operators if corridor in self.roster.corridors_by_operator[o]]
        weights = [3.0 if i == 0 else 2.0 if i == 1 else 1.0 for i in range(len(ops))]
        return self.rng.choices(ops, weights=weights)[0]

    def send_amount(self, s: Sender) -> float:
        """Lognormal around the sender's typical amount, often rounded as people do."""
        major = min(2500.0, max(20.0, s.typical * self.rng.lognormvariate(0, 0.25)))
        r = self.rng.random()
        if r < 0.6:
            return float(max(20, round(major / 10) * 10))
        if r < 0.8:
            return float(round(major))
        return round(major, 2)
