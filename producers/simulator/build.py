"""A deterministic, realistic simulator of remittances and 3x1 hometown projects.

Pure: ``simulate(seed, ...)`` returns the publishers (with Ed25519 keys derived
from the seed), the registry actions to publish first, the signed envelopes in
publication order and the ground truth; it publishes nothing.  Same inputs give
byte-identical envelopes, so a run can be re-published (it reads as duplicates)
and any platform can be scored against the same truth.

What it models (figures from ``/work/shared/design/domain.md``):

* Remittances US->MX/GT/SV/HN and a few CA/ES->MX through 4-6 operators.  A
  sender sends ~US$370 a month in 2-3 transfers (lognormal amounts); costs are
  fee + FX margin, 2-5 %, disclosed honestly with the rules' own formula
  (``disclosed_cost_bps``); 80 % are paid within the hour, the rest within a
  business day.
* 3x1 projects of every type, registered by a club committee: infrastructure
  25 % club / 25 % federal / 50 % municipal+state, productive 50 % club / 50 %
  federal.  Club members' contributions are transfers to the project fund;
  governments pledge and disburse; the committee reports milestones with
  evidence digests and the hometown mirror club verifies them.
* With ``anomalies=True``, labelled cases of every discrepancy the rules flag
  and of every attack on the gate (forgery, revoked key, wrong role, replay,
  equivocation, sequence gap, out-of-order delivery).

Time layout of a window ``[start, end]`` (why: the platform's clock is the
minimum over partitions of the latest event time minus an hour of lateness, so
nothing may depend on the exact value of the final clock):

* every deadline of a clean entity is met before ``cutoff`` (``end`` - 2 days
  12 h) or falls after ``end`` + 1 day;
* every injected time-based anomaly has its deadline before ``cutoff``;
* the last 2 days 6 h (the tail) hold only instant-paid transfers plus one
  deadline-free event per project (the federal government's second tranche),
  so every partition of both topics has an event in the last hours.

Ground truth: one JSON object per expected flag, ``{"class", "flag_type",
"subject_kind", "subject_id", "key", "status"}`` (``key`` null means any key),
plus ``{"class": "replay"|"out_of_order", "expect": "no_flag", ...}`` for cases
that must raise nothing.  ``class`` is the injected case; its flags follow the
rules' definitions, collateral flags included (a short payout also raises a cost
above the disclosed one, for example).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from producers.simulator.live import LiveEvent, LiveFeed
from producers.simulator.market import Market, Quote, Sender, mid_rate, money, price
from producers.simulator.results import RegistryAction, SimEvent, Simulation
from producers.simulator.truth import (
    ANOMALY_CLASSES,
    ATTACK_CLASSES,
    DISCREPANCY_CLASSES,
    NO_FLAG_CLASSES,
    expected_transfer_flags,
    flag_line,
    no_flag_line,
    truth_order,
)
from producers.simulator.world import (
    DAY,
    FEDERAL,
    HOUR,
    INFRA_TYPES,
    MINUTE,
    PROJECT_TYPES,
    REGISTRATION_VALID_FROM,
    Club,
    SimPublisher,
    b32,
    derive_key,
    hash_parts,
    operator_secret,
    roster,
    seeded_rng,
)
from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import (
    Envelope,
    event_id_from,
    sign_event,
)
from schemas.errors import MalformedInput
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.thresholds import DEFAULT_THRESHOLDS
from schemas.times import format_time

__all__ = [
    "ANOMALY_CLASSES",
    "ATTACK_CLASSES",
    "DEFAULT_EVENTS",
    "DISCREPANCY_CLASSES",
    "MIN_SPAN",
    "NO_FLAG_CLASSES",
    "REGISTRATION_VALID_FROM",
    "LiveFeed",
    "LiveEvent",
    "RegistryAction",
    "SimEvent",
    "SimPublisher",
    "Simulation",
    "roster",
    "simulate",
]

#: Events generated when ``events`` is None.
DEFAULT_EVENTS: Final = 5_000
#: Shortest window: one month of event time.
MIN_SPAN: Final = timedelta(days=30)

#: The quiet tail: only instant transfers and deadline-free project events.
_TAIL: Final = timedelta(days=2, hours=6)
# --- drafts --------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Draft:
    idx: int
    publisher_id: str
    event_type: str
    payload: dict[str, Any]
    event_time: datetime
    publish_at: datetime
    event_id: str
    kind: str = "normal"  # normal | replay | equivocation | forged | refused
    reason: str | None = None
    label: str | None = None
    original: _Draft | None = None
    seq: int = 0
    envelope: Envelope | None = None


@dataclass(slots=True)
class _Transfer:
    transfer_id: str
    operator: str
    quote: Quote
    sent: _Draft
    available_by: datetime
    payouts: list[tuple[int, str, datetime]] = field(default_factory=list)
    payout_drafts: list[_Draft] = field(default_factory=list)
    label: str | None = None
    beneficiary: bool = True
    cancelled: bool = False


def _iso(t: datetime) -> str:
    return format_time(t)


class _Builder(Market):
    """Builds one run: drafts first (payloads and times), then order, sequence numbers, signing."""

    def __init__(
        self,
        seed: int,
        *,
        events: int,
        start: datetime,
        span: timedelta,
        anomalies: bool,
        first_seq: Mapping[str, int],
    ) -> None:
        self.seed = seed
        self.n_events = events
        self.start = start
        self.end = start + span
        self.tail_start = self.end - _TAIL
        self.cutoff = self.tail_start - timedelta(hours=6)
        self.fut = self.end + DAY
        self.anomalies = anomalies
        seqs = ",".join(f"{k}={v}" for k, v in sorted(first_seq.items()) if v != 1)
        tag = b32(
            hash_parts("run", seed, _iso(start), int(span.total_seconds()), events, anomalies, seqs), 5
        )
        super().__init__(seed, seeded_rng(seed, tag, "main"), tag)
        self.first_seq = dict(first_seq)
        self.drafts: list[_Draft] = []
        self.truth: list[dict[str, Any]] = []
        self.transfers: list[_Transfer] = []
        self.receipts: dict[str, str] = {}
        self.skipped: list[str] = []
        self.pubs: dict[str, SimPublisher] = {p.publisher_id: p for p in self.roster.publishers}
        self.registry: list[RegistryAction] = []
        self.revoked_op: str | None = None
        self.revoked_at: datetime | None = None
        self.attacker = derive_key(seed, "attacker")
        self._counter = 0
        self._clean_projects = 0

    # -- small helpers -------------------------------------------------------------------

    def _id(self, prefix: str, n: int = 10) -> str:
        """``prefix-runtag-<hex>``: unique, and saying nothing about what the entity is."""
        self._counter += 1
        return f"{prefix}-{self.run_tag}-{hash_parts(self.run_tag, prefix, self._counter).hex()[:n]}"

    def _at(self, a: datetime, b: datetime) -> datetime:
        """A whole-second instant in [a, b] (a when the interval is empty)."""
        span = int((b - a).total_seconds())
        return a + timedelta(seconds=self.rng.randint(0, span)) if span > 0 else a

    def draft(
        self,
        publisher_id: str,
        event_type: str,
        payload: dict[str, Any],
        event_time: datetime,
        *,
        publish_at: datetime | None = None,
        kind: str = "normal",
        reason: str | None = None,
        label: str | None = None,
        original: _Draft | None = None,
    ) -> _Draft:
        idx = len(self.drafts)
        eid = (
            original.event_id
            if original is not None
            else event_id_from(f"{self.run_tag}|{idx}".encode())
        )
        d = _Draft(
            idx,
            publisher_id,
            event_type,
            payload,
            event_time,
            publish_at or event_time,
            eid,
            kind,
            reason,
            label,
            original,
        )
        self.drafts.append(d)
        return d

    def flag(
        self,
        cls: str,
        flag_type: str,
        kind: str,
        subject: str,
        key: str | None,
        status: str = "open",
    ) -> None:
        self.truth.append(flag_line(cls, flag_type, kind, subject, key, status))

    # -- transfers -------------------------------------------------------------------------

    def transfer(
        self,
        op: str,
        corridor: tuple[str, str],
        major: float,
        at: datetime,
        *,
        sender: str,
        destination: dict[str, Any],
        instant: bool = True,
        quote: Quote | None = None,
        label: str | None = None,
    ) -> _Transfer:
        """A ``transfer.sent`` draft (payouts are added by the caller)."""
        send = max(1500, round(major * 100))
        q = quote or self.clean_quote(op, corridor, send, at, major)
        tid = self._id("trf", 12)
        code = receipt_code(self.secrets.get(op) or operator_secret(self.seed, op), tid)
        self.receipts[tid] = code
        available_by = at + HOUR if instant else _next_business_day(at)
        payload = {
            "transfer_id": tid,
            "operator": op,
            "corridor": {"from": corridor[0], "to": corridor[1]},
            "send": money(q.send, q.send_ccy),
            "fee": money(q.fee, q.send_ccy),
            "exchange_rate": q.rate,
            "receive_promised": money(q.promised, q.recv_ccy),
            "available_by": _iso(available_by),
            "destination": destination,
            "sender": sender,
            "receipt_digest": receipt_digest(code),
            "disclosed_cost_bps": q.disclosed,
        }
        d = self.draft(op, "transfer.sent", payload, at, label=label)
        tr = _Transfer(
            tid,
            op,
            q,
            d,
            available_by,
            label=label,
            beneficiary=destination["kind"] == "beneficiary",
        )
        self.transfers.append(tr)
        return tr

    def payout(
        self,
        tr: _Transfer,
        paid_at: datetime,
        amount: int | None = None,
        currency: str | None = None,
        *,
        publish_at: datetime | None = None,
        label: str | None = None,
    ) -> _Draft:
        amount = tr.quote.promised if amount is None else amount
        currency = currency or tr.quote.recv_ccy
        event_time = min(self.end, paid_at + timedelta(seconds=self.rng.randint(5, 90)))
        payload = {
            "transfer_id": tr.transfer_id,
            "paid": money(amount, currency),
            "paid_at": _iso(paid_at),
            "payout_ref": self._id("po", 10),
        }
        d = self.draft(
            tr.operator,
            "transfer.paid_out",
            payload,
            event_time,
            publish_at=publish_at,
            label=label,
        )
        tr.payouts.append((amount, currency, min(paid_at, event_time)))
        tr.payout_drafts.append(d)
        return d

    def pay_clean(self, tr: _Transfer, instant: bool) -> None:
        at = tr.sent.event_time
        if instant:
            paid = at + self.instant_delay()
        else:
            paid = self._at(at + 2 * HOUR, tr.available_by - HOUR)
        self.payout(tr, paid)

    def sender_destination(self, s: Sender) -> dict[str, Any]:
        return {"kind": "beneficiary", "beneficiary": self.rng.choice(s.beneficiaries)}

    def clean_transfers(self, count: int, cancellations: int, refunded_one: bool) -> None:
        """``count`` clean paid transfers, plus cancelled ones, spread over the window."""
        total = count + cancellations
        if total <= 0:
            return
        lo, hi = self.start + MINUTE, self.end - 75 * MINUTE
        span_days = max(1.0, (hi - lo).total_seconds() / 86400)
        slots: list[tuple[datetime, int]] = []
        senders: list[Sender] = []
        while len(slots) < total:
            corridor = self.pick_corridor()
            op = self.pick_operator(corridor)
            rev = self.revoked_op is not None and self.rng.random() < 0.03
            if rev:
                op, corridor = str(self.revoked_op), ("US", "MX")
            s = self.new_sender(op, corridor, len(senders))
            senders.append(s)
            period = 30.0 / self.rng.choice((2.0, 2.5, 3.0))
            t = self.rng.uniform(0, period)
            last = span_days
            if rev and self.revoked_at is not None:
                last = min(last, (self.revoked_at - DAY - lo).total_seconds() / 86400)
            while t < last:
                slots.append((lo + timedelta(seconds=int(t * 86400)), len(senders) - 1))
                t += period * self.rng.uniform(0.7, 1.3)
        if len(slots) > total:
            drop = set(self.rng.sample(range(len(slots)), len(slots) - total))
            slots = [s for i, s in enumerate(slots) if i not in drop]
        slots.sort()
        cancel_idx = (
            set(self.rng.sample(range(len(slots)), cancellations)) if cancellations else set()
        )
        refund_pick = min(cancel_idx) if (refunded_one and cancel_idx) else None
        slow_limit = self.tail_start - 4 * DAY
        for i, (at, si) in enumerate(slots):
            s = senders[si]
            instant = at >= slow_limit or s.operator == self.revoked_op or self.rng.random() < 0.8
            tr = self.transfer(
                s.operator,
                s.corridor,
                self.send_amount(s),
                at,
                sender=s.pseudonym,
                destination=self.sender_destination(s),
                instant=instant,
            )
            if i in cancel_idx:
                self.cancel(tr, refund=(i == refund_pick))
            else:
                self.pay_clean(tr, instant)

    def cancel(self, tr: _Transfer, *, refund: bool) -> None:
        at = tr.sent.event_time + timedelta(seconds=self.rng.randint(120, 1500))
        self.draft(
            tr.operator,
            "transfer.cancelled",
            {
                "transfer_id": tr.transfer_id,
                "cancelled_at": _iso(at),
                "reason_code": "sender_request",
            },
            at,
        )
        tr.cancelled = True
        if refund:
            rt = min(self.end, at + timedelta(seconds=self.rng.randint(600, 7200)))
            q = tr.quote
            self.draft(
                tr.operator,
                "transfer.refunded",
                {
                    "transfer_id": tr.transfer_id,
                    "refunded": money(q.send + q.fee, q.send_ccy),
                    "refunded_at": _iso(rt),
                },
                rt,
            )

    # -- transfer anomalies ------------------------------------------------------------------

    def anomaly_transfer(self, label: str) -> _Transfer:
        at = self._at(self.start + 12 * HOUR, self.cutoff - 5 * DAY)
        corridor = ("US", "MX")
        op = self.pick_operator(corridor)
        s = self.new_sender(op, corridor, 10_000_000 + len(self.transfers))
        major = self.send_amount(s)
        send = max(1500, round(major * 100))
        q: Quote | None = None
        if label == "cost_above_ceiling":
            q = price(
                corridor,
                send,
                at,
                cost_bps=self.rng.randint(580, 850),
                margin_bps=self.profiles[op][1],
            )
        elif label == "cost_above_disclosed":
            _, margin = self.profiles[op]
            q = price(
                corridor,
                send,
                at,
                cost_bps=self.rng.randint(150, 250),
                margin_bps=margin,
                withholding_bps=margin + self.rng.randint(120, 260),
                cap_bps=490,
            )
        tr = self.transfer(
            op,
            corridor,
            major,
            at,
            sender=s.pseudonym,
            destination=self.sender_destination(s),
            quote=q,
            label=label,
        )
        q = tr.quote
        paid = at + self.instant_delay()
        if label == "short_payout":
            short = q.promised * (10000 - self.rng.randint(200, 900)) // 10000
            self.payout(tr, paid, short, label=label)
        elif label == "missing_payout":
            pass
        elif label == "late_payout":
            self.payout(
                tr, tr.available_by + timedelta(minutes=self.rng.randint(90, 40 * 60)), label=label
            )
        elif label == "payout_currency_mismatch":
            self.payout(tr, paid, q.send, q.send_ccy, label=label)
        elif label == "paid_twice":
            self.payout(tr, paid)
            self.payout(tr, paid + timedelta(hours=self.rng.randint(20, 70)), label=label)
        else:
            self.payout(tr, paid)
        for flag_type, status in expected_transfer_flags(q, tr.payouts, tr.available_by):
            self.flag(label, flag_type, "transfer", tr.transfer_id, "", status)
        return tr

    # -- projects ------------------------------------------------------------------------------

    def project(self, label: str | None) -> bool:
        """One project's whole life; False when the window is too short for ``label``."""
        rng = self.rng
        c, fut = self.cutoff, self.fut
        room = {
            None: 8,
            "share_unpaid": 30,
            "late_disbursement": 60,
            "milestone_overdue": 25,
            "spending_above_funds": 10,
            "spending_unverified": 68,
            "funds_without_milestone": 126,
        }[label]
        lo, hi = self.start + 6 * HOUR, c - timedelta(days=room)
        if hi < lo:
            if label is None:
                hi = lo
            else:
                return False
        r = lo + (hi - lo) * (rng.random() ** 1.3)
        r = r.replace(microsecond=0)
        club = rng.choice(self.roster.clubs)
        if label in ("share_unpaid", "late_disbursement"):
            ptype = rng.choice(INFRA_TYPES)
        elif label is None and self._clean_projects < len(PROJECT_TYPES):
            ptype = PROJECT_TYPES[self._clean_projects]  # every type at least once
        else:
            ptype = rng.choice(PROJECT_TYPES)
        if label is None:
            self._clean_projects += 1
        productive = ptype in ("productive", "agriculture")
        if productive:
            shares = {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
            budget = rng.randint(80, 250) * 100_000
            families = rng.randint(5, 40)
        else:
            mun = rng.choices((2500, 2000, 3000), weights=(70, 15, 15))[0]
            shares = {"club": 2500, "municipal": mun, "state": 5000 - mun, "federal": 2500}
            if ptype == "scholarships":
                budget, families = rng.randint(150, 500) * 100_000, rng.randint(10, 60)
            else:
                budget, families = rng.randint(300, 1000) * 100_000, rng.randint(40, 800)
        pid = self._id("prj", 8)
        short = pid.rsplit("-", 1)[1]
        parties = {"municipal": club.municipal, "state": club.state_gov, "federal": FEDERAL}

        # milestones: dues over the project's planned length
        k = 2 if productive or ptype == "scholarships" else rng.randint(3, 4)
        length = timedelta(days=rng.uniform(120, 360))
        dues = sorted(r + length * (i + 1) / k * rng.uniform(0.9, 1.05) for i in range(k))
        dues = [
            max(d, r + timedelta(days=15) + i * DAY).replace(microsecond=0)
            for i, d in enumerate(dues)
        ]
        never: set[int] = set()
        if label == "milestone_overdue":
            dues[0] = min(r + timedelta(days=rng.uniform(20, 60)), c - 2 * DAY).replace(
                microsecond=0
            )
            dues[1:] = [max(d, dues[0] + timedelta(days=15)) for d in dues[1:]]
            never.add(0)
        if label == "funds_without_milestone":
            dues = [max(d, fut + timedelta(days=10 + 20 * i)) for i, d in enumerate(dues)]
        weights = [rng.uniform(0.7, 1.3) for _ in range(k)]
        amounts = [int(budget * w / sum(weights)) for w in weights]
        amounts[-1] = budget - sum(amounts[:-1])
        mids = [f"ms-{i + 1}" for i in range(k)]

        funds: list[tuple[datetime, int]] = []
        # contributions: club members pay into the project fund
        club_share = budget * shares["club"] // 10000
        n_contrib = min(10, 3 + budget // 20_000_000)
        target = club_share * rng.uniform(0.75, 1.0)
        for i in range(n_contrib):
            first = i == 0
            at = self._at(r + 12 * HOUR, r + (3 if first else 20) * DAY)
            at = min(at, c - DAY)
            corridor = ("CA", "MX") if rng.random() < 0.05 else ("US", "MX")
            op = self.pick_operator(corridor)
            mxn = target / n_contrib * rng.uniform(0.6, 1.4)
            major = round(mxn / 100 / float(mid_rate(corridor, at)) / 10) * 10
            secret = self.secrets[op]
            member = pseudonym(secret, "snd", f"{self.run_tag}:{club.club_id}:member:{pid}:{i}")
            tr = self.transfer(
                op,
                corridor,
                max(50.0, float(major)),
                at,
                sender=member,
                destination={"kind": "project_fund", "project_id": pid, "club_id": club.club_id},
            )
            self.pay_clean(tr, True)
            funds.append((tr.payouts[0][2], tr.quote.promised))

        # registration (its milestone dues may still move later, before anything is signed)
        reg = self.draft(
            club.committee,
            "project.registered",
            {
                "project_id": pid,
                "club_id": club.club_id,
                "federation_id": club.federation,
                "country": "MX",
                "state": club.state,
                "municipality": club.municipality,
                "project_type": ptype,
                "budget": money(budget, "MXN"),
                "shares": shares,
                "parties": parties,
                "families_benefited": families,
                "milestones": [
                    {"milestone_id": m, "due": _iso(d), "amount": money(a, "MXN")}
                    for m, d, a in zip(mids, dues, amounts, strict=True)
                ],
                "agreement_signed_at": _iso(r - timedelta(days=rng.randint(3, 40))),
            },
            r,
        )

        # pledges and disbursements
        def disburse(level: str, pledge_id: str, amount: int, at: datetime) -> None:
            made = at - timedelta(seconds=rng.randint(0, 3 * 3600))
            self.draft(
                parties[level],
                "disbursement.made",
                {
                    "project_id": pid,
                    "pledge_id": pledge_id,
                    "disbursement_id": self._id("dsb", 8),
                    "party_level": level,
                    "party_id": parties[level],
                    "amount": money(amount, "MXN"),
                    "made_at": _iso(made),
                    "reference": f"spei-{b32(hash_parts(pledge_id, at), 12)}",
                },
                at,
            )
            funds.append((made, amount))

        def pledge(level: str, n: int, amount: int, at: datetime, due: datetime) -> str:
            pl = f"plg-{short}-{level[:3]}-{n}"
            self.draft(
                parties[level],
                "disbursement.pledged",
                {
                    "project_id": pid,
                    "pledge_id": pl,
                    "party_level": level,
                    "party_id": parties[level],
                    "amount": money(amount, "MXN"),
                    "due": _iso(due),
                },
                at,
            )
            return pl

        tranche_b = 0
        b_pledge = ""
        for level in ("municipal", "state", "federal"):
            cap = budget * shares[level] // 10000
            if cap == 0:
                continue
            p_at = min(self._at(r + 12 * HOUR, r + 6 * DAY), c - DAY)
            amount = cap
            if level == "federal":
                tranche_b = int(cap * rng.uniform(0.2, 0.35))
                amount = cap - tranche_b
            due = (p_at + timedelta(days=rng.uniform(25, 75))).replace(microsecond=0)
            anomaly = (label == "share_unpaid" and level == "municipal") or (
                label == "late_disbursement" and level == "state"
            )
            if label == "share_unpaid" and level == "municipal":
                due = max(p_at + timedelta(days=20), min(due, c - 2 * DAY))
            elif label == "late_disbursement" and level == "state":
                due = max(p_at + timedelta(days=20), min(due, c - 33 * DAY))
            elif due <= fut and p_at + DAY > min(due, c) - 12 * HOUR:
                due = (fut + timedelta(days=rng.uniform(10, 60))).replace(microsecond=0)
            pl = pledge(level, 1, amount, p_at, due)
            if level == "federal":
                b_due = (fut + timedelta(days=rng.uniform(30, 120))).replace(microsecond=0)
                b_pledge = pledge(level, 2, tranche_b, p_at, b_due)
            if anomaly:
                assert label is not None
                if label == "share_unpaid":
                    self.flag(label, "share_unpaid", "project", pid, "municipal")
                    self.flag(label, "late_disbursement", "project", pid, pl)
                else:
                    late = self._at(due + 5 * DAY, min(due + 30 * DAY, c - DAY))
                    disburse(level, pl, amount, late)
                    self.flag(label, "late_disbursement", "project", pid, pl, "resolved")
                    self.flag(label, "share_unpaid", "project", pid, "state", "resolved")
                continue
            if due <= fut or rng.random() < 0.5:
                last = min(due, c) - 12 * HOUR
                if p_at + DAY <= last:
                    if amount > 1_000_000 and rng.random() < 0.3:
                        half = amount // 2
                        t1 = self._at(p_at + DAY, last)
                        disburse(level, pl, half, t1)
                        disburse(level, pl, amount - half, self._at(t1, last))
                    else:
                        disburse(level, pl, amount, self._at(p_at + DAY, last))
        funds.sort()
        first_funds = funds[0][0]

        # milestone reports (cumulative per milestone) and their verification
        def available(t: datetime) -> int:
            return sum(a for ft, a in funds if ft <= t)

        need_fwm = label != "funds_without_milestone" and first_funds + DEFAULT_THRESHOLDS.no_milestone_period <= fut
        must_one = need_fwm or label in ("spending_above_funds", "spending_unverified")

        def postpone(i: int) -> None:
            # No time (or money) left to report milestone i before it falls due in the
            # window: the agreement plans it, and every later one, after the window.
            for j in range(i, k):
                dues[j] = max(dues[j], fut + timedelta(days=10 + 15 * (j - i)))
                reg.payload["milestones"][j]["due"] = _iso(dues[j])

        reports: list[tuple[int, datetime, int, _Draft]] = []
        spent_total = 0
        last_t = first_funds + DAY
        for i in range(k):
            if i in never or label == "funds_without_milestone":
                continue
            forced = must_one and not reports
            required = forced or dues[i] <= fut
            hi_t = min(dues[i] - 12 * HOUR, c - 3 * DAY)
            if forced and need_fwm:
                hi_t = min(hi_t, first_funds + 110 * DAY)
            if forced and label == "spending_unverified":
                hi_t = min(hi_t, c - 62 * DAY)
            t: datetime | None = None
            spent = 0
            if last_t <= hi_t and (required or rng.random() < 0.35):
                t = (last_t + (hi_t - last_t) * rng.uniform(0.3, 0.8)).replace(microsecond=0)
                spent = min(amounts[i], int((available(t) - spent_total) * 0.8))
                if spent < 100:
                    t = None
            if t is None:
                if forced:
                    raise AssertionError(f"simulator bug: cannot report {pid} {mids[i]}")
                if required:
                    postpone(i)
                continue
            spent_total += spent
            reported_at = t - timedelta(seconds=rng.randint(0, 3600))
            d = self.draft(
                club.committee,
                "milestone.reported",
                {
                    "project_id": pid,
                    "milestone_id": mids[i],
                    "spent": money(spent, "MXN"),
                    "progress_pct": max(5, min(100, round(100 * spent / amounts[i]))),
                    "reported_at": _iso(reported_at),
                    "evidence": [
                        hashlib.sha256(hash_parts("evidence", pid, mids[i], j)).hexdigest()
                        for j in range(rng.randint(1, 4))
                    ],
                },
                t,
            )
            reports.append((i, reported_at, spent, d))
            last_t = t + 12 * HOUR
        for n, (i, reported_at, _spent, _d) in enumerate(reports):
            deadline = reported_at + DEFAULT_THRESHOLDS.unverified_period
            if label == "spending_unverified" and n == 0:
                self.verify(
                    club,
                    pid,
                    mids[i],
                    self._at(reported_at + 5 * DAY, reported_at + 25 * DAY),
                    "disputed",
                )
                self.flag(label, "spending_unverified", "project", pid, mids[i])
                continue
            hi_v = min(reported_at + 30 * DAY, c - 12 * HOUR)
            if deadline <= fut or (rng.random() < 0.7 and reported_at + DAY <= hi_v):
                self.verify(club, pid, mids[i], self._at(reported_at + DAY, hi_v), "confirmed")

        # the tail: the federal government's second tranche, paid early at quarter end
        tail_at = self._at(self.end - 6 * HOUR, self.end - 10 * MINUTE)
        disburse("federal", b_pledge, tranche_b, tail_at)
        if label == "spending_above_funds":
            i, _rep_at, spent, d = reports[-1]
            extra = sum(a for _, a in funds) - spent_total + budget // 10
            d.payload["spent"] = money(spent + extra, "MXN")
            d.payload["progress_pct"] = 100
            self.flag(label, "spending_above_funds", "project", pid, "")
        elif label == "milestone_overdue":
            self.flag(label, "milestone_overdue", "project", pid, mids[0])
        elif label == "funds_without_milestone":
            self.flag(label, "funds_without_milestone", "project", pid, "")
        return True

    def verify(self, club: Club, pid: str, mid: str, at: datetime, outcome: str) -> None:
        self.draft(
            club.mirror,
            "milestone.verified",
            {
                "project_id": pid,
                "milestone_id": mid,
                "verified_at": _iso(at - timedelta(seconds=self.rng.randint(0, 3600))),
                "verifier_id": club.mirror,
                "outcome": outcome,
            },
            at,
        )

    # -- attacks -------------------------------------------------------------------------------

    def add_revoked_operator(self) -> None:
        """An operator whose key is compromised mid-window: registered, revoked, then used."""
        op = f"mto-giros-rapidos-{self.run_tag}"
        pub = SimPublisher(
            op,
            "operator",
            ROLES_BY_KIND["operator"],
            None,
            derive_key(self.seed, op),
            "money transfer operator (key compromised)",
        )
        self.pubs[op] = pub
        self.secrets[op] = operator_secret(self.seed, op)
        self.profiles[op] = self.operator_profile(op)
        self.revoked_op = op
        self.revoked_at = self._at(
            self.start + (self.cutoff - self.start) * 0.4,
            self.start + (self.cutoff - self.start) * 0.6,
        )

    def attacks(self) -> None:
        rng = self.rng
        c = self.cutoff
        ops = list(self.roster.operators)
        missing = [t for t in self.transfers if t.label == "missing_payout"]
        victim_tr = missing[0]
        victim = victim_tr.operator
        # forged signature: payouts that would hide the missing payout, signed by a wrong key
        for _ in range(2):
            at = self._at(victim_tr.available_by + 80 * HOUR, c - DAY)
            self.draft(
                victim,
                "transfer.paid_out",
                {
                    "transfer_id": victim_tr.transfer_id,
                    "paid": money(victim_tr.quote.promised, victim_tr.quote.recv_ccy),
                    "paid_at": _iso(victim_tr.available_by - 10 * MINUTE),
                    "payout_ref": self._id("po", 10),
                },
                at,
                kind="forged",
                reason="bad_signature",
                label="forged_signature",
            )
        self.flag("forged_signature", "forged_signature", "publisher", victim, "bad_signature")

        # revoked key: the compromised operator's key keeps signing after revocation
        assert self.revoked_op is not None and self.revoked_at is not None
        rev = self.revoked_op
        for _ in range(3):
            at = self._at(self.revoked_at + HOUR, min(self.revoked_at + 5 * DAY, c - DAY))
            s = self.new_sender(rev, ("US", "MX"), 20_000_000 + rng.randint(0, 10**6))
            tr = self.transfer(
                rev,
                ("US", "MX"),
                self.send_amount(s),
                at,
                sender=s.pseudonym,
                destination=self.sender_destination(s),
                label="revoked_key",
            )
            self.transfers.remove(tr)
            self.receipts.pop(tr.transfer_id)
            tr.sent.kind, tr.sent.reason = "refused", "key_revoked"
        self.registry.append(
            RegistryAction(
                "publisher.revoked",
                {
                    "publisher_id": rev,
                    "key_id": self.pubs[rev].key_id,
                    "revoked_at": _iso(self.revoked_at),
                    "reason_code": "key_compromise",
                },
            )
        )
        self.flag("revoked_key", "revoked_key_used", "publisher", rev, "key_revoked")

        # wrong role 1: a club committee records a transfer itself
        club = rng.choice(self.roster.clubs)
        at = self._at(self.start + 2 * DAY, c - DAY)
        s = self.new_sender(ops[0], ("US", "MX"), 30_000_000)
        tid = self._id("trf", 12)
        code = receipt_code(operator_secret(self.seed, club.committee), tid)
        q = self.clean_quote(ops[0], ("US", "MX"), 50000, at, 500.0)
        self.draft(
            club.committee,
            "transfer.sent",
            {
                "transfer_id": tid,
                "operator": club.committee,
                "corridor": {"from": "US", "to": "MX"},
                "send": money(q.send, q.send_ccy),
                "fee": money(q.fee, q.send_ccy),
                "exchange_rate": q.rate,
                "receive_promised": money(q.promised, q.recv_ccy),
                "available_by": _iso(at + HOUR),
                "destination": self.sender_destination(s),
                "sender": s.pseudonym,
                "receipt_digest": receipt_digest(code),
                "disclosed_cost_bps": q.disclosed,
            },
            at,
            kind="refused",
            reason="role_not_allowed",
            label="wrong_role",
        )
        self.flag("wrong_role", "role_violation", "publisher", club.committee, "role_not_allowed")

        # wrong role 2: a municipality disburses in the name of another municipality
        regs = [
            d
            for d in self.drafts
            if d.event_type == "project.registered" and d.event_time < c - 2 * DAY
        ]
        target = regs[0]
        own = {d.payload["parties"]["municipal"] for d in regs}
        others = sorted(
            {cl.municipal for cl in self.roster.clubs} - {target.payload["parties"]["municipal"]}
        )
        liar = next((m for m in others if m in own), others[0])
        at = self._at(target.event_time + DAY, c - DAY)
        self.draft(
            liar,
            "disbursement.made",
            {
                "project_id": target.payload["project_id"],
                "pledge_id": f"plg-{target.payload['project_id'].rsplit('-', 1)[1]}-mun-1",
                "disbursement_id": self._id("dsb", 8),
                "party_level": "municipal",
                "party_id": target.payload["parties"]["municipal"],
                "amount": money(1_000_000, "MXN"),
                "made_at": _iso(at - HOUR),
                "reference": f"spei-{b32(hash_parts('liar', at), 12)}",
            },
            at,
            kind="refused",
            reason="party_mismatch",
            label="wrong_role",
        )
        self.flag("wrong_role", "role_violation", "publisher", liar, "party_mismatch")

        clean = [
            t
            for t in self.transfers
            if t.label is None
            and t.beneficiary
            and len(t.payout_drafts) == 1
            and t.sent.event_time < c - 2 * DAY
            and t.operator != rev
        ]
        by_op = {t.operator: t for t in clean}
        # replay: an accepted event sent again, byte for byte
        tr = rng.choice(clean)
        self.draft(
            tr.operator,
            tr.sent.event_type,
            tr.sent.payload,
            tr.sent.event_time,
            publish_at=tr.sent.publish_at + timedelta(minutes=rng.randint(10, 600)),
            kind="replay",
            reason="duplicate",
            label="replay",
            original=tr.sent,
        )
        self.truth.append(
            no_flag_line("replay", "transfer", tr.transfer_id, event_id=tr.sent.event_id)
        )

        # equivocation: the same event id signed again with other content
        eq_op = next(o for o in ops if o != victim and o in by_op)
        tr_eq = by_op[eq_op]
        orig = tr_eq.payout_drafts[0]
        altered = json.loads(json.dumps(orig.payload))
        altered["paid"]["amount"] = altered["paid"]["amount"] * 92 // 100
        self.draft(
            eq_op,
            orig.event_type,
            altered,
            orig.event_time,
            publish_at=orig.publish_at + timedelta(minutes=rng.randint(30, 300)),
            kind="equivocation",
            reason="equivocation",
            label="equivocation",
            original=orig,
        )
        self.flag("equivocation", "equivocation", "publisher", eq_op, orig.event_id)

        # out-of-order delivery: a payout published before its transfer.sent
        ooo = next(t for t in clean if t is not tr and t is not tr_eq)
        ooo.payout_drafts[0].publish_at = ooo.sent.publish_at - timedelta(seconds=1)
        ooo.payout_drafts[0].label = "out_of_order"
        self.truth.append(no_flag_line("out_of_order", "transfer", ooo.transfer_id))

        # sequence gap: the federal government skips a sequence number.  Not an operator:
        # the platform flags a gap once its publisher has gone quiet, and operators keep
        # publishing in the demo's live trickle.
        self.gap_publisher = FEDERAL
        self.flag("sequence_gap", "sequence_gap", "publisher", FEDERAL, None)

    # -- finishing -----------------------------------------------------------------------------

    def finish(self) -> Simulation:
        """Order, number, sign.

        Sequence numbers follow publication order per publisher, because the
        platform's gap check counts every envelope it could parse: events the
        publisher signed but the gate refuses (revoked key, wrong role) consume
        a number like any other; replays and equivocating copies repeat the
        original's; a forgery claims the number after the victim's last genuine
        event (a far-off number would read as a gap in the victim's sequence);
        the gap publisher skips one number and nothing else does.
        """
        self.drafts.sort(key=lambda d: (d.publish_at, d.idx))
        counters: dict[str, int] = {}
        gap_pub = getattr(self, "gap_publisher", None)
        gap_at = None
        if gap_pub is not None:
            mine = sum(1 for d in self.drafts if d.publisher_id == gap_pub and d.kind == "normal")
            gap_at = max(2, mine // 2)
        for d in self.drafts:
            if d.kind not in ("normal", "refused"):
                continue
            n = counters.get(d.publisher_id, 0) + 1
            if d.publisher_id == gap_pub and n == gap_at:
                n += 1  # the skipped number
                d.label = d.label or "sequence_gap"
            counters[d.publisher_id] = n
            d.seq = self.first_seq.get(d.publisher_id, 1) + n - 1
        for d in self.drafts:
            if d.kind in ("replay", "equivocation"):
                assert d.original is not None
                d.seq = d.original.seq
            elif d.kind == "forged":
                counters[d.publisher_id] = n = counters.get(d.publisher_id, 0) + 1
                d.seq = self.first_seq.get(d.publisher_id, 1) + n - 1
        events: list[SimEvent] = []
        for d in self.drafts:
            events.append(self._sign(d))
        truth = sorted(self.truth, key=truth_order)
        return Simulation(
            seed=self.seed,
            start=self.start,
            end=self.end,
            cutoff=self.cutoff,
            tail_start=self.tail_start,
            anomalies=self.anomalies,
            run_tag=self.run_tag,
            publishers=tuple(sorted(self.pubs.values(), key=lambda p: p.publisher_id)),
            registry=tuple(self.registry),
            events=tuple(events),
            truth=tuple(truth),
            receipts=dict(self.receipts),
            demo_receipts=self._demo_receipts(),
            skipped=tuple(self.skipped),
        )

    def _sign(self, d: _Draft) -> SimEvent:
        if d.kind == "replay":
            assert d.original is not None and d.original.envelope is not None
            return SimEvent(d.original.envelope, "duplicate", "duplicate", d.label, None)
        pub = self.pubs[d.publisher_id]
        env = sign_event(
            pub.key,
            publisher_id=d.publisher_id,
            event_type=d.event_type,
            payload=d.payload,
            seq=d.seq,
            event_time=d.event_time,
            event_id=d.event_id,
        )
        if d.kind == "forged":
            # Claims the victim's real key id; signed with a key that is not it.
            env = Envelope(
                env.event_id,
                env.event_type,
                env.schema_version,
                env.publisher_id,
                pub.key_id,
                env.seq,
                env.event_time,
                env.payload,
                bytes(64),
            )
            sig = self.attacker.sign(env.signed_bytes())
            env = Envelope(
                env.event_id,
                env.event_type,
                env.schema_version,
                env.publisher_id,
                env.key_id,
                env.seq,
                env.event_time,
                env.payload,
                sig,
            )
        d.envelope = env
        if d.kind == "normal":
            return SimEvent(env, "accepted", None, d.label, d.seq)
        return SimEvent(env, "rejected", d.reason, d.label, d.seq if d.kind == "refused" else None)

    def _demo_receipts(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for label, name in (("short_payout", "short"), ("late_payout", "late")):
            t = next((t for t in self.transfers if t.label == label), None)
            if t is not None:
                out[name] = (t.transfer_id, self.receipts[t.transfer_id])
        mid = self.start + (self.end - self.start) / 2
        on_time = next(
            (
                t
                for t in self.transfers
                if t.label is None
                and t.beneficiary
                and t.sent.event_time >= mid
                and len(t.payouts) == 1
                and t.payouts[0][1] == t.quote.recv_ccy
                and t.payouts[0][2] <= t.available_by
            ),
            None,
        )
        if on_time is not None:
            out["on_time"] = (on_time.transfer_id, self.receipts[on_time.transfer_id])
        return out


def _next_business_day(at: datetime) -> datetime:
    """23:00 UTC of the next business day (Friday and weekend sends: Monday)."""
    day = at.replace(hour=23, minute=0, second=0, microsecond=0)
    step = {4: 3, 5: 2}.get(at.weekday(), 1)
    return day + timedelta(days=step)


# --- entry point ---------------------------------------------------------------------


def _scale(n: int, per: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, n // per))


def simulate(
    seed: int,
    *,
    events: int | None,
    start: datetime,
    span: timedelta,
    anomalies: bool,
    first_seq: Mapping[str, int] | None = None,
) -> Simulation:
    """Generate one run: ``events`` envelopes (exactly) with event times in ``[start, start+span]``.

    ``first_seq`` gives, per publisher, the first sequence number to use (what
    its outbox would allocate next), so that a second run on the same platform
    continues each publisher's sequence instead of reusing numbers.  Raises
    ``MalformedInput`` for a window that is too short, not in the past, or an
    event count too small for what the run must contain.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise MalformedInput("start must be timezone-aware (UTC)", reason="time")
    start = start.astimezone(UTC).replace(microsecond=0)
    span = timedelta(seconds=int(span.total_seconds()))
    if span < MIN_SPAN:
        raise MalformedInput(
            f"the simulated window must span at least {MIN_SPAN.days} days, got {span}",
            reason="span",
        )
    if start + span > datetime.now(UTC):
        raise MalformedInput(
            f"the simulated window ends at {format_time(start + span)}, in the future; every "
            "event time must be in the past (move --start back or shorten the span)",
            reason="time",
        )
    n = DEFAULT_EVENTS if events is None else events
    if n < 1:
        raise MalformedInput("the number of events must be positive", reason="events")
    # Hundreds of thousands of small objects and no reference cycles: the cyclic
    # collector would only rescan the growing heap (a third of the run time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _simulate(seed, n, start, span, anomalies, first_seq or {})
    finally:
        if gc_was_enabled:
            gc.enable()


def _simulate(
    seed: int,
    n: int,
    start: datetime,
    span: timedelta,
    anomalies: bool,
    first_seq: Mapping[str, int],
) -> Simulation:
    b = _Builder(seed, events=n, start=start, span=span, anomalies=anomalies, first_seq=first_seq)
    if anomalies:
        b.add_revoked_operator()
    b.registry.extend(
        RegistryAction("publisher.registered", p.registration_payload())
        for p in sorted(b.pubs.values(), key=lambda p: p.publisher_id)
    )
    # projects first (their contributions are transfers), anomalies, then the crowd
    n_clean_projects = _scale(n, 400, 3, 400)
    labels: list[str | None] = [None] * n_clean_projects
    if anomalies:
        per = _scale(n, 50_000, 1, 10)
        for cls in (
            "share_unpaid",
            "late_disbursement",
            "milestone_overdue",
            "spending_above_funds",
            "spending_unverified",
            "funds_without_milestone",
        ):
            labels += [cls] * per
    b.rng.shuffle(labels)
    for label in labels:
        if not b.project(label) and label is not None and label not in b.skipped:
            b.skipped.append(label)
    if anomalies:
        per = _scale(n, 10_000, 1, 25)
        for cls in (
            "short_payout",
            "missing_payout",
            "late_payout",
            "cost_above_disclosed",
            "cost_above_ceiling",
            "payout_currency_mismatch",
            "paid_twice",
        ):
            for _ in range(per):
                b.anomaly_transfer(cls)
    # clean remittances fill the rest; attacks need some of them, so they come last
    attack_events = 9 if anomalies else 0  # 2 forged, 3 revoked, 2 wrong role, replay, equiv.
    remaining = n - len(b.drafts) - attack_events
    min_clean = 40
    if remaining < 2 * min_clean:
        raise MalformedInput(
            f"{n} events are too few for this simulation: it needs at least "
            f"{n - remaining + 2 * min_clean} (projects, anomalies and a quiet tail of transfers)",
            reason="events",
        )
    # Two events per transfer; an odd count gets one cancelled-and-refunded transfer (three).
    refunded = remaining % 2 == 1
    pairs = (remaining - 3) // 2 if refunded else remaining // 2
    plain_cancels = pairs // 300
    b.clean_transfers(pairs - plain_cancels, plain_cancels + int(refunded), refunded)
    if anomalies:
        b.attacks()
    sim = b.finish()
    if len(sim.events) != n:  # pragma: no cover - a bookkeeping bug, not bad input
        raise AssertionError(f"simulator produced {len(sim.events)} events, not {n}")
    return sim
