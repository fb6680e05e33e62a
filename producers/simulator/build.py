"""Build a run: draft it (world, market, projects, anomalies, remittances, attacks), then sign it.

:func:`simulate` checks its inputs and drafts in a fixed order (projects
first, as their contributions are transfers; anomalous transfers; the crowd
of clean remittances; attacks last, as they reuse some of them);
:func:`finish` orders the drafts, gives each publisher its sequence numbers
and signs them into a :class:`.results.Simulation`.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from producers.simulator.attacks import (
    ATTACK_EVENTS,
    LATE_CASE_EVENTS,
    add_late_operator,
    add_revoked_operator,
    add_self_verifying_committee,
    attacks,
)
from producers.simulator.drafts import Draft, Run
from producers.simulator.projects import project
from producers.simulator.results import RegistryAction, SimEvent, Simulation
from producers.simulator.transfers import (
    TRANSFER_CASES,
    anomaly_transfer,
    clean_transfers,
    quiet_tail,
)
from producers.simulator.truth import truth_order
from schemas.envelope import Envelope, sign_event
from schemas.errors import MalformedInput
from schemas.times import format_time

__all__ = ["DEFAULT_EVENTS", "LATE_CASE_WINDOW", "MIN_SPAN", "simulate", "finish", "sign", "demo_receipts"]

#: Events generated when ``events`` is None.
DEFAULT_EVENTS: Final = 5_000
#: Shortest window: one month of event time.
MIN_SPAN: Final = timedelta(days=30)
#: Published later than this after its window, a run leaves out the late publication case.
LATE_CASE_WINDOW: Final = timedelta(days=5)


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
    published_at: datetime | None = None,
) -> Simulation:
    """Generate one run: ``events`` envelopes (exactly) with event times in ``[start, start+span]``.

    ``first_seq`` gives, per publisher, the first sequence number to use (what
    its outbox would allocate next), so that a second run on the same platform
    continues each publisher's sequence instead of reusing numbers.
    ``published_at`` is when the run will reach the platform (default: right
    after its window); published more than :data:`LATE_CASE_WINDOW` after it,
    the late publication case is left out (its events would be older than
    MAX_EVENT_AGE, refused rather than late), and the run is another run.  Raises
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
    late_ok = published_at is None or published_at - (start + span) <= LATE_CASE_WINDOW
    try:
        return _simulate(seed, n, start, span, anomalies, first_seq or {}, late_ok)
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
    late_ok: bool,
) -> Simulation:
    run = Run(
        seed,
        events=n,
        start=start,
        span=span,
        anomalies=anomalies,
        first_seq=first_seq,
        late_case=late_ok,
    )
    if anomalies:
        add_revoked_operator(run)
        if late_ok:
            add_late_operator(run)
        else:
            run.skipped.append("published_late")
        add_self_verifying_committee(run)
    run.registry.extend(
        RegistryAction("publisher.registered", p.registration_payload())
        for p in sorted(run.pubs.values(), key=lambda p: p.publisher_id)
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
            # issue 15: the club as a party, verification, currencies, cancellation
            "club_share_unpaid",
            "postponed_pledge",
            "verified_before_report",
            "unverified_new_spending",
            "fx_rate_undisclosed",
            "foreign_currency_overspend",
            "funds_unreturned",
            # ... and their look-alikes, which must raise nothing
            "club_exact_share",
            "verified_right_after_report",
            "cancelled_full_return",
            "fx_rate_disclosed",
        ):
            labels += [cls] * per
        labels.append("self_verification")
    run.rng.shuffle(labels)
    for label in labels:
        if not project(run, label) and label is not None and label not in run.skipped:
            run.skipped.append(label)
    if anomalies:
        per = _scale(n, 10_000, 1, 25)
        for cls, variants in TRANSFER_CASES.items():
            for i in range(max(per, variants)):
                anomaly_transfer(run, cls, i % variants)
    # clean remittances fill the rest; attacks need some of them, so they come last
    attack_events = (ATTACK_EVENTS - (0 if late_ok else LATE_CASE_EVENTS)) if anomalies else 0
    remaining = n - len(run.drafts) - attack_events
    min_clean = 40
    if remaining < 2 * min_clean:
        raise MalformedInput(
            f"{n} events are too few for this simulation: it needs at least "
            f"{n - remaining + 2 * min_clean} (projects, anomalies and a quiet tail of transfers)",
            reason="events",
        )
    # Two events per paid transfer, three per cancelled-and-refunded one (about one in
    # 300); their number takes the parity of the count.
    cancels = remaining // 600
    if (remaining - 3 * cancels) % 2:
        cancels += 1
    clean_transfers(run, (remaining - 3 * cancels) // 2, cancels)
    quiet_tail(run)
    if anomalies:
        attacks(run)
    sim = finish(run)
    if len(sim.events) != n:  # pragma: no cover - a bookkeeping bug, not bad input
        raise AssertionError(f"simulator produced {len(sim.events)} events, not {n}")
    return sim


# --- finishing -----------------------------------------------------------------------


def finish(run: Run) -> Simulation:
    """Order, number, sign.

    Sequence numbers follow publication order per publisher, because the
    platform's gap check counts every envelope it could parse: events the
    publisher signed but the gate refuses (revoked key, wrong role) consume
    a number like any other; replays and equivocating copies repeat the
    original's; a forgery claims the number after the victim's last genuine
    event (a far-off number would read as a gap in the victim's sequence);
    the gap publisher skips one number and nothing else does.
    """
    run.drafts.sort(key=lambda d: (d.phase, d.publish_at, d.idx))
    counters: dict[str, int] = {}
    gap_pub = run.gap_publisher
    gap_at = None
    if gap_pub is not None:
        mine = sum(1 for d in run.drafts if d.publisher_id == gap_pub and d.kind == "normal")
        gap_at = max(2, mine // 2)
    for d in run.drafts:
        if d.kind not in ("normal", "refused"):
            continue
        n = counters.get(d.publisher_id, 0) + 1
        if d.publisher_id == gap_pub and n == gap_at:
            n += 1  # the skipped number
            d.label = d.label or "sequence_gap"
        counters[d.publisher_id] = n
        d.seq = run.first_seq.get(d.publisher_id, 1) + n - 1
    for d in run.drafts:
        if d.kind in ("replay", "equivocation"):
            assert d.original is not None
            d.seq = d.original.seq
        elif d.kind == "forged":
            counters[d.publisher_id] = n = counters.get(d.publisher_id, 0) + 1
            d.seq = run.first_seq.get(d.publisher_id, 1) + n - 1
    events: list[SimEvent] = []
    for d in run.drafts:
        events.append(sign(run, d))
    truth = sorted(run.truth, key=truth_order)
    return Simulation(
        seed=run.seed,
        start=run.start,
        end=run.end,
        cutoff=run.cutoff,
        tail_start=run.tail_start,
        anomalies=run.anomalies,
        run_tag=run.run_tag,
        publishers=tuple(sorted(run.pubs.values(), key=lambda p: p.publisher_id)),
        registry=tuple(run.registry),
        events=tuple(events),
        truth=tuple(truth),
        receipts=dict(run.receipts),
        demo_receipts=demo_receipts(run),
        skipped=tuple(run.skipped),
        senders=dict(run.senders),
    )


def sign(run: Run, d: Draft) -> SimEvent:
    """Sign a numbered draft as its kind says (a replay reuses the original's bytes)."""
    if d.kind == "replay":
        assert d.original is not None and d.original.envelope is not None
        return SimEvent(d.original.envelope, "duplicate", "duplicate", d.label, None, d.phase)
    pub = run.pubs[d.publisher_id]
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
        sig = run.attacker.sign(env.signed_bytes())
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
        return SimEvent(env, "accepted", None, d.label, d.seq, d.phase)
    return SimEvent(env, "rejected", d.reason, d.label, d.seq if d.kind == "refused" else None, d.phase)


def demo_receipts(run: Run) -> dict[str, tuple[str, str]]:
    """Receipt codes the demo prints: a short, a late and an on-time transfer (id, code)."""
    out: dict[str, tuple[str, str]] = {}
    for label, name in (("short_payout", "short"), ("late_payout", "late")):
        t = next((t for t in run.transfers if t.label == label), None)
        if t is not None:
            out[name] = (t.transfer_id, run.receipts[t.transfer_id])
    mid = run.start + (run.end - run.start) / 2
    on_time = next(
        (
            t
            for t in run.transfers
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
        out["on_time"] = (on_time.transfer_id, run.receipts[on_time.transfer_id])
    return out
