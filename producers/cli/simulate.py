"""``cuentas simulate``: publish a deterministic simulation to the running platform and check it.

It registers the simulated publishers, publishes the run (as fast as possible
or at ``--rate``), writes the ground truth, waits for every acknowledgement
and compares each event's fate with what the simulation expects (exit 1 on
a mismatch or an event still pending).  ``--demo`` runs the demo publisher
instead (:mod:`.demo`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.cli.common import (
    current_settings,
    make_console,
    parse_duration,
    parse_start,
    print_json,
    progress_bar,
    publisher_locks,
    running_platform,
    write_atomic,
)
from producers.cli.demo import run_demo
from producers.cli.fleet import Fleet, first_seqs, publish_phases, register_all, state_path
from schemas.errors import MalformedInput
from schemas.l10n import DEFAULT_LOCALE, cli_locale, format_datetime, format_integer, format_number
from schemas.times import format_time

if TYPE_CHECKING:
    from infra.settings import Settings
    from producers.simulator import Simulation

__all__ = ["cmd_simulate", "add_parser"]


def _observe(sim: Simulation, statuses: Mapping[str, tuple[str, str | None]]) -> dict[str, Any]:
    """Each event's acknowledged fate against the simulation's expectation (a duplicate counts
    as accepted: the log has it)."""
    expected: dict[str, tuple[str, str | None]] = {}
    for ev in sim.events:
        expected.setdefault(ev.event_id, (ev.expect, ev.reason))
    got: dict[str, int] = {"accepted": 0, "rejected": 0, "pending": 0}
    reasons: dict[str, int] = {}
    mismatches: list[dict[str, Any]] = []
    for eid, (want, want_reason) in expected.items():
        status, reason = statuses.get(eid, ("pending", None))
        status = "accepted" if status == "duplicate" else status
        got[status] = got.get(status, 0) + 1
        if status == "rejected":
            reasons[reason or "?"] = reasons.get(reason or "?", 0) + 1
        if status != "pending" and (
            status != want or (want == "rejected" and reason != want_reason)
        ):
            mismatches.append(
                {
                    "event_id": eid,
                    "expected": want,
                    "expected_reason": want_reason,
                    "got": status,
                    "reason": reason,
                }
            )
    want_counts: dict[str, int] = {}
    for want, _ in expected.values():
        want_counts[want] = want_counts.get(want, 0) + 1
    return {
        "unique_events": len(expected),
        "expected": want_counts,
        "observed": got,
        "rejections": dict(sorted(reasons.items())),
        "mismatches": mismatches,
    }


def _summary_text(
    sim: Simulation,
    obs: Mapping[str, Any],
    per_pub: Mapping[str, Any],
    truth_path: Path,
    elapsed: float,
    published: int,
    locale: str = DEFAULT_LOCALE,
) -> str:
    """The human summary of a run: counts, unexpected decisions, the truth file, per publisher;
    numbers and dates written for ``locale`` (``schemas.l10n``)."""

    def n(x: int) -> str:
        return format_integer(x, locale)

    def sec(x: float) -> str:
        return format_number(Decimal(repr(x)), 1, locale)

    lines = [
        f"simulation seed {sim.seed} (run {sim.run_tag}): {n(len(sim.events))} events from "
        f"{n(len(sim.publishers))} publishers, {format_datetime(sim.start, locale)} .. "
        f"{format_datetime(sim.end, locale)}",
        f"  published {n(published)} in {sec(elapsed)} s ({n(round(published / max(elapsed, 1e-6)))}/s)",
    ]
    o, e = obs["observed"], obs["expected"]
    rej = ", ".join(f"{k} {n(v)}" for k, v in obs["rejections"].items()) or "none"
    lines.append(
        f"  acknowledged: accepted {n(o.get('accepted', 0))} (expected {n(e.get('accepted', 0))}), "
        f"rejected {n(o.get('rejected', 0))} (expected {n(e.get('rejected', 0))}: {rej}), "
        f"pending {n(o.get('pending', 0))}"
    )
    for m in obs["mismatches"][:5]:
        lines.append(
            f"  UNEXPECTED: event {m['event_id']} expected {m['expected']}"
            f"{' (' + str(m['expected_reason']) + ')' if m['expected_reason'] else ''}"
            f", got {m['got']} ({m['reason']})"
        )
    lines.append(f"  ground truth: {n(len(sim.truth))} lines -> {truth_path}")
    if sim.skipped:
        lines.append(f"  not injected (window too short): {', '.join(sim.skipped)}")
    lines.append(
        "  per publisher (outbox totals; handed = accepted + rejected + duplicates + pending):"
    )
    active = {pid: c for pid, c in per_pub.items() if c.handed}
    width = max((len(p) for p in active), default=10)
    for pid, c in sorted(active.items()):
        ok = c.handed == c.accepted + c.rejected + c.duplicates + c.pending
        lines.append(
            f"    {pid:<{width}}  handed {n(c.handed):>6}  accepted {n(c.accepted):>6}  "
            f"rejected {n(c.rejected):>3}  duplicates {n(c.duplicates):>3}  "
            f"pending {n(c.pending):>5}  {'ok' if ok else 'MISMATCH'}"
        )
    idle = len(per_pub) - len(active)
    if idle:
        lines.append(f"    ({n(idle)} more registered publishers had nothing to publish)")
    return "\n".join(lines)


def _simulation_inputs(args: argparse.Namespace) -> tuple[int, datetime, timedelta, float | None]:
    """Size, window and rate from the options (one clear error for a bad combination)."""
    if args.seed is None:
        raise MalformedInput("--seed N is required (or --demo)", reason="usage")
    if args.rate is not None and args.rate <= 0:
        raise MalformedInput("--rate must be positive (events per second)", reason="usage")
    span = parse_duration(args.span)
    if args.events is not None:
        n = args.events
    elif args.duration is not None:
        if args.rate is None:
            raise MalformedInput(
                "--duration needs --rate: it publishes rate x duration events "
                "(or give --events N to publish as fast as possible)",
                reason="usage",
            )
        n = int(args.rate * parse_duration(args.duration).total_seconds())
    else:
        raise MalformedInput("give --events N or --duration D (with --rate R)", reason="usage")
    if n < 1:
        raise MalformedInput("the simulation must publish at least one event", reason="usage")
    if args.start:
        start = parse_start(args.start)
    else:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - span - timedelta(minutes=10)
    return n, start, span, args.rate


def cmd_simulate(args: argparse.Namespace) -> int:
    """``cuentas simulate``: generate, register, publish, wait; exit 1 if anything is off."""
    if args.demo:
        return run_demo(args)
    from producers.simulator import roster

    n, start, span, rate = _simulation_inputs(args)
    s = current_settings()
    s2, db_url = running_platform(s)
    console = make_console()
    with publisher_locks(s, [p.publisher_id for p in roster(args.seed)]):
        sim, truth_path, run = _simulate_and_publish(
            args, s, s2, db_url, console, n, start, span, rate
        )
    obs = run["acknowledgements"]
    if args.json:
        print_json(
            {
                **sim.summary(),
                "truth_file": str(truth_path),
                **run,
                "per_publisher": {k: v.as_dict() for k, v in sorted(run["per_publisher"].items())},
            }
        )
    else:
        print(
            _summary_text(
                sim, obs, run["per_publisher"], truth_path, run["publish_seconds"], run["published"],
                cli_locale(getattr(args, "locale", None), os.environ),
            )
        )
    pending = obs["observed"].get("pending", 0)
    return 1 if pending or obs["mismatches"] else 0


def _simulate_and_publish(
    args: argparse.Namespace,
    s: Settings,
    s2: Settings,
    db_url: str,
    console: Any,
    n: int,
    start: datetime,
    span: timedelta,
    rate: float | None,
) -> tuple[Simulation, Path, dict[str, Any]]:
    """Generate the run, write its truth (and receipts), register, publish and settle."""
    from producers.simulator import LATE_CASE_WINDOW, roster, simulate

    # Published now: a window that ended long ago leaves the late publication
    # case out (another run, with its own remembered numbering).
    now = datetime.now(UTC)
    late_case = now - (start + span) <= LATE_CASE_WINDOW
    key = hashlib.sha256(
        f"{args.seed}|{format_time(start)}|{span}|{n}|{args.anomalies}".encode()
        + (b"" if late_case else b"|no-late-case")
    )
    state = state_path(s, f"seed-{args.seed}-{key.hexdigest()[:10]}")
    first = first_seqs(s, [p.publisher_id for p in roster(args.seed)], state)
    loc = cli_locale(getattr(args, "locale", None), os.environ)
    days = Fraction(span // timedelta(seconds=1), 86400)
    console.print(
        f"generating {format_integer(n, loc)} events (seed {args.seed}, "
        f"{format_number(days, 0 if days.denominator == 1 else 1, loc)} days from "
        f"{format_datetime(start, loc)})..."
    )
    t0 = time.monotonic()
    sim = simulate(
        args.seed,
        events=n,
        start=start,
        span=span,
        anomalies=args.anomalies,
        first_seq=first,
        published_at=now,
    )
    console.print(f"generated in {format_number(Decimal(repr(time.monotonic() - t0)), 1, loc)} s")
    truth_path = (
        Path(args.truth)
        if args.truth
        else (s.data_path / "simulations" / f"seed-{args.seed}.truth.jsonl")
    )
    write_atomic(truth_path, sim.truth_jsonl())
    if args.receipts:
        write_atomic(
            Path(args.receipts),
            "".join(
                json.dumps({"transfer_id": t, "receipt_code": c}) + "\n"
                for t, c in sorted(sim.receipts.items())
            ),
            0o600,
        )
    register_all(s2, db_url, sim, args.timeout, console.print, phase=0)
    fleet = Fleet(s2, sim.publishers)
    try:
        with progress_bar(console) as progress:
            task = progress.add_task("publishing", total=len(sim.events))
            acks = progress.add_task("acknowledged", total=len(sim.events))

            def settled(pending: int) -> None:
                progress.update(acks, completed=max(0, progress.tasks[task].completed - pending))

            t1 = time.monotonic()
            published = publish_phases(
                s2,
                db_url,
                sim,
                fleet,
                rate,
                args.timeout,
                console.print,
                lambda k: progress.advance(task, k),
                settled=settled,
            )
            elapsed = time.monotonic() - t1
            fleet.settle(args.timeout, settled)
        obs = _observe(sim, fleet.statuses())
        per_pub = fleet.counts()
    finally:
        fleet.close()
    lateness = timedelta(seconds=s.clock_lateness_s)
    return (
        sim,
        truth_path,
        {
            "published": published,
            "publish_seconds": round(elapsed, 3),
            "final_clock": format_time(sim.final_clock(s.kafka_partitions, lateness)),
            "acknowledgements": obs,
            "per_publisher": per_pub,
        },
    )


def add_parser(sub: Any) -> None:
    """Add ``cuentas simulate``."""
    p = sub.add_parser(
        "simulate",
        help="publish a realistic, deterministic simulation",
        description="Registers the simulated publishers, publishes their signed "
        "events in order, writes the ground truth and waits for every "
        "acknowledgement. Same seed and start: byte-identical events.",
    )
    p.add_argument("--seed", type=int, metavar="N")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, metavar="N", help="publish N events")
    size.add_argument(
        "--duration", metavar="D", help="publish for D (e.g. 10m) at --rate: rate x duration events"
    )
    p.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="events per second (default: as fast as possible; demo: live rate)",
    )
    p.add_argument(
        "--anomalies", action="store_true", help="inject labelled discrepancies and attacks"
    )
    p.add_argument("--start", metavar="ISO", help="first event time (default: now - span)")
    p.add_argument(
        "--span", default="90d", metavar="D", help="event-time window (default 90d, at least 30d)"
    )
    p.add_argument(
        "--truth",
        metavar="FILE",
        help="ground truth JSONL (default <data dir>/simulations/seed-N.truth.jsonl)",
    )
    p.add_argument(
        "--receipts",
        metavar="FILE",
        help="also write every transfer's receipt code (JSONL, mode 600)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for acknowledgements (default 300)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="demo mode for `cuentas up --demo`: backfill, then a live trickle",
    )
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.set_defaults(func=cmd_simulate)
