"""Pre-signed transfer events for the benchmarks: transfer.sent + transfer.paid_out pairs.

Everything is signed BEFORE any clock starts (in two processes, one per
core), so a benchmark measures the platform and not the publisher's
signing.  A few percent of the transfers carry an anomaly the rules flag as
soon as their payout is reconciled:

* ``short``: paid 90% of the promise at exactly ``available_by``, when a
  shortfall is judged (``short_payout``, and the effective cost then exceeds
  the disclosure and the 5% ceiling: three flags);
* ``late``: paid five minutes after ``available_by`` (``late_payout``,
  raised and auto-resolved: one flag, two signed flag changes).

Event times lie one to two hours in the past, inside the gate's window, and
advance a millisecond per transfer.  ``cuentas bench e2e`` runs with
``CLOCK_LATENESS_S`` 0 (``--clock-lateness``), so a flag becomes public as
soon as its payout is reconciled; the late anomalies' deadlines (five minutes
after sending) are then passed and swept like any other.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.costs import disclosed_cost_bps
from schemas.envelope import sign_event
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.routing import partition_key, topic_for
from schemas.times import format_time

__all__ = ["OPERATOR", "SECRET", "Msg", "presign", "raw_private_key", "CORRIDORS"]

OPERATOR = "op.bench-norte"
SECRET = b"bench-operator-secret-0123456789abcdef"

#: (from, to, receive currency, quoted rate) of the simulated corridors.
CORRIDORS: tuple[tuple[str, str, str, str], ...] = (
    ("US", "MX", "MXN", "17.25"),
    ("US", "GT", "GTQ", "7.75"),
    ("US", "HN", "HNL", "24.60"),
    ("US", "DO", "DOP", "58.90"),
)


@dataclass(frozen=True, slots=True)
class Msg:
    """One signed event, ready for ``producer.send``."""

    event_id: str
    topic: str  # logical topic (without the settings' prefix)
    key: bytes
    value: bytes
    transfer_id: str
    event_type: str
    anomaly: str  # "", "short" or "late"


def raw_private_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _anomaly(i: int, rate: float) -> str:
    if rate <= 0:
        return ""
    period = max(2, round(1 / rate))
    if i % period == period // 2:
        return "late" if (i // period) % 4 == 3 else "short"
    return ""


def _pair(key: Ed25519PrivateKey, run: str, i: int, seq: int, base: datetime, anomaly: str,
          only_sent: bool = False) -> list[Msg]:
    tid = f"tr-{run}-{i:08d}"
    c_from, c_to, ccy, rate = CORRIDORS[i % len(CORRIDORS)]
    send = 10_000 + (i * 7919) % 90_000  # 100.00 to 999.99 USD
    fee = max(100, send * 2 // 100)
    promised = int(Decimal(send) * Decimal(rate) * Decimal("0.99"))
    disclosed = disclosed_cost_bps(send, fee, rate, promised, rate, send_currency="USD", receive_currency=ccy)
    sent_at = base + timedelta(milliseconds=i % 3_600_000)
    paid_at = sent_at + timedelta(minutes=10)
    # A shortfall is judged at available_by (instalments may still come before
    # it; rules since issue 15), so a short transfer promises exactly its payout
    # time: on time, and judged as soon as its payout is reconciled.
    available_by = {"late": sent_at + timedelta(minutes=5), "short": paid_at}.get(anomaly, sent_at + timedelta(days=1))
    paid = promised * 9 // 10 if anomaly == "short" else promised
    code = receipt_code(SECRET, tid)
    sent_payload: dict[str, Any] = {
        "transfer_id": tid, "operator": OPERATOR, "corridor": {"from": c_from, "to": c_to},
        "send": {"amount": send, "currency": "USD"}, "fee": {"amount": fee, "currency": "USD"},
        "exchange_rate": rate, "receive_promised": {"amount": promised, "currency": ccy},
        "available_by": format_time(available_by),
        "destination": {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", f"b{i}")},
        "sender": pseudonym(SECRET, "snd", f"s{i % 5000}"), "receipt_digest": receipt_digest(code),
        "disclosed_cost_bps": disclosed,
    }
    paid_payload: dict[str, Any] = {
        "transfer_id": tid, "paid": {"amount": paid, "currency": ccy}, "paid_at": format_time(paid_at),
        "payout_ref": f"po-{run}-{i:08d}",
    }
    out = []
    events = [("transfer.sent", sent_payload, sent_at),
              ("transfer.paid_out", paid_payload, paid_at + timedelta(seconds=5))]
    for k, (etype, payload, at) in enumerate(events[:1] if only_sent else events):
        env = sign_event(key, publisher_id=OPERATOR, event_type=etype, payload=payload, seq=seq + k, event_time=at)
        out.append(Msg(env.event_id, topic_for(etype), partition_key(etype, payload), env.leaf_bytes(), tid, etype,
                       anomaly if etype == "transfer.paid_out" else ""))
    return out


def _sign_range(args: tuple[bytes, str, int, int, int, str, float, bool]) -> list[Msg]:
    raw, run, first, count, seq0, base_iso, rate, only_sent = args
    key = Ed25519PrivateKey.from_private_bytes(raw)
    base = datetime.fromisoformat(base_iso)
    out: list[Msg] = []
    for i in range(first, first + count):
        out.extend(_pair(key, run, i, seq0 + 2 * i, base, "" if only_sent else _anomaly(i, rate), only_sent))
    return out


def presign(key: Ed25519PrivateKey, run: str, first: int, transfers: int, *, seq0: int = 1,
            anomaly_rate: float = 0.04, processes: int = 2, base: datetime | None = None,
            only_sent: bool = False) -> list[Msg]:
    """Sign ``transfers`` pairs numbered from ``first`` (two events each), in order of publication.

    ``only_sent``: just the ``transfer.sent`` of each (transfers left open).

    Publisher sequence numbers are ``seq0 + 2*i`` and ``seq0 + 2*i + 1``, so
    ranges signed separately never reuse one.
    """
    base = base or (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    raw = raw_private_key(key)
    if transfers <= 0:
        return []
    nproc = max(1, min(processes, transfers // 500 or 1))
    step = -(-transfers // nproc)
    jobs = [(raw, run, first + j * step, min(step, transfers - j * step), seq0, base.isoformat(), anomaly_rate,
             only_sent) for j in range(nproc) if j * step < transfers]
    if nproc == 1:
        return _sign_range(jobs[0])
    ctx = mp.get_context("fork")
    with ctx.Pool(nproc) as pool:
        parts = pool.map(_sign_range, jobs)
    return [m for part in parts for m in part]
