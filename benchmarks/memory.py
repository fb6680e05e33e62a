"""Memory of the processors with a million open transfers, while events flow and deadlines fire.

    cuentas bench memory [--open-transfers 1000000] [--events 100000] [--sweep-seconds 60] [--quick]

Design claim (ADR 0002, ADR 0004): reconciled state, deadlines and the
event-time clock live in PostgreSQL; a processor holds only the batch it is
working on (at most ``BATCH_SIZE`` events, or 2,000 due entities per
deadline tick), so its memory must not grow with the number of open
transfers.  Measured here:

1. 1M open transfers (``transfer.sent`` without payout) are loaded
   server-side into ``entity_events``, ``transfers`` and ``deadlines``
   (due a day from now, so nothing fires yet);
2. one processors subprocess starts; its RSS is sampled every 0.5 s;
3. phase A: N more ``transfer.sent`` events (each a new open transfer) go
   through gate, log and reconciliation at saturation;
4. phase B: the event-time clock is pinned ten days ahead
   (``clock_override``), so every open transfer is overdue: the deadline
   timer re-evaluates them 2,000 per tick, raising ``late_payout`` and
   ``missing_payout`` flags (each a signed event appended to the log), for
   ``--sweep-seconds``.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from benchmarks.common import (
    RssSampler,
    Services,
    bench_settings,
    fmt_bytes,
    machine_info,
    print_table,
    write_result,
)
from benchmarks.e2e import Publisher, wait_reconciled
from benchmarks.platform import prepare, query, register_operator, start_processors, stop_processors
from benchmarks.workload import OPERATOR, presign
from infra.db import connect

__all__ = ["run", "load_open_transfers"]

_OPEN_SQL = [
    """INSERT INTO entity_events (kind, entity_id, event_id, event_type, event_time, log_index, payload)
    SELECT 'transfer', 'tr-o' || g, substr(md5('o' || g), 1, 26), 'transfer.sent', x.t, NULL,
        jsonb_build_object('transfer_id', 'tr-o' || g, 'operator', '{op}',
            'corridor', jsonb_build_object('from', 'US', 'to', 'MX'),
            'send', jsonb_build_object('amount', x.send, 'currency', 'USD'),
            'fee', jsonb_build_object('amount', x.send * 2 / 100, 'currency', 'USD'), 'exchange_rate', '17.25',
            'receive_promised', jsonb_build_object('amount', x.send * 17, 'currency', 'MXN'),
            'available_by', to_char((x.t + interval '3 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'destination', jsonb_build_object('kind', 'beneficiary', 'beneficiary', 'ben_' || substr(md5('b' || g), 1, 26)),
            'sender', 'snd_' || substr(md5('s' || (g % 5000)), 1, 26),
            'receipt_digest', encode(sha256(convert_to('o' || g, 'UTF8')), 'hex'), 'disclosed_cost_bps', 300)
    FROM generate_series({lo}::bigint, {hi}::bigint) g,
    LATERAL (SELECT date_trunc('second', now()) - interval '2 days' + g * interval '1 ms' AS t,
                    10000 + (g * 7919) % 90000 AS send) x""",
    """INSERT INTO transfers (transfer_id, status, operator, corridor_from, corridor_to, destination_kind, send_amount,
        send_currency, fee_amount, promised_amount, promised_currency, available_by, sent_at, disclosed_cost_bps,
        receipt_digest, sent_event_id, event_count, state)
    SELECT 'tr-o' || g, 'sent', '{op}', 'US', 'MX', 'beneficiary', x.send, 'USD', x.send * 2 / 100, x.send * 17, 'MXN',
        x.t + interval '3 days', x.t, 300, encode(sha256(convert_to('o' || g, 'UTF8')), 'hex'),
        substr(md5('o' || g), 1, 26), 1, jsonb_build_object('transfer_id', 'tr-o' || g, 'status', 'sent')
    FROM generate_series({lo}::bigint, {hi}::bigint) g,
    LATERAL (SELECT date_trunc('second', now()) - interval '2 days' + g * interval '1 ms' AS t,
                    10000 + (g * 7919) % 90000 AS send) x""",
    """INSERT INTO deadlines (kind, entity_id, due_at)
    SELECT 'transfer', 'tr-o' || g, date_trunc('second', now()) - interval '2 days' + g * interval '1 ms' + interval '3 days'
    FROM generate_series({lo}::bigint, {hi}::bigint) g""",
]


def load_open_transfers(url: str, schema: str, n: int, chunk: int = 250_000) -> float:
    t0 = time.perf_counter()
    errors: list[BaseException] = []

    def worker(sql: str) -> None:
        try:
            conn = connect(url, schema)
            with conn, conn.cursor() as cur:
                cur.execute("SET synchronous_commit = off")
                for lo in range(1, n + 1, chunk):
                    hi = min(n, lo + chunk - 1)
                    cur.execute(sql.replace("{lo}", str(lo)).replace("{hi}", str(hi)).replace("{op}", OPERATOR))
                    conn.commit()
            conn.close()
        except BaseException as e:  # reported after join
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(sql,)) for sql in _OPEN_SQL]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    conn = connect(url, schema)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE entity_events, transfers, deadlines")
    conn.close()
    return time.perf_counter() - t0


def _open_count(s: Any) -> int:
    return int(query(s, "SELECT count(*) FROM transfers WHERE status = 'sent'")[0][0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    n_open = int(args.open_transfers or (100_000 if quick else 1_000_000))
    n_events = int(args.events or (10_000 if quick else 100_000))
    sweep_s = float(args.sweep_seconds or (20 if quick else 60))
    machine = machine_info()
    result: dict[str, Any] = {"parameters": {"open_transfers": n_open, "events": n_events, "sweep_seconds": sweep_s,
                                             "quick": quick}}
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with Services(kafka=True, postgres=True, keep=bool(args.keep), base_dir=args.data_dir) as svc:
        s = bench_settings(svc.data_dir, svc.bootstrap, svc.database_url, REDRIVE_AFTER_S="600")
        print(f"data folder {svc.data_dir}; broker {svc.bootstrap}; postgres {svc.database_url}")
        prepare(s)
        result["load_open_transfers_s"] = load_open_transfers(s.database_url, s.database_schema, n_open)
        print(f"loaded {n_open:,} open transfers in {result['load_open_transfers_s']:.0f}s")
        op_key = Ed25519PrivateKey.generate()
        run_id = f"m{int(time.time()) % 100000:05d}"
        warm = presign(op_key, run_id, 0, 500, only_sent=True)
        msgs = presign(op_key, run_id, 500, n_events, only_sent=True)
        sampler = RssSampler(interval=0.5).start()
        for name, roots in svc.pids().items():
            sampler.watch(name, roots)
        procs = start_processors(s, 1)
        sampler.watch("processors", [p.pid for p in procs])
        marks: list[dict[str, Any]] = []

        def mark(label: str) -> None:
            cur = sampler.sample(pss=True, relist=True)
            marks.append({"label": label, "t": time.time(), "processors_rss_bytes": cur.get("processors", 0),
                          "postgres_rss_bytes": cur.get("postgres", 0), "open_transfers": _open_count(s)})
            print(f"{label}: processors RSS {fmt_bytes(cur.get('processors', 0))},"
                  f" open transfers {marks[-1]['open_transfers']:,}")

        try:
            register_operator(s, OPERATOR, op_key)
            pub = Publisher(s)
            pub.send(warm)
            if not wait_reconciled(s, warm, timeout=120):
                raise RuntimeError("warm-up events were not reconciled within 120s")
            time.sleep(2)
            mark("after start-up and warm-up")
            peak_before = sampler.peak_rss.get("processors", 0)
            # phase A: new open transfers through the pipeline
            t0 = time.time()
            pub.send(msgs)
            done = wait_reconciled(s, msgs, timeout=max(180.0, n_events / 200))
            result["phase_a"] = {"events": len(msgs), "completed": done, "seconds": time.time() - t0,
                                 "processors_peak_rss_bytes": sampler.peak_rss.get("processors", 0)}
            pub.close()
            mark(f"after {len(msgs):,} more transfer.sent events")
            # phase B: every open transfer overdue
            query(s, "INSERT INTO clock_override (id, now) VALUES (1, now() + interval '10 days')"
                     " ON CONFLICT (id) DO UPDATE SET now = EXCLUDED.now")
            due_sql = "SELECT count(*) FROM deadlines WHERE due_at <= (SELECT now FROM clock_override WHERE id = 1)"
            due0 = int(query(s, due_sql)[0][0])
            flags0 = int(query(s, "SELECT count(*) FROM flags")[0][0])
            t0 = time.time()
            sweep_series = []
            while time.time() - t0 < sweep_s:
                time.sleep(min(5.0, max(0.5, sweep_s - (time.time() - t0))))
                cur = sampler.sample()
                left = int(query(s, due_sql)[0][0])
                sweep_series.append({"t": time.time() - t0, "processors_rss_bytes": cur.get("processors", 0),
                                     "still_due": left})
            flags1 = int(query(s, "SELECT count(*) FROM flags")[0][0])
            due1 = sweep_series[-1]["still_due"] if sweep_series else due0
            result["phase_b"] = {"seconds": time.time() - t0, "deadlines_before": due0,
                                 "entities_re_evaluated": max(0, due0 - due1), "flags_raised": flags1 - flags0,
                                 "series": sweep_series,
                                 "processors_peak_rss_bytes": sampler.peak_rss.get("processors", 0)}
            mark("after the deadline sweep")
            result["peak_before_phases_bytes"] = peak_before
        finally:
            stop_processors(procs)
        sampler.stop()
        result["marks"] = marks
        result["memory"] = sampler.report()
        result["processors_rss_series"] = [(round(t, 1), r) for t, r in sampler.series.get("processors", [])][::4]
    _print(result)
    path = write_result("memory", result, machine)
    print(f"result written to {path}")
    return result


def _print(r: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    for m in r["marks"]:
        rows.append([m["label"], f"{m['open_transfers']:,}", fmt_bytes(m["processors_rss_bytes"])])
    a, b = r.get("phase_a", {}), r.get("phase_b", {})
    rows.append(["peak during phase A (events flowing)", "", fmt_bytes(a.get("processors_peak_rss_bytes"))])
    rows.append([f"peak during phase B ({b.get('entities_re_evaluated', 0):,} overdue transfers re-evaluated,"
                 f" {b.get('flags_raised', 0):,} flags)", "", fmt_bytes(b.get("processors_peak_rss_bytes"))])
    for name, m in r["memory"].items():
        rows.append([f"peak RSS / PSS: {name}", "", f"{fmt_bytes(m['peak_rss_bytes'])} / {fmt_bytes(m['peak_pss_bytes'])}"])
    print_table(f"memory with {r['parameters']['open_transfers']:,} open transfers (target < 1 GiB per processor)",
                ["moment", "open transfers", "processors RSS"], rows)
