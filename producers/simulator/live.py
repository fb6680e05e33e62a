"""The demo's live trickle: clean instant remittances happening now.

``cuentas up --demo`` publishes a deterministic backfill (:func:`.simulate`)
and then this feed until stopped.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from producers.simulator.market import Market, Sender, paid_payload, sent_payload
from producers.simulator.world import HOUR, b32
from schemas.privacy import receipt_code

__all__ = ["LiveEvent", "LiveFeed"]


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """An event for the demo's live trickle: signed and timed by the caller (event time = now)."""

    publisher_id: str
    event_type: str
    payload: Mapping[str, Any]


class LiveFeed:
    """Clean instant remittances happening now: ``tick(now, elapsed)`` returns what to publish.

    Not deterministic on purpose (ids must never repeat across demo restarts);
    it reuses the simulation's operators, corridors and pricing so the live
    traffic looks like the backfill.
    """

    def __init__(self, seed: int, *, rate: float = 2.0, rng: random.Random | None = None) -> None:
        self.rate = rate
        self.rng = rng or random.Random()
        self.market = Market(
            seed, self.rng, "live-" + b32(self.rng.getrandbits(64).to_bytes(8, "big"), 8)
        )
        self.pending: list[tuple[datetime, str, dict[str, Any]]] = []
        self.receipts: dict[str, str] = {}
        self._senders: list[Sender] = []
        self._carry = 0.0

    def _sender(self) -> Sender:
        m = self.market
        if len(self._senders) < 300 or self.rng.random() < 0.05:
            corridor = m.pick_corridor()
            self._senders.append(
                m.new_sender(m.pick_operator(corridor), corridor, len(self._senders))
            )
        return self.rng.choice(self._senders)

    def tick(self, now: datetime, elapsed: float) -> list[LiveEvent]:
        """Events due by ``now``: new sends (about ``rate`` events a second) and due payouts."""
        m = self.market
        now = now.astimezone(UTC).replace(microsecond=0)
        out: list[LiveEvent] = []
        self._carry += self.rate / 2 * max(0.0, elapsed)  # each transfer is two events
        while self._carry >= 1:
            self._carry -= 1
            s = self._sender()
            major = m.send_amount(s)
            send = max(1500, round(major * 100))
            q = m.clean_quote(s.operator, s.corridor, send, now, major)
            tid = "trf-live-" + b32(self.rng.getrandbits(80).to_bytes(10, "big"), 16)
            code = receipt_code(m.secrets[s.operator], tid)
            self.receipts[tid] = code
            out.append(
                LiveEvent(
                    s.operator,
                    "transfer.sent",
                    sent_payload(
                        tid,
                        s.operator,
                        s.corridor,
                        q,
                        now + HOUR,
                        destination={
                            "kind": "beneficiary",
                            "beneficiary": self.rng.choice(s.beneficiaries),
                        },
                        sender=s.person,
                        receipt_code=code,
                    ),
                )
            )
            paid_at = now + timedelta(seconds=self.rng.randint(3, 45))
            self.pending.append(
                (
                    paid_at,
                    s.operator,
                    paid_payload(
                        tid,
                        q.promised,
                        q.recv_ccy,
                        paid_at,
                        "po-live-" + b32(self.rng.getrandbits(60).to_bytes(8, "big"), 12),
                    ),
                )
            )
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        out += [LiveEvent(op, "transfer.paid_out", payload) for _, op, payload in due]
        return out
