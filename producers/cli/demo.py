"""``cuentas simulate --demo``: the demo publisher that ``cuentas up --demo`` runs.

It backfills 90 days of deterministic traffic with every anomaly (seed
:data:`DEMO_SEED`), prints receipt codes to try on the dashboard, then
trickles live remittances until stopped.  Its state (window, first sequence
numbers, backfill done) lives in ``<data dir>/demo`` so a restart publishes
the same backfill (read as duplicates) instead of a new one.  The demo is
an extra: its failure is reported and never takes the platform down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.cli.common import (
    current_settings,
    parse_start,
    publisher_locks,
    running_platform,
    write_atomic,
)
from producers.cli.fleet import Fleet, next_seqs, publish_phases, register_all
from schemas.errors import CuentasError, MalformedInput, UnavailableService
from schemas.times import format_time

if TYPE_CHECKING:
    from infra.settings import Settings

__all__ = ["DEMO_SEED", "DEMO_EVENTS", "DEMO_SPAN", "run_demo"]


DEMO_SEED = 2002  # the year 3x1 para Migrantes began
DEMO_EVENTS = 1_500
DEMO_SPAN = timedelta(days=90)


def _demo_paths(settings: Settings) -> tuple[Path, Path, Path]:
    """The demo's state file, receipt codes for the reader, and ground truth."""
    d = settings.data_path / "demo"
    return d / "state.json", d / "receipt-codes.txt", d / "truth.jsonl"


def _retry(
    what: str,
    fn: Callable[[], Any],
    stop: Callable[[], bool],
    echo: Callable[[str], None],
    patience: float = 600.0,
) -> Any:
    """Retry ``fn`` while the platform is still starting (UnavailableService)."""
    deadline = time.monotonic() + patience
    delay = 1.0
    while True:
        try:
            return fn()
        except UnavailableService as e:
            if stop() or time.monotonic() > deadline:
                raise
            echo(f"{what}: {e}; retrying in {delay:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 15.0)


def run_demo(args: argparse.Namespace) -> int:
    """Backfill 90 days of demo traffic (with anomalies), then trickle live events until stopped."""
    stopping = {"flag": False}

    def on_signal(signum: int, frame: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def stop() -> bool:
        return stopping["flag"]

    def echo(msg: str) -> None:
        print(msg, flush=True)

    try:
        return _demo(args, stop, echo)
    except CuentasError as e:
        # The demo is an extra: its failure must not take the platform down with it.
        echo(f"cuentas simulate --demo: {e}; the demo publisher stops, the platform keeps running")
        return 0


def _demo(args: argparse.Namespace, stop: Callable[[], bool], echo: Callable[[str], None]) -> int:
    """Wait for the platform, then run the demo holding its publishers' locks."""
    from producers.simulator import roster

    s = current_settings()
    s2, db_url = _retry("waiting for the platform", lambda: running_platform(s), stop, echo)
    with publisher_locks(s, [p.publisher_id for p in roster(DEMO_SEED)]):
        return _demo_run(args, s, s2, db_url, stop, echo)


def _demo_run(
    args: argparse.Namespace,
    s: Settings,
    s2: Settings,
    db_url: str,
    stop: Callable[[], bool],
    echo: Callable[[str], None],
) -> int:
    """Backfill once (the state file remembers it), then trickle until stopped."""
    from producers.simulator import LiveFeed, roster, simulate

    state_path, codes_path, truth_path = _demo_paths(s)
    state: dict[str, Any] = {}
    if state_path.exists():
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(state_path.read_text())
    if not state.get("start"):
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        first = next_seqs(s, [p.publisher_id for p in roster(DEMO_SEED)])
        state = {
            "seed": DEMO_SEED,
            "start": format_time(now - DEMO_SPAN - timedelta(minutes=10)),
            "events": DEMO_EVENTS,
            "first_seq": first,
            "backfill_done": False,
        }
        write_atomic(state_path, json.dumps(state, indent=1, sort_keys=True))
    sim = simulate(
        DEMO_SEED,
        events=int(state["events"]),
        start=parse_start(state["start"]),
        span=DEMO_SPAN,
        anomalies=True,
        first_seq=state.get("first_seq") or {},
    )
    write_atomic(truth_path, sim.truth_jsonl())
    labels = {"on_time": "paid on time", "short": "paid short", "late": "paid late"}
    codes = [(sim.demo_receipts[k][1], v) for k, v in labels.items() if k in sim.demo_receipts]
    write_atomic(
        codes_path,
        "# Cuentas Claras demo: receipt codes of simulated transfers\n"
        + "".join(f"{c}  {what}\n" for c, what in codes),
    )
    for c, what in codes:
        echo(f"Demo receipt code: {c} ({what})")
    _retry(
        "registering the demo publishers",
        lambda: register_all(s2, db_url, sim, 120.0, echo, phase=None if state.get("backfill_done") else 0),
        stop,
        echo,
    )
    fleet = Fleet(s2, sim.publishers)
    try:
        if not state.get("backfill_done"):
            echo(f"publishing the demo backfill: {len(sim.events):,} events over the last 90 days")
            publish_phases(s2, db_url, sim, fleet, None, 180.0, echo, stop=stop)
            pending = fleet.settle(180.0)
            echo(f"backfill published ({pending} still waiting for acknowledgement)")
            if not stop():
                state["backfill_done"] = True
                write_atomic(state_path, json.dumps(state, indent=1, sort_keys=True))
        rate = args.rate or 3.0
        echo(f"live trickle: about {rate:g} events per second until stopped")
        _trickle(fleet, LiveFeed(DEMO_SEED, rate=rate), stop, echo)
    finally:
        fleet.close()
    return 0


def _trickle(
    fleet: Fleet, feed: Any, stop: Callable[[], bool], echo: Callable[[str], None]
) -> None:
    """Publish the live feed's events as they fall due; poll acknowledgements now and then."""
    last = time.monotonic()
    last_acks = last_note = last
    sent = 0
    while not stop():
        time.sleep(0.25)
        now_m = time.monotonic()
        for ev in feed.tick(datetime.now(UTC), now_m - last):
            pub = fleet.pubs[ev.publisher_id]
            try:
                pub.publish(ev.event_type, ev.payload, event_time=datetime.now(UTC))
                sent += 1
            except MalformedInput as e:  # a simulator bug: say so, keep going
                echo(f"live event refused before publishing: {e}")
        last = now_m
        if now_m - last_acks > 5:
            for pub in fleet.pubs.values():
                if pub.outbox.pending():
                    pub.poll_acks(timeout=0.05)
                    pub.resend_due()
            last_acks = now_m
        if now_m - last_note > 60:
            echo(f"live trickle: {sent:,} events published so far")
            last_note = now_m
    with contextlib.suppress(Exception):
        fleet.producer.flush(timeout=10)
