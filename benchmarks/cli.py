"""``cuentas bench NAME``: the speed and memory benchmarks (also ``python -m benchmarks NAME``).

Each run starts its own embedded broker and/or PostgreSQL on free ports in
a temporary folder, prints a table and writes
``benchmarks/results/<name>-<timestamp>.json``.  See docs/performance.md.

Only argparse here: the benchmark modules are imported when one runs, so
registering ``bench`` costs other ``cuentas`` commands nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["register", "BENCHMARKS", "build_parser", "run"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a minute or two")
    p.add_argument("--keep", action="store_true", help="keep the temporary data folder (logs, database) afterwards")
    p.add_argument("--data-dir", default=None, help="parent folder of the temporary data folder (default: system temp)")


def _args_e2e(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", type=int, default=None, help="events published at saturation (default 100000; quick 10000)")
    p.add_argument("--workers", type=int, default=1,
                   help="copies of the processes of --roles in the consumer group (default 1)")
    p.add_argument("--roles", default=None,
                   help="processes and their components, ';'-separated (default PROCESSOR_ROLES: "
                        "'gate,checkpointer,receipts,redrive;reconcilers'; 'all': one process for everything)")
    p.add_argument("--rates", default=None, help="offered rates in events/s, comma-separated, or 'none' (default 250,500,1000,2000)")
    p.add_argument("--rate-seconds", type=float, default=None, help="seconds per offered rate (default 20; quick 6)")
    p.add_argument("--anomalies", type=float, default=0.04, help="fraction of transfers with an anomaly (default 0.04)")
    p.add_argument("--no-baselines", action="store_true", help="skip the broker, Faust and Ed25519 baselines")
    p.add_argument("--preload", action="store_true",
                   help="drain benchmark: publish --events more events with the processors stopped, start them and"
                        " time how fast they drain the backlog (drain.events_per_s in the result)")
    p.add_argument("--bundle", type=int, default=None,
                   help="events per first-hop bundle (PUBLISH_BUNDLE_EVENTS of the run; default: the setting's, 256;"
                        " 1: one record per event)")
    p.add_argument("--linger-ms", type=float, default=50.0,
                   help="at offered rates, events handed over within this many ms go out in one bundle (default 50)")
    p.add_argument("--uvloop", type=int, choices=(0, 1), default=None,
                   help="PROCESSOR_UVLOOP of the run (default: the setting's)")
    p.add_argument("--no-saturation", action="store_true",
                   help="skip the saturation phase (publisher and processors at once); with --preload, a short run")
    p.add_argument("--clock-lateness", type=float, default=0.0,
                   help="CLOCK_LATENESS_S of the run (default 0: flags become public as soon as processed, so the"
                        " flag latency is the platform's; the setting's own default, 1 h, would add that hour)")
    p.add_argument("--profile", action="store_true",
                   help="record the processors with py-spy during the saturation phase (pip install py-spy)")


def _args_log(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default=None, help="tree sizes for the proof benchmark (default 1000000,10000000)")
    p.add_argument("--proofs", type=int, default=None, help="proofs of each kind per size (default 2000; quick 300)")
    p.add_argument("--append-leaves", type=int, default=None, help="leaves appended per batch size (default 200000)")


def _args_dashboard(p: argparse.ArgumentParser) -> None:
    p.add_argument("--transfers", type=int, default=None, help="transfers loaded (default 10000000; quick 200000)")
    p.add_argument("--projects", type=int, default=None, help="projects loaded (default 100000)")
    p.add_argument("--flags", type=int, default=None, help="flags loaded (default 100000)")
    p.add_argument("--samples", type=int, default=None, help="timed calls per query (default 300)")
    p.add_argument("--no-pages", action="store_true", help="skip the Streamlit AppTest page renders")


def _args_memory(p: argparse.ArgumentParser) -> None:
    p.add_argument("--open-transfers", type=int, default=None, help="open transfers in the database (default 1000000)")
    p.add_argument("--events", type=int, default=None, help="transfer.sent events processed afterwards (default 100000; quick 10000)")
    p.add_argument("--sweep-seconds", type=float, default=None, help="seconds of deadline sweep observed (default 60)")


def _args_receipt_page(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=None, help="cold-cache runs per scenario (default 7; quick 3)")
    p.add_argument("--url", help="a running receipt check page (`cuentas status --json`: receipt_check_url)")
    p.add_argument("--site", help="a folder written by `cuentas log export`, served by the platform's static server")
    p.add_argument("--code", help="the receipt code to check (with --url or --site; default: a demo code)")
    p.add_argument("--dashboard", action="store_true",
                   help="also time the dashboard's track page once under the same conditions (slow: ~15 s+)")


#: name -> (module, argument adder, one-line help)
BENCHMARKS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]] = {
    "e2e": ("benchmarks.e2e", _args_e2e, "signed events through gate, log and reconciliation; latency; baselines"),
    "log": ("benchmarks.log", _args_log, "log append rate and proof latency at 1M and 10M leaves"),
    "dashboard": ("benchmarks.dashboard", _args_dashboard, "dashboard queries and page renders over 10M transfers"),
    "memory": ("benchmarks.memory", _args_memory, "processors' memory with 1M open transfers and a deadline sweep"),
    "receipt-page": ("benchmarks.receipt_page", _args_receipt_page,
                     "the light receipt check on Fast 3G at 360 px: code to verified, bytes (Chromium)"),
}


def _run_one(name: str, args: argparse.Namespace) -> None:
    mod = __import__(BENCHMARKS[name][0], fromlist=["run"])
    mod.run(args)


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        _stop_cleanly()
        _run_one(name, args)
        return 0

    return handle


def _run_all(args: argparse.Namespace) -> int:
    for name, (_mod, add, _help) in BENCHMARKS.items():
        p = argparse.ArgumentParser()
        _common(p)
        add(p)
        print(f"=== {name} ===", flush=True)
        _run_one(name, p.parse_args(["--quick"] if args.quick else []))
    return 0


def register(sub: Any) -> None:
    """Add ``bench`` and its subcommands to the ``cuentas`` parser."""
    bench = sub.add_parser("bench", help="run a benchmark (e2e, log, dashboard, memory, receipt-page, all)",
                           description="Speed and memory benchmarks on this machine. Each starts its own embedded "
                           "broker/PostgreSQL on free ports, prints a table and writes benchmarks/results/"
                           "<name>-<timestamp>.json. See docs/performance.md.")
    names = bench.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name, (_mod, add, help_text) in BENCHMARKS.items():
        p = names.add_parser(name, help=help_text, description=help_text)
        _common(p)
        add(p)
        p.set_defaults(func=_handler(name))
    p = names.add_parser("all", help="every benchmark in turn, with default sizes (or --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes")
    p.set_defaults(func=_run_all)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="Cuentas Claras benchmarks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    return p


def _stop_cleanly() -> None:
    """SIGTERM (and SIGINT, even when inherited as ignored) unwind the stack, so every
    benchmark's ``finally`` stops the processes it started and removes its temporary folder."""
    import signal

    def _exit(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    _stop_cleanly()
    return int(args.func(args))
