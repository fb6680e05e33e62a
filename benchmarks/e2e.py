"""End to end: signed transfer events through gate, log and reconciliation, on the real stack.

    cuentas bench e2e [--events 100000] [--workers 1|2] [--rates 500,1000,2000] [--rate-seconds 20] [--quick]

One run: the embedded broker and an embedded PostgreSQL on free ports,
migrations, topics, the processors as subprocess(es) (``python -m
stream_processors``), an operator registered through the gate.  All events
are signed before any clock starts; kafka-python publishes them.

Timing uses one clock: the machine's wall clock.  The publisher records
``time.time()`` right before each ``send``; PostgreSQL runs with
``track_commit_timestamp = on`` and ``pg_xact_commit_timestamp(xmin)`` of a
row is the instant its transaction committed, i.e. the moment the effect
became visible.  Per event:

* logged     - its ``log_entries`` row (gate + log writer committed);
* reconciled - its ``entity_events`` row, committed in the same transaction
  as the transfer's state, summaries and flags;
* flag       - the first ``flag_history`` row of a flag on its transfer,
  measured from the publication of the payout that triggered it.

Phases: (a) saturation - publish N events as fast as kafka-python can and
measure until the last one is reconciled; (b) fixed offered rates, paced by
the publisher, for latency percentiles.  Then, on the same broker with the
processors stopped, the baselines: kafka-python produce and consume of the
same payloads, a bare Faust agent that only counts (subprocess), Ed25519
verification on one core and in two processes, and the pure CPU cost of the
gate's decision and of the transfer rules per event.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS_DIR,
    ROOT,
    RssSampler,
    Services,
    bench_settings,
    fmt_bytes,
    fmt_ms,
    fmt_rate,
    machine_info,
    percentiles,
    print_table,
    start_pyspy,
    summarize_collapsed,
    wait_until,
    write_result,
)
from benchmarks.platform import prepare, query, register_operator, start_processors, stop_processors
from benchmarks.workload import OPERATOR, Msg, presign
from infra.settings import Settings
from schemas.routing import partition_for

__all__ = ["run"]


# --- publishing --------------------------------------------------------------------------------------


class Publisher:
    """kafka-python producer of pre-signed messages, with the SDK's headers, keys and bundles.

    With ``PUBLISH_BUNDLE_EVENTS`` > 1 (the SDK's default) events go out as the
    SDK's ``publish_many`` sends them (``schemas.bundles``): one record per
    destination partition holding up to that many events.  Unpaced, everything
    handed over in one call is bundled at once; paced, what was handed over in
    the last ``linger_s`` goes out together (a publisher handing over its
    events in small batches), and each event's time is its hand-over, so the
    latencies include that wait.
    """

    def __init__(self, s: Settings, linger_s: float = 0.05) -> None:
        from infra.kafka import make_producer

        self.s = s
        self.producer = make_producer(s)
        self.header = ("cc-publisher", OPERATOR.encode())
        self.bundle = max(1, s.publish_bundle_events)
        self.linger_s = linger_s
        self.records = 0
        for t in ("publish.transfers",):
            self.producer.partitions_for(s.topic(t))

    def _send_now(self, msgs: Sequence[Msg], idx: Sequence[int], topic: str | None) -> None:
        from schemas.bundles import BUNDLE_HEADER, encode_bundle, group_by_partition

        by_topic: dict[str, list[int]] = {}
        for i in idx:
            by_topic.setdefault(topic or self.s.topic(msgs[i].topic), []).append(i)
        for full, ids in by_topic.items():
            parts = len(self.producer.partitions_for(full) or ()) or self.s.kafka_partitions
            grouped = group_by_partition(((i, msgs[i].key, msgs[i].value) for i in ids), parts, self.bundle,
                                         self.s.publish_bundle_bytes)
            for part, bundles in grouped.items():
                for b in bundles:
                    self.records += 1
                    if len(b) == 1:
                        m = msgs[b[0][0]]
                        self.producer.send(full, key=m.key, value=m.value,
                                           headers=[self.header, ("cc-event-id", m.event_id.encode())])
                        continue
                    self.producer.send(full, key=b[0][1], partition=part,
                                       value=encode_bundle([(n, k, v) for n, (_i, k, v) in enumerate(b)]),
                                       headers=[self.header, (BUNDLE_HEADER, b"1")])

    def send(self, msgs: Sequence[Msg], *, rate: float | None = None, topic: str | None = None,
             max_seconds: float = 600.0) -> tuple[list[float], float]:
        """Send ``msgs`` (paced at ``rate``/s if given); return each hand-over time and the flush end time."""
        times = [0.0] * len(msgs)
        t0 = time.time()
        limit = t0 + max_seconds
        send = self.producer.send
        pending: list[int] = []
        last = t0
        for i, m in enumerate(msgs):
            if rate:
                delay = t0 + i / rate - time.time()
                if delay > 0.0005:
                    time.sleep(delay)
            now = time.time()
            if now > limit:
                raise RuntimeError(f"publishing took longer than {max_seconds:.0f}s")
            times[i] = now
            if self.bundle <= 1:
                self.records += 1
                send(topic or self.s.topic(m.topic), key=m.key, value=m.value,
                     headers=[self.header, ("cc-event-id", m.event_id.encode())])
                continue
            pending.append(i)
            if rate and now - last >= self.linger_s:
                self._send_now(msgs, pending, topic)
                pending, last = [], now
        if pending:
            self._send_now(msgs, pending, topic)
        self.producer.flush(timeout=max_seconds)
        return times, time.time()

    def close(self) -> None:
        self.producer.close(timeout=10)


# --- observing the database --------------------------------------------------------------------------


def wait_reconciled(s: Settings, msgs: Sequence[Msg], timeout: float) -> bool:
    """Wait until every event of ``msgs`` has its ``entity_events`` row (bounded by ``timeout``).

    Cheap first: the last event of each partition (order is kept per
    partition); then one exact count over all the transfers.
    """
    last: dict[int, Msg] = {}
    for m in msgs:
        last[partition_for(m.key, s.kafka_partitions)] = m
    tails = list(last.values())
    tids = sorted({m.transfer_id for m in msgs})

    def tails_done() -> bool:
        rows = query(s, "SELECT count(*) FROM entity_events WHERE kind = 'transfer' AND (entity_id, event_id) IN"
                        " (SELECT unnest(%s::text[]), unnest(%s::text[]))",
                     ([m.transfer_id for m in tails], [m.event_id for m in tails]))
        return int(rows[0][0]) == len(tails)

    def all_done() -> bool:
        rows = query(s, "SELECT count(*) FROM entity_events WHERE kind = 'transfer' AND entity_id = ANY(%s)", (tids,))
        return int(rows[0][0]) >= len(msgs)

    deadline = time.monotonic() + timeout
    if not wait_until(tails_done, timeout=timeout, interval=0.2):
        return False
    return wait_until(all_done, timeout=max(1.0, deadline - time.monotonic()), interval=1.0)


def commit_times(s: Settings, msgs: Sequence[Msg]) -> dict[str, dict[str, float]]:
    """Commit instants (epoch seconds) per event id: logged and reconciled; per transfer: first flag."""
    ids = [m.event_id for m in msgs]
    tids = sorted({m.transfer_id for m in msgs})
    logged = dict(query(s, "SELECT event_id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
                           " FROM log_entries WHERE event_id = ANY(%s)", (ids,)))
    recon = dict(query(s, "SELECT event_id, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8"
                          " FROM entity_events WHERE kind = 'transfer' AND entity_id = ANY(%s)", (tids,)))
    flags = {r[0]: float(r[1]) for r in query(
        s, "SELECT f.subject_id, min(extract(epoch FROM pg_xact_commit_timestamp(h.xmin)))::float8"
           " FROM flags f JOIN flag_history h ON h.flag_id = f.flag_id"
           " WHERE f.subject_kind = 'transfer' AND f.subject_id = ANY(%s) GROUP BY f.subject_id", (tids,))}
    return {"logged": {k: float(v) for k, v in logged.items() if v is not None},
            "reconciled": {k: float(v) for k, v in recon.items() if v is not None},
            "flag": flags}


def latency_report(msgs: Sequence[Msg], sent: Sequence[float], ct: dict[str, dict[str, float]]) -> dict[str, Any]:
    to_log = [(ct["logged"][m.event_id] - t) * 1000 for m, t in zip(msgs, sent, strict=True) if m.event_id in ct["logged"]]
    to_rec = [(ct["reconciled"][m.event_id] - t) * 1000 for m, t in zip(msgs, sent, strict=True)
              if m.event_id in ct["reconciled"]]
    to_flag = []
    expected_flags = 0
    for m, t in zip(msgs, sent, strict=True):
        if m.anomaly:
            expected_flags += 1
            if m.transfer_id in ct["flag"]:
                to_flag.append((ct["flag"][m.transfer_id] - t) * 1000)
    return {
        "publication_to_logged_ms": percentiles(to_log),
        "publication_to_reconciled_ms": percentiles(to_rec),
        "publication_to_flag_ms": percentiles(to_flag),
        "flags_expected_transfers": expected_flags,
        "flags_found_transfers": len(to_flag),
        "events": len(msgs),
        "logged": len(to_log),
        "reconciled": len(to_rec),
    }


def cpu_seconds(pids: dict[str, list[int]], flat: frozenset[str] = frozenset({"publisher"})) -> dict[str, float]:
    """User+system CPU seconds of each named process tree so far (names in ``flat``: the process alone)."""
    import psutil

    out: dict[str, float] = {}
    for name, roots in pids.items():
        total = 0.0
        for pid in roots:
            try:
                p = psutil.Process(pid)
                procs = [p] if name in flat else [p, *p.children(recursive=True)]
            except psutil.Error:
                continue
            for q in procs:
                try:
                    c = q.cpu_times()
                    total += c.user + c.system
                except psutil.Error:
                    continue
        out[name] = total
    return out


class CpuTimeline:
    """CPU seconds of named process trees sampled every ``interval`` s in a thread, to read
    the CPU spent between two instants known only afterwards (commit timestamps)."""

    def __init__(self, pids: dict[str, list[int]], interval: float = 0.2, max_seconds: float = 1800.0) -> None:
        import threading

        self.pids = pids
        self.interval = interval
        self.max_seconds = max_seconds
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-timeline", daemon=True)

    def _run(self) -> None:
        t_end = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < t_end:
            self.samples.append((time.time(), cpu_seconds(self.pids)))
            self._stop.wait(self.interval)

    def start(self) -> CpuTimeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.samples.append((time.time(), cpu_seconds(self.pids)))

    def at(self, t: float) -> dict[str, float]:
        """CPU seconds at ``t``, interpolated linearly between the samples around it."""
        if not self.samples:
            return {}
        before = [x for x in self.samples if x[0] <= t]
        after = [x for x in self.samples if x[0] >= t]
        if not before:
            return dict(self.samples[0][1])
        if not after:
            return dict(self.samples[-1][1])
        (t0, c0), (t1, c1) = before[-1], after[0]
        w = 0.0 if t1 <= t0 else (t - t0) / (t1 - t0)
        return {k: c0.get(k, 0.0) + w * (c1.get(k, 0.0) - c0.get(k, 0.0)) for k in c1}


def _keep_profile(raw: Path) -> Path:
    """Copy py-spy's collapsed stacks into the results folder, as JSON (results are git-ignored JSON)."""
    out = RESULTS_DIR / f"e2e-profile-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    lines = raw.read_text(errors="replace").splitlines() if raw.exists() else []
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"format": "py-spy record --format raw (collapsed stacks: 'frame;frame;... count')",
                               "stacks": lines}))
    return out


# --- baselines -----------------------------------------------------------------------------------------


def baseline_kafka(s: Settings, msgs: Sequence[Msg], topic: str, timeout: float) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    from infra.kafka import client_config, ensure_topics

    ensure_topics(s, [topic])
    pub = Publisher(s.replace(publish_bundle_events=1))  # the baselines read one record per event
    pub.producer.partitions_for(topic)
    t0 = time.time()
    _, t1 = pub.send(msgs, topic=topic, max_seconds=timeout)
    pub.close()
    produce_rate = len(msgs) / (t1 - t0)

    c = KafkaConsumer(**client_config(s), enable_auto_commit=False, fetch_max_wait_ms=100, max_poll_records=5000)
    parts = c.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    n = 0
    t0 = time.time()
    deadline = time.monotonic() + timeout
    while n < len(msgs) and time.monotonic() < deadline:
        batches = c.poll(timeout_ms=500, max_records=5000)
        for recs in batches.values():
            n += len(recs)
    t1 = time.time()
    c.close()
    return {"produce_msgs_per_s": produce_rate, "consume_msgs_per_s": n / (t1 - t0), "consumed": n,
            "messages": len(msgs), "avg_bytes": sum(len(m.value) for m in msgs) / max(1, len(msgs))}


def baseline_faust(s: Settings, topic: str, expect: int, mode: str, timeout: float,
                   sampler: RssSampler | None = None) -> dict[str, Any]:
    from infra.procs import spawn, stop_process

    result = s.data_path / f"faust-counter-{mode}.json"
    env = {**os.environ, "BENCH_BROKER": s.kafka_bootstrap_servers, "BENCH_TOPIC": topic, "BENCH_EXPECT": str(expect),
           "BENCH_RESULT": str(result), "BENCH_MODE": mode, "BENCH_GROUP": f"bench-counter-{mode}-{int(time.time())}",
           "BENCH_DATADIR": str(s.data_path / f"faust-counter-{mode}"), "BENCH_PARTITIONS": str(s.kafka_partitions),
           "BENCH_CONFIG": str(s.data_path / "bench-settings.toml"), "PYTHONPATH": str(ROOT)}
    t_start = time.time()
    proc = spawn([sys.executable, "-m", "benchmarks.faust_counter"], log_path=s.data_path / "logs" / f"faust-{mode}.log",
                 env=env, cwd=str(ROOT))
    if sampler:
        sampler.watch(f"faust_counter_{mode}", [proc.pid])
    try:
        ok = wait_until(lambda: result.exists() or proc.poll() is not None, timeout=timeout, interval=0.2)
    finally:
        stop_process(proc, timeout=15)
    if not ok or not result.exists():
        return {"error": f"bare Faust agent did not count {expect} records within {timeout:.0f}s"}
    r = json.loads(result.read_text())
    span = float(r["last"]) - float(r["first"])
    return {"mode": mode, "count": r["count"], "events_per_s": r["count"] / span if span > 0 else None,
            "seconds_reading": span, "seconds_including_group_join": float(r["last"]) - t_start}


_VERIFY: list[tuple[bytes, bytes]] = []
_PUB: list[bytes] = []


def _verify_chunk(bounds: tuple[int, int]) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = Ed25519PublicKey.from_public_bytes(_PUB[0])
    for msg, sig in _VERIFY[bounds[0]:bounds[1]]:
        key.verify(sig, msg)
    return bounds[1] - bounds[0]


def baseline_ed25519(msgs: Sequence[Msg], public_key: bytes, count: int) -> dict[str, Any]:
    """Ed25519 verification of the events' real signed bytes: one core, then two processes."""
    from schemas.envelope import parse_envelope

    envs = [parse_envelope(m.value) for m in msgs[:count]]
    _VERIFY[:] = [(e.signed_bytes(), e.signature) for e in envs]
    _PUB[:] = [public_key]
    t0, c0 = time.perf_counter(), time.process_time()
    _verify_chunk((0, len(_VERIFY)))
    one = len(_VERIFY) / (time.perf_counter() - t0)
    one_cpu = len(_VERIFY) / max(1e-9, time.process_time() - c0)
    ctx = mp.get_context("fork")
    half = len(_VERIFY) // 2
    with ctx.Pool(2) as pool:
        pool.map(_verify_chunk, [(0, 10), (10, 20)])  # warm both workers
        t0 = time.perf_counter()
        n = sum(pool.map(_verify_chunk, [(0, half), (half, len(_VERIFY))]))
        two = n / (time.perf_counter() - t0)
    _VERIFY.clear()
    return {"verifications": len(envs), "one_core_per_s": one, "one_core_per_cpu_s": one_cpu,
            "two_processes_per_s": two}


def cpu_microbench(s: Settings, msgs: Sequence[Msg], count: int) -> dict[str, Any]:
    """Pure CPU per event of the gate's decision (parse, schema, signature, registry) and of the rules."""
    from datetime import UTC, datetime, timedelta

    from infra.db import connect
    from infra.identities import PlatformKeys
    from infra.log_store import load_registry
    from schemas.envelope import parse_envelope
    from stream_processors.gate import GateLimits, Incoming, LogKnowledge, decide_batch, parse_item
    from stream_processors.reconcilers import parse_forwarded, thresholds
    from stream_processors.rules.transfers import reconcile_transfer

    keys = PlatformKeys.load(s)
    conn = connect(s.database_url, s.database_schema)
    with conn, conn.cursor() as cur:
        registry = load_registry(cur, keys.authority.verifier)
    conn.close()
    limits = GateLimits(s.max_event_bytes, timedelta(seconds=s.max_future_skew_s),
                        timedelta(days=s.max_event_age_days), timedelta(days=s.late_publication_days))
    items = [Incoming(m.value, "bench/0/0") for m in msgs[:count]]
    now = datetime.now(UTC)
    # CPU time of this process: robust to other work on the machine.  Batches
    # as the gate takes them, against an empty log (no duplicates to find).
    t0 = time.process_time()
    decisions = [d for i in range(0, len(items), s.batch_size)
                 for d in decide_batch([parse_item(it, limits.max_event_bytes) for it in items[i:i + s.batch_size]],
                                       LogKnowledge(), registry, now, limits).decisions]
    gate_s = time.process_time() - t0
    rejected = sum(1 for d in decisions if d.outcome != "accepted")
    t0 = time.process_time()
    for m in msgs[:count]:
        parse_envelope(m.value)
    parse_s = time.process_time() - t0
    evts: dict[str, list[Any]] = {}
    for m in msgs[:count]:
        evts.setdefault(m.transfer_id, []).append(parse_forwarded(m.value, 1))
    th = thresholds(s)
    t0 = time.process_time()
    for tid, evs in evts.items():
        reconcile_transfer(tid, evs, None, th)
    rules_s = time.process_time() - t0
    return {"events": len(items), "gate_decision_us_per_event": gate_s / len(items) * 1e6,
            "parse_and_schema_us_per_event": parse_s / len(items) * 1e6,
            "rules_us_per_transfer": rules_s / len(evts) * 1e6, "rules_us_per_event": rules_s / len(items) * 1e6,
            "gate_rejected_in_microbench": rejected}


# --- the drain (--preload) -------------------------------------------------------------------------------


def drain_phase(s: Settings, svc: Services, msgs: Sequence[Msg], pub: Publisher,
                start: Any, stop: Any, profile: bool = False) -> tuple[dict[str, Any], list[subprocess.Popen[bytes]]]:
    """Publish ``msgs`` with the processors stopped, start them, and time how fast they drain the backlog.

    As in production, where publishers run on their own machines: the
    processors find the whole workload waiting and the publisher's CPU is not
    in the measured window.  ``start()`` returns the new processes; ``stop()``
    stops the running ones.  The rate is counted from the commit of the
    gate's first batch to the commit of the last reconciled event
    (``events_per_s``: the events after that first batch over that span;
    start-up and group join are excluded, as in the bare Faust baseline,
    and reported apart in ``events_per_s_including_startup``).
    """
    stop()
    t0 = time.time()
    _, t_pub = pub.send(msgs)
    out: dict[str, Any] = {"events": len(msgs), "publish_seconds": t_pub - t0}
    t_spawn = time.time()
    procs = start()
    pids = {**svc.pids(), "processors": [p.pid for p in procs]}
    tl = CpuTimeline(pids).start()
    # One py-spy per processors process (the first is the gate's, the next the reconcilers').
    profs = []
    if profile:
        for k, p in enumerate(procs[:2]):
            prof_out = s.data_path / f"py-spy-drain-{k}.txt"
            profs.append((prof_out, start_pyspy(p.pid, max(180.0, len(msgs) / 200) + 60, prof_out)))
    done = wait_reconciled(s, msgs, timeout=max(180.0, len(msgs) / 200))
    tl.stop()
    for k, (prof_out, prof) in enumerate(profs):
        if prof is None:
            continue
        prof.send_signal(signal.SIGINT)
        try:
            prof.wait(60)
        except subprocess.TimeoutExpired:
            prof.kill()
        out["profile" if k == 0 else f"profile_{k}"] = {"file": str(_keep_profile(prof_out)),
                                                          **summarize_collapsed(prof_out)}
    out["completed"] = done
    ct = commit_times(s, msgs)
    logged = sorted(ct["logged"].values())
    rec = sorted(ct["reconciled"].values())
    if not logged or not rec:
        return out, procs
    first = logged[0]
    n_first = sum(1 for x in logged if x == first)  # the first gate transaction: one commit instant
    span = rec[-1] - first
    counted = len(rec) - n_first
    out.update({
        "events_per_s": counted / span if span > 0 else None,
        "events_per_s_including_startup": len(rec) / (rec[-1] - t_spawn),
        "gate_events_per_s": (len(logged) - n_first) / (logged[-1] - first) if logged[-1] > first else None,
        "seconds": span, "seconds_from_spawn": rec[-1] - t_spawn,
        "startup_seconds": first - t_spawn, "first_batch_events": n_first,
        "reconciled": len(rec), "logged": len(logged),
        "flags_found_transfers": len(ct["flag"]),
        "flags_expected_transfers": sum(1 for m in msgs if m.anomaly),
    })
    c0, c1 = tl.at(first), tl.at(rec[-1])
    out["cpu_seconds"] = {k: c1[k] - c0.get(k, 0.0) for k in c1}
    out["cpu_ms_per_event"] = {k: v * 1000 / max(1, counted) for k, v in out["cpu_seconds"].items()}
    out["processes"] = len(procs)
    return out, procs


# --- the run ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    n_events = int(args.events or (10_000 if quick else 100_000))
    rates_text = args.rates or ("250,500" if quick else "250,500,1000,2000")
    rates = [] if rates_text == "none" else [float(x) for x in rates_text.split(",") if x]
    rate_s = float(args.rate_seconds or (6 if quick else 20))
    workers = max(1, int(args.workers))
    machine = machine_info()
    result: dict[str, Any] = {"parameters": {"events": n_events, "workers": workers, "rates": rates,
                                             "rate_seconds": rate_s, "anomaly_rate": args.anomalies, "quick": quick}}
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.keys import public_key_bytes

    with Services(kafka=True, postgres=True, commit_timestamps=True, keep=bool(args.keep),
                  base_dir=args.data_dir) as svc:
        # CLOCK_LATENESS_S=0: a flag becomes public once the event-time clock
        # passed the moment it became true, and the clock lags the newest
        # events by this allowance (1 h by default, an out-of-order tolerance
        # chosen by the operator).  The workload's event times advance by a
        # millisecond per transfer, so with the default no flag would become
        # public during a run; with 0 the flag latency is the platform's own.
        s = bench_settings(svc.data_dir, svc.bootstrap, svc.database_url, REDRIVE_AFTER_S="600",
                           CHECKPOINT_INTERVAL_S="1.0", CLOCK_LATENESS_S=str(args.clock_lateness),
                           **({"PUBLISH_BUNDLE_EVENTS": str(args.bundle)} if args.bundle else {}),
                           **({"PROCESSOR_UVLOOP": str(args.uvloop)} if args.uvloop is not None else {}))
        result["settings"] = {"batch_size": s.batch_size, "batch_window_s": s.batch_window_s,
                              "processor_roles": args.roles if args.roles is not None else s.processor_roles,
                              "processor_uvloop": s.processor_uvloop,
                              "publish_bundle_events": s.publish_bundle_events,
                              "publish_bundle_bytes": s.publish_bundle_bytes, "linger_ms": args.linger_ms,
                              "clock_lateness_s": s.clock_lateness_s,
                              "kafka_partitions": s.kafka_partitions, "redrive_after_s": s.redrive_after_s,
                              "postgres": "embedded, fsync=on, synchronous_commit=on, shared_buffers=256MB"}
        print(f"data folder {svc.data_dir}; broker {svc.bootstrap}; postgres {svc.database_url}")
        prepare(s)
        sampler = RssSampler(interval=0.5).start()
        for name, roots in svc.pids().items():
            sampler.watch(name, roots)
        sampler.watch("publisher", [os.getpid()], tree=False)
        op_key = Ed25519PrivateKey.generate()

        # Sign everything before any clock starts.
        t0 = time.perf_counter()
        run_id = f"{int(time.time()) % 100000:05d}"
        warm = presign(op_key, run_id, 0, 500, anomaly_rate=args.anomalies)
        first = 500
        sat = presign(op_key, run_id, first, n_events // 2, anomaly_rate=args.anomalies)
        first += n_events // 2
        drain_msgs: list[Msg] = []
        if args.preload:
            drain_msgs = presign(op_key, run_id, first, n_events // 2, anomaly_rate=args.anomalies)
            first += n_events // 2
        phases: list[tuple[float, list[Msg]]] = []
        for r in rates:
            k = int(r * rate_s) // 2
            phases.append((r, presign(op_key, run_id, first, k, anomaly_rate=args.anomalies)))
            first += k
        signed = len(warm) + len(sat) + len(drain_msgs) + sum(len(p) for _, p in phases)
        result["presign"] = {"events": signed, "seconds": time.perf_counter() - t0}
        print(f"signed {signed} events in {time.perf_counter() - t0:.1f}s")

        procs = start_processors(s, workers, roles=args.roles)
        sampler.watch("processors", [p.pid for p in procs])
        try:
            result["operator_registration_s"] = register_operator(s, OPERATOR, op_key)
            pub = Publisher(s, linger_s=args.linger_ms / 1000)
            pub.send(warm)
            if not wait_reconciled(s, warm, timeout=120):
                raise RuntimeError("warm-up events were not reconciled within 120s; see the processors' logs in "
                                   f"{s.data_path / 'logs'}")
            time.sleep(2.0)
            if args.preload:
                drain_r, procs = drain_phase(s, svc, drain_msgs, pub, lambda: start_processors(s, workers, roles=args.roles),
                                             lambda: stop_processors(procs), profile=bool(args.profile))
                sampler.watch("processors", [p.pid for p in procs])
                result["drain"] = drain_r
                print(f"drain: {drain_r.get('events_per_s') or 0:,.0f} events/s"
                      f" ({drain_r.get('events_per_s_including_startup') or 0:,.0f}/s including start-up),"
                      f" completed={drain_r.get('completed')}")
                time.sleep(2.0)
            pids = {**svc.pids(), "processors": [p.pid for p in procs], "publisher": [os.getpid()]}

            if not args.no_saturation:
                # (a) saturation
                drain_timeout = max(180.0, n_events / 250)
                prof_out = s.data_path / "py-spy-processors.txt"
                prof = start_pyspy(procs[0].pid, drain_timeout + 60, prof_out) if args.profile else None
                cpu0 = cpu_seconds(pids)
                t_first = time.time()
                sent, t_flushed = pub.send(sat)
                done = wait_reconciled(s, sat, timeout=drain_timeout)
                cpu1 = cpu_seconds(pids)
                if prof is not None:
                    prof.send_signal(signal.SIGINT)
                    try:
                        prof.wait(60)
                    except subprocess.TimeoutExpired:
                        prof.kill()
                    result["profile"] = {"file": str(_keep_profile(prof_out)), **summarize_collapsed(prof_out)}
                ct = commit_times(s, sat)
                rec_times = sorted(ct["reconciled"].values())
                log_times = sorted(ct["logged"].values())
                sat_r: dict[str, Any] = {"events": len(sat), "completed": done,
                                         "publish_seconds": t_flushed - t_first,
                                         "publish_rate": len(sat) / (t_flushed - t_first)}
                if rec_times:
                    span = rec_times[-1] - t_first
                    sat_r["seconds_to_last_reconciled"] = span
                    sat_r["events_per_s"] = len(rec_times) / span
                    lo, hi = rec_times[len(rec_times) // 10], rec_times[(len(rec_times) * 9) // 10]
                    sat_r["steady_events_per_s"] = (0.8 * len(rec_times)) / (hi - lo) if hi > lo else None
                if log_times:
                    sat_r["gate_events_per_s"] = len(log_times) / (log_times[-1] - t_first)
                sat_r["latency"] = latency_report(sat, sent, ct)
                sat_r["cpu_seconds"] = {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1}
                sat_r["cpu_ms_per_event"] = {k: v * 1000 / len(sat) for k, v in sat_r["cpu_seconds"].items()}
                result["saturation"] = sat_r
                print(f"saturation: {sat_r.get('events_per_s', 0):,.0f} events/s end to end "
                      f"(gate {sat_r.get('gate_events_per_s', 0):,.0f}/s), completed={done}")
                time.sleep(3.0)

            # (b) fixed offered rates
            result["rates"] = []
            for r, msgs in phases:
                sent, t_end = pub.send(msgs, rate=r)
                achieved = len(msgs) / (t_end - sent[0])
                done = wait_reconciled(s, msgs, timeout=min(240.0, 60 + len(msgs) / 250))
                ct = commit_times(s, msgs)
                rec = sorted(ct["reconciled"].values())
                lat = latency_report(msgs, sent, ct)
                entry = {"offered_per_s": r, "achieved_send_per_s": achieved, "completed": done,
                         "reconciled_per_s": len(rec) / (rec[-1] - sent[0]) if rec else None, **lat}
                result["rates"].append(entry)
                print(f"rate {r:,.0f}/s: p99 to reconciled {lat['publication_to_reconciled_ms'].get('p99', 0):,.0f} ms,"
                      f" to flag {lat['publication_to_flag_ms'].get('p99', 0):,.0f} ms")
                time.sleep(3.0)
            pub.close()
            counts = query(s, "SELECT (SELECT count(*) FROM log_entries), (SELECT count(*) FROM flags),"
                              " (SELECT count(*) FROM quarantine), (SELECT count(*) FROM pending_reconcile),"
                              " (SELECT count(*) FROM transfers)")[0]
            result["final_counts"] = dict(zip(["log_entries", "flags", "quarantine", "pending_reconcile", "transfers"],
                                              [int(x) for x in counts], strict=True))
            result["table_bytes"] = {t: int(b) for t, b in query(
                s, "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                   " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'"
                   " ORDER BY 2 DESC", (s.database_schema,))}
            result["database_bytes"] = int(query(s, "SELECT pg_database_size(current_database())")[0][0])
        finally:
            stop_processors(procs)
            sampler.sample(pss=True)

        # (c) baselines on the same broker, processors stopped
        if not args.no_baselines:
            topic = s.topic("baseline")
            bl: dict[str, Any] = {}
            bl["kafka_python"] = baseline_kafka(s, sat, topic, timeout=300)
            print(f"kafka-python: produce {bl['kafka_python']['produce_msgs_per_s']:,.0f}/s,"
                  f" consume {bl['kafka_python']['consume_msgs_per_s']:,.0f}/s")
            for mode in ("batch", "each"):
                bl[f"faust_bare_{mode}"] = baseline_faust(s, topic, len(sat), mode, timeout=120 + len(sat) / 1000,
                                                          sampler=sampler)
                print(f"bare Faust ({mode}): {bl[f'faust_bare_{mode}'].get('events_per_s') or 0:,.0f} events/s")
            bl["ed25519"] = baseline_ed25519(sat, public_key_bytes(op_key), min(len(sat), 20_000))
            bl["cpu_microbench"] = cpu_microbench(s, sat, min(len(sat), 10_000))
            result["baselines"] = bl
            pipe = result.get("saturation", {}).get("events_per_s")
            if pipe:
                result["fractions"] = {
                    "of_kafka_python_produce": pipe / bl["kafka_python"]["produce_msgs_per_s"],
                    "of_kafka_python_consume": pipe / bl["kafka_python"]["consume_msgs_per_s"],
                    "of_faust_bare_batch": pipe / bl["faust_bare_batch"]["events_per_s"]
                    if bl["faust_bare_batch"].get("events_per_s") else None,
                    "of_faust_bare_each": pipe / bl["faust_bare_each"]["events_per_s"]
                    if bl["faust_bare_each"].get("events_per_s") else None,
                    "of_ed25519_one_core": pipe / bl["ed25519"]["one_core_per_s"],
                    "of_ed25519_two_processes": pipe / bl["ed25519"]["two_processes_per_s"],
                }
            drained = result.get("drain", {}).get("events_per_s")
            if drained:
                fb, fe = bl["faust_bare_batch"].get("events_per_s"), bl["faust_bare_each"].get("events_per_s")
                result.setdefault("fractions", {}).update({
                    "drain_of_faust_bare_batch": drained / fb if fb else None,
                    "drain_of_faust_bare_each": drained / fe if fe else None,
                    "drain_of_kafka_python_consume": drained / bl["kafka_python"]["consume_msgs_per_s"],
                })
        sampler.stop()
        result["memory"] = sampler.report()
        result["data_dir"] = str(svc.data_dir) if args.keep else None

    _print(result)
    path = write_result("e2e" if workers == 1 else f"e2e-w{workers}", result, machine)
    print(f"result written to {path}")
    return result


def _print(r: dict[str, Any]) -> None:
    sat = r.get("saturation", {})
    rows: list[list[Any]] = [
        ["saturation: end to end (publish -> reconciled)", fmt_rate(sat.get("events_per_s")), "target 5,000/s"],
        ["saturation: steady (middle 80%)", fmt_rate(sat.get("steady_events_per_s")), ""],
        ["saturation: gate + log", fmt_rate(sat.get("gate_events_per_s")), ""],
        ["saturation: publish (kafka-python)", fmt_rate(sat.get("publish_rate")), ""],
    ]
    for k, v in (sat.get("cpu_ms_per_event") or {}).items():
        rows.append([f"CPU per event at saturation: {k}", f"{v:.3f} ms", ""])
    dr = r.get("drain") or {}
    if dr:
        rows += [
            ["drain (--preload): backlog drained", fmt_rate(dr.get("events_per_s")), "target 5,000/s"],
            ["drain: including start-up and group join", fmt_rate(dr.get("events_per_s_including_startup")),
             f"start-up {dr.get('startup_seconds') or 0:.1f} s"],
            ["drain: gate + log", fmt_rate(dr.get("gate_events_per_s")), ""],
            ["drain: flags found / expected", f"{dr.get('flags_found_transfers')} / {dr.get('flags_expected_transfers')}",
             ""],
        ]
        for k, v in (dr.get("cpu_ms_per_event") or {}).items():
            rows.append([f"CPU per event while draining: {k}", f"{v:.3f} ms", ""])
    for e in r.get("rates", []):
        for what in ("logged", "reconciled", "flag"):
            p = e[f"publication_to_{what}_ms"]
            tgt = "p99 < 2 s at 2,000/s" if what == "flag" else ""
            rows.append([f"{e['offered_per_s']:,.0f}/s offered: publication -> {what} p50/p95/p99",
                         f"{fmt_ms(p.get('p50'))} / {fmt_ms(p.get('p95'))} / {fmt_ms(p.get('p99'))}", tgt])
    bl = r.get("baselines", {})
    if bl:
        rows += [
            ["baseline: kafka-python produce", fmt_rate(bl["kafka_python"]["produce_msgs_per_s"]), ""],
            ["baseline: kafka-python consume", fmt_rate(bl["kafka_python"]["consume_msgs_per_s"]), ""],
            ["baseline: bare Faust agent (take_events)", fmt_rate(bl["faust_bare_batch"].get("events_per_s")), ""],
            ["baseline: bare Faust agent (per event)", fmt_rate(bl["faust_bare_each"].get("events_per_s")), ""],
            ["baseline: Ed25519 verify, one core", fmt_rate(bl["ed25519"]["one_core_per_s"]),
             f"{fmt_rate(bl['ed25519']['one_core_per_cpu_s'])} per CPU-second"],
            ["baseline: Ed25519 verify, two processes", fmt_rate(bl["ed25519"]["two_processes_per_s"]), ""],
            ["CPU: gate decision per event", f"{bl['cpu_microbench']['gate_decision_us_per_event']:.0f} µs", ""],
            ["CPU: transfer rules per event", f"{bl['cpu_microbench']['rules_us_per_event']:.0f} µs", ""],
        ]
    for k, v in (r.get("fractions") or {}).items():
        label = f"pipeline / {k[3:]}" if k.startswith("of_") else f"drain / {k[len('drain_of_'):]}"
        rows.append([label, "-" if v is None else f"{v:.1%}",
                     "target >= 50%" if k.endswith("of_faust_bare_batch") else ""])
    for name, m in (r.get("memory") or {}).items():
        rows.append([f"peak memory: {name}", f"RSS {fmt_bytes(m['peak_rss_bytes'])}",
                     f"PSS {fmt_bytes(m['peak_pss_bytes'])}" if m.get("peak_pss_bytes") else ""])
    profiles = [("processors", r.get("profile"))] if r.get("profile") else []
    profiles += [(f"drain process {k}", (r.get("drain") or {}).get("profile" if k == 0 else f"profile_{k}"))
                 for k in range(2)]
    for label, prof in profiles:
        for name, share in ((prof or {}).get("self") or [])[:15]:
            rows.append([f"{label} profile, self: {name}", f"{share:.1%}", "of CPU samples"])
        for name, share in ((prof or {}).get("inclusive") or [])[:25]:
            rows.append([f"{label} profile, inclusive: {name}", f"{share:.1%}", "of CPU samples"])
    print_table(f"e2e, {r['parameters']['events']:,} events, {r['parameters']['workers']} worker(s)",
                ["measure", "value", "target / note"], rows)
    for line in summary_lines(r):
        print(line)


def summary_lines(r: dict[str, Any]) -> list[str]:
    """The issue's three figures: drain rate, its fraction of the bare Faust agent, p99 to flag at 2,000/s."""
    out = []
    dr = (r.get("drain") or {}).get("events_per_s")
    sat = (r.get("saturation") or {}).get("events_per_s")
    if dr:
        out.append(f"TARGET drain: {dr:,.0f} events/s (target >= 5,000)")
    elif sat:
        out.append(f"TARGET saturation (no --preload): {sat:,.0f} events/s (target >= 5,000)")
    fr = r.get("fractions") or {}
    f = fr.get("drain_of_faust_bare_batch") if dr else fr.get("of_faust_bare_batch")
    if f:
        out.append(f"TARGET fraction of bare Faust (take_events), same run: {f:.1%} (target >= 50%)")
    for e in r.get("rates", []):
        p99 = e["publication_to_flag_ms"].get("p99")
        if p99 is not None:
            out.append(f"TARGET p99 publication -> flag at {e['offered_per_s']:,.0f}/s offered: {p99 / 1000:.2f} s"
                       f" (target <= 2 s at 2,000/s; {e['flags_found_transfers']}/{e['flags_expected_transfers']}"
                       " flags found)")
    return out
