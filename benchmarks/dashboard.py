"""The dashboard over a large database: 10 million transfers, 100,000 projects, 100,000 flags.

    cuentas bench dashboard [--transfers 10000000] [--projects 100000] [--flags 100000] [--samples 200] [--quick]

Loading: the reconciled tables are filled server-side with ``INSERT ...
SELECT FROM generate_series`` (no bytes cross the socket: faster than COPY
from Python here), the indexes of the migrations dropped during the load
and rebuilt after it, then ``VACUUM ANALYZE`` (what autovacuum would have
done on a live database).  Rows are realistic in shape and width (a trimmed
``state`` document of ~300 bytes); 1,000 sampled transfers get the
receipt digest of a real receipt code (``schemas.privacy``) so the track
page can find them.  ``log_entries`` is not filled (the pages read it only
for the registry's few events and a receipt's own entry).

Timed: the data functions of ``dashboard/data.py`` the pages call, through
their undecorated function (``__wrapped__``: no ``st.cache_data`` hit), as
the read-only ``cuentas_reader`` role on a fresh connection each call like
the pages; then, with ``streamlit.testing.v1.AppTest``, each page's full
server-side script run with the data caches cleared (cold) and again
(warm).  Targets: page < 1.5 s, receipt lookup < 200 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT,
    Services,
    fmt_ms,
    machine_info,
    percentiles,
    print_table,
    write_result,
)
from benchmarks.workload import SECRET
from infra.db import connect, migrate
from schemas.flag_workflow import OPEN_STATUSES

__all__ = ["run", "load"]

SCHEMA = "cuentas"
APP = ROOT / "dashboard" / "app.py"

_TRANSFERS_SQL = """
INSERT INTO transfers (transfer_id, status, operator, corridor_from, corridor_to, destination_kind, project_id,
    send_amount, send_currency, fee_amount, promised_amount, promised_currency, paid_amount, payout_count,
    available_by, sent_at, first_paid_at, delivery_seconds, disclosed_cost_bps, effective_cost_bps,
    receipt_digest, sent_event_id, sent_log_index, event_count, state, updated_at)
SELECT 'tr-' || g, x.status, 'op.operador-' || (g % 20), 'US', x.cto, x.dkind, x.pid,
    x.send, 'USD', x.send * 2 / 100, x.send * 17, x.ccy, CASE WHEN x.status = 'sent' THEN 0 ELSE x.send * 17 END,
    CASE WHEN x.status = 'sent' THEN 0 ELSE 1 END,
    x.sent_at + interval '1 day', x.sent_at,
    CASE WHEN x.status = 'sent' THEN NULL ELSE x.sent_at + make_interval(secs => g % 7200) END,
    CASE WHEN x.status = 'sent' THEN NULL ELSE g % 7200 END, 300 + g % 200, 300 + g % 230,
    encode(sha256(convert_to('r' || g, 'UTF8')), 'hex'), substr(md5(g::text), 1, 26), 2 * g,
    CASE WHEN x.status = 'sent' THEN 1 ELSE 2 END,
    jsonb_build_object('transfer_id', 'tr-' || g, 'status', x.status, 'operator', 'op.operador-' || (g % 20),
        'exchange_rate', '17.00', 'fee_currency', 'USD', 'promised_currency', x.ccy,
        'other_currency_payouts', '[]'::jsonb, 'ignored_event_ids', '[]'::jsonb, 'cancelled_at', NULL,
        'cancel_reason', NULL, 'refunded_at', NULL, 'refunded_amount', NULL, 'club_id', NULL,
        'last_paid_at', x.sent_at + make_interval(secs => g % 7200), 'sent_event_id', substr(md5(g::text), 1, 26)),
    x.sent_at + make_interval(secs => g % 7200)
FROM generate_series({lo}::bigint, {hi}::bigint) AS g,
LATERAL (SELECT
    CASE WHEN g % 40 = 0 THEN 'sent' WHEN g % 500 = 1 THEN 'refunded' ELSE 'paid' END AS status,
    (ARRAY['MX', 'GT', 'HN', 'SV', 'DO', 'CO'])[1 + (g % 6)::int] AS cto,
    (ARRAY['MXN', 'GTQ', 'HNL', 'USD', 'DOP', 'COP'])[1 + (g % 6)::int] AS ccy,
    CASE WHEN g % 100 = 7 THEN 'project_fund' ELSE 'beneficiary' END AS dkind,
    CASE WHEN g % 100 = 7 THEN 'mx-proj-' || (g / 100 % {projects}) END AS pid,
    10000 + (g * 7919) % 90000 AS send,
    now() - interval '365 days' + g * (interval '365 days' / {n}) AS sent_at) AS x
"""

_OTHER_SQL = [
    # projects, their parties, milestones and club contributions
    """INSERT INTO projects (project_id, status, club_id, federation_id, country, state_code, municipality, project_type,
        currency, budget, club_received, disbursed, spent, funds_received, open_flags, state, updated_at)
    SELECT 'mx-proj-' || g, CASE WHEN g % 20 = 0 THEN 'completed' ELSE 'registered' END, 'club.c' || (g % 5000),
        'fed.f' || (g % 40), 'MX', 'MX-S' || lpad((g % 32)::text, 2, '0'), 'mun-' || (g % 2400),
        (ARRAY['water_sanitation', 'roads', 'schools', 'health', 'churches', 'sports', 'electricity', 'productive'])[1 + (g % 8)::int],
        'MXN', 1000000 + (g * 7919) % 90000000, (1000000 + (g * 7919) % 90000000) / 4,
        (1000000 + (g * 7919) % 90000000) / 2, (1000000 + (g * 7919) % 90000000) / 3,
        (1000000 + (g * 7919) % 90000000) * 3 / 4, CASE WHEN g % 10 = 0 THEN 1 + g % 3 ELSE 0 END,
        jsonb_build_object('project_id', 'mx-proj-' || g, 'milestones', 2), now()
    FROM generate_series(0, {projects} - 1) g""",
    """INSERT INTO project_parties (project_id, level, party_id, share_bps, owed, pledged, disbursed, latest_due, status)
    SELECT p.project_id, l.level, 'gov.' || l.level || '-' || (hashtext(p.project_id) & 1023), 2500, p.budget / 4,
        CASE WHEN hashtext(p.project_id) % 7 = 0 THEN 0 ELSE p.budget / 4 END,
        CASE WHEN hashtext(p.project_id) % 5 = 0 THEN 0 ELSE p.budget / 4 END, now() - interval '30 days',
        CASE WHEN hashtext(p.project_id) % 5 = 0 THEN 'unpaid' ELSE 'paid_in_full' END
    FROM projects p CROSS JOIN (VALUES ('federal'), ('state'), ('municipal')) AS l(level)""",
    """INSERT INTO milestones (project_id, milestone_id, planned, due, amount, reported_at, spent, progress_pct,
        evidence, verified_at, outcome, status)
    SELECT p.project_id, 'ms-' || k, true, now() + (k * 60 - 90) * interval '1 day', p.budget / 2,
        CASE WHEN k = 1 THEN now() - interval '80 days' END, CASE WHEN k = 1 THEN p.spent ELSE 0 END,
        CASE WHEN k = 1 THEN 60 END, '[]'::jsonb, NULL, NULL, CASE WHEN k = 1 THEN 'reported' ELSE 'pending' END
    FROM projects p CROSS JOIN generate_series(1, 2) k""",
    """INSERT INTO project_contributions (project_id, transfer_id, club_id, amount, currency, received_at, evidence, version)
    SELECT p.project_id, 'tr-c' || p.project_id, p.club_id, p.club_received, 'MXN', now() - interval '100 days',
        '[]'::jsonb, 2 FROM projects p""",
    # flags: 90% about transfers, 10% about projects; history n = 1
    """INSERT INTO flags (flag_id, flag_type, key, subject_kind, subject_id, accountable, severity, amount_at_stake,
        currency, status, auto_status, raised_at, resolved_at, evidence, detail, history_len, created_at, updated_at)
    SELECT 'flg_' || substr(md5('f' || g), 1, 26),
        CASE WHEN g % 10 = 0 THEN (ARRAY['share_unpaid', 'no_milestone', 'unverified_spending'])[1 + (g / 10 % 3)::int]
             ELSE (ARRAY['short_payout', 'late_payout', 'missing_payout', 'cost_above_disclosed', 'cost_above_ceiling',
                         'paid_twice', 'payout_currency_mismatch'])[1 + (g % 7)::int] END,
        '', CASE WHEN g % 10 = 0 THEN 'project' ELSE 'transfer' END,
        CASE WHEN g % 10 = 0 THEN 'mx-proj-' || (g % {projects}) ELSE 'tr-' || (1 + (g * 7919) % {n}) END,
        CASE WHEN g % 10 = 0 THEN 'gov.municipal-' || (g % 1024) ELSE 'op.operador-' || (g % 20) END,
        (ARRAY['low', 'medium', 'high', 'critical'])[1 + (g % 4)::int], 100 + (g * 7919) % 5000000, 'MXN',
        CASE WHEN g % 10 < 7 THEN 'open' WHEN g % 10 = 7 THEN 'acknowledged' ELSE 'resolved' END,
        CASE WHEN g % 10 < 8 THEN 'open' ELSE 'resolved' END, now() - (g % 365) * interval '1 day',
        CASE WHEN g % 10 >= 8 THEN now() - (g % 100) * interval '1 day' END,
        jsonb_build_array(jsonb_build_object('event_id', substr(md5(g::text), 1, 26), 'log_index', g)),
        jsonb_build_object('promised', 100000, 'paid', 90000), 1, now(), now()
    FROM generate_series(1, {flags}) g""",
    """INSERT INTO flag_history (flag_id, n, status, previous_status, actor, reason_code, changed_at, event_id, log_index)
    SELECT flag_id, 1, 'open', NULL, 'system', 'auto_detected', raised_at, substr(md5(flag_id), 1, 26), NULL FROM flags""",
    """INSERT INTO summary_flags (flag_type, status, currency, n, amount)
    SELECT flag_type, status, coalesce(currency, ''), count(*), coalesce(sum(amount_at_stake), 0) FROM flags GROUP BY 1, 2, 3""",
    # two years of daily corridor summaries: 730 days x 6 corridors x 20 operators
    """INSERT INTO summary_corridor_day (day, corridor_from, corridor_to, operator, currency, transfers,
        sent_amount, fee_amount, cost_bps_sum, paid, paid_within_1h, paid_within_1d, to_projects)
    SELECT (now() - d * interval '1 day')::date, 'US', (ARRAY['MX', 'GT', 'HN', 'SV', 'DO', 'CO'])[1 + c],
        'op.operador-' || o, 'USD', t, t * 55000, t * 1100, t * 350, t - t / 40, t * 3 / 4, t - t / 40, t / 100
    FROM generate_series(0, 729) d, generate_series(0, 5) c, generate_series(0, 19) o,
        LATERAL (SELECT ({n} / 43800 + (d + c + o) % 7)::bigint AS t) x""",
    """INSERT INTO publisher_sequences (publisher_id, max_seq, accepted, last_event_time, last_accepted_at)
    SELECT 'op.operador-' || o, {n} / 10, {n} / 10, now(), now() FROM generate_series(0, 19) o""",
    """INSERT INTO quarantine (raw_sha256, event_id, publisher_id, event_type, reason, message, raw, source, deliveries,
        received_at, public_path, public_event_type, public_publisher)
    SELECT sha256(convert_to('q' || g, 'UTF8')), substr(md5('q' || g), 1, 26), 'op.operador-' || (g % 20),
        'transfer.sent', (ARRAY['schema', 'bad_signature', 'time_out_of_range', 'unknown_key'])[1 + (g % 4)::int],
        'payload/send/amount: -1 is less than the minimum of 1', convert_to('{}', 'UTF8'), 'publish.transfers/0/' || g,
        1, now() - (g % 30) * interval '1 day', '/payload/send/amount', 'transfer.sent', 'op.operador-' || (g % 20)
    FROM generate_series(1, 10000) g""",
]


def _exec(url: str, sql: str, params: dict[str, Any]) -> None:
    conn = connect(url, SCHEMA)
    try:
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("SET work_mem = '256MB'")
            for k, v in params.items():  # integers only: no quoting needed, and % stays an operator
                sql = sql.replace("{" + k + "}", str(int(v)))
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


def load(url: str, n: int, projects: int, flags: int, chunk: int = 1_000_000) -> dict[str, Any]:
    """Fill the reconciled tables; return timings."""
    t: dict[str, Any] = {}
    conn = connect(url, SCHEMA)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
        cur.execute("SELECT pg_reload_conf()")
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 'transfers'"
                    " AND indexname <> 'transfers_pkey'", (SCHEMA,))
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("ALTER TABLE transfers DROP CONSTRAINT transfers_pkey")
    t0 = time.perf_counter()
    params = {"n": n, "projects": projects, "flags": flags}
    ranges = [(lo, min(n, lo + chunk - 1)) for lo in range(1, n + 1, chunk)]
    errors: list[BaseException] = []

    def worker(parts: list[tuple[int, int]]) -> None:
        try:
            for lo, hi in parts:
                _exec(url, _TRANSFERS_SQL, {**params, "lo": lo, "hi": hi})
        except BaseException as e:  # reported after join
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(ranges[k::2],)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    t["transfers_insert_s"] = time.perf_counter() - t0
    print(f"inserted {n:,} transfers in {t['transfers_insert_s']:.0f}s")
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        cur.execute("ALTER TABLE transfers ADD PRIMARY KEY (transfer_id)")
        for _, ddl in indexes:
            cur.execute(ddl)
    t["transfers_indexes_s"] = time.perf_counter() - t0
    print(f"rebuilt the transfers indexes in {t['transfers_indexes_s']:.0f}s")
    t0 = time.perf_counter()
    for sql in _OTHER_SQL:
        _exec(url, sql, params)
    t["other_tables_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
        cur.execute("SELECT pg_total_relation_size('transfers'), pg_relation_size('transfers'),"
                    " pg_indexes_size('transfers'), pg_database_size(current_database())")
        row = cur.fetchone()
        assert row is not None
        t["transfers_total_bytes"], t["transfers_heap_bytes"], t["transfers_index_bytes"], t["database_bytes"] = row
    t["vacuum_analyze_s"] = time.perf_counter() - t0
    conn.close()
    return t


def real_receipts(url: str, n: int, k: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """Give ``k`` sampled transfers the digest of a real receipt code; return (transfer_id, code, digest)."""
    from psycopg2.extras import execute_values

    from schemas.privacy import receipt_code, receipt_digest

    rng = random.Random(seed)
    out = []
    for g in rng.sample(range(1, n + 1), min(k, n)):
        tid = f"tr-{g}"
        code = receipt_code(SECRET, tid)
        out.append((tid, code, receipt_digest(code)))
    conn = connect(url, SCHEMA)
    with conn, conn.cursor() as cur:
        execute_values(cur, "UPDATE transfers t SET receipt_digest = v.d FROM (VALUES %s) AS v(id, d)"
                            " WHERE t.transfer_id = v.id", [(tid, d) for tid, _, d in out])
    conn.close()
    return out


def _time(fn: Callable[[], Any], samples: int) -> dict[str, float]:
    lat = []
    for _ in range(samples):
        t0 = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t0) * 1000)
    return percentiles(lat)


def time_queries(reader: str, receipts: list[tuple[str, str, str]], samples: int, n: int) -> dict[str, Any]:
    from dashboard import data

    def raw(f: Any) -> Any:
        return getattr(f, "__wrapped__", f)

    rng = random.Random(3)
    out: dict[str, Any] = {}
    heavy = max(5, samples // 5)

    it = iter(receipts * (1 + samples // max(1, len(receipts))))
    out["receipt_lookup: transfer_by_digest"] = _time(lambda: raw(data.transfer_by_digest)(reader, SCHEMA, next(it)[2]),
                                                      samples)
    miss = iter(range(samples))
    out["receipt_lookup_not_found"] = _time(
        lambda: raw(data.transfer_by_digest)(reader, SCHEMA, f"{next(miss):064x}"), samples)
    out["transfer_flags"] = _time(lambda: raw(data.transfer_flags)(reader, SCHEMA, f"tr-{rng.randrange(1, n + 1)}"),
                                  samples)
    def overview(days: int) -> Callable[[], Any]:
        return lambda: raw(data.overview)(reader, SCHEMA, days)

    for days in (30, 365, 0):
        out[f"overview(period={days or 'all'})"] = _time(overview(days), heavy)
    out["flag_queue(open+acknowledged)"] = _time(
        lambda: raw(data.flag_queue)(reader, SCHEMA, OPEN_STATUSES, (), None), samples)
    out["flag_queue(one type, one accountable)"] = _time(
        lambda: raw(data.flag_queue)(reader, SCHEMA, OPEN_STATUSES, ("short_payout",),
                                     f"op.operador-{rng.randrange(20)}"), samples)
    out["flag_detail"] = _time(lambda: raw(data.flag_detail)(reader, SCHEMA, "flg_" + _md5(f"f{rng.randrange(1, 1000)}")),
                               samples)
    out["accountables"] = _time(lambda: raw(data.accountables)(reader, SCHEMA), heavy)
    out["project_filters"] = _time(lambda: raw(data.project_filters)(reader, SCHEMA), heavy)
    out["projects(no filter)"] = _time(
        lambda: raw(data.projects)(reader, SCHEMA, None, None, None, None, None, False), samples)
    out["projects(state + type)"] = _time(
        lambda: raw(data.projects)(reader, SCHEMA, f"MX-S{rng.randrange(32):02d}", None, "water_sanitation", None,
                                   None, False), samples)
    out["projects(flagged only)"] = _time(
        lambda: raw(data.projects)(reader, SCHEMA, None, None, None, None, None, True), samples)
    out["project_detail"] = _time(
        lambda: raw(data.project_detail)(reader, SCHEMA, f"mx-proj-{rng.randrange(100)}"), samples)
    out["publishers"] = _time(lambda: raw(data.publishers)(reader, SCHEMA), heavy)
    out["publisher_rejections"] = _time(
        lambda: raw(data.publisher_rejections)(reader, SCHEMA, f"op.operador-{rng.randrange(20)}"), samples)
    out["checkpoints"] = _time(lambda: raw(data.checkpoints)(reader, SCHEMA), heavy)
    return out


def _md5(s: str) -> str:
    import hashlib

    return hashlib.md5(s.encode()).hexdigest()[:26]


def time_pages(svc: Services, receipts: list[tuple[str, str, str]], reps: int) -> dict[str, Any]:
    """Each page's full script run with AppTest: cold (data caches cleared) and warm."""
    from streamlit.testing.v1 import AppTest

    from dashboard import data

    app_dir = svc.data_dir / "app"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "empty.toml").touch()
    saved = dict(os.environ)
    os.environ.update({"DATABASE_URL": svc.database_url, "DATABASE_SCHEMA": SCHEMA, "CUENTAS_DATA_DIR": str(app_dir),
                       "KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "CUENTAS_CONFIG": str(app_dir / "empty.toml")})
    os.environ.pop("DASHBOARD_DATABASE_URL", None)
    out: dict[str, Any] = {}
    try:
        from dashboard import ui

        # Page files as the app names them (relative to app.py); overview is the default page.
        pages: dict[str, str] = dict(getattr(ui, "PAGES", {}))
        for name, page in pages.items():
            cold: list[float] = []
            warm: list[float] = []
            errors: list[str] = []
            warnings: list[str] = []
            for r in range(reps):
                at = AppTest.from_file(str(APP), default_timeout=120)
                at.query_params["lang"] = "es"
                if name == "track":
                    at.query_params["code"] = receipts[r % len(receipts)][1]
                data.clear_all()
                t0 = time.perf_counter()
                if name == "overview":
                    at.run()
                else:
                    at.switch_page(page)
                    at.run()
                cold.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                at.run()
                warm.append((time.perf_counter() - t0) * 1000)
                errors += [str(e.value)[:200] for e in at.exception]
                errors += [str(e.value)[:200] for e in at.error]
                warnings += [str(e.value)[:200] for e in at.warning]
            # The track page must have found the transfer (no "not found" warning).
            out[name] = {"file": page, "cold_ms": percentiles(cold), "warm_ms": percentiles(warm),
                         "errors": sorted(set(errors)), "warnings": sorted(set(warnings))}
            print(f"{name}: cold p50 {out[name]['cold_ms']['p50']:.0f} ms, warm p50 {out[name]['warm_ms']['p50']:.0f} ms")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    n = int(args.transfers or (200_000 if quick else 10_000_000))
    projects = int(args.projects or (10_000 if quick else 100_000))
    flags = int(args.flags or (10_000 if quick else 100_000))
    samples = int(args.samples or (50 if quick else 200))
    machine = machine_info()
    result: dict[str, Any] = {"parameters": {"transfers": n, "projects": projects, "flags": flags, "samples": samples,
                                             "quick": quick}}
    with Services(kafka=False, postgres=True, keep=bool(args.keep), base_dir=args.data_dir) as svc:
        from infra.db import reader_url
        from infra.settings import load_settings

        url = svc.database_url
        print(f"data folder {svc.data_dir}; postgres {url}")
        migrate(url, SCHEMA)
        t0 = time.perf_counter()
        result["load"] = load(url, n, projects, flags)
        result["load"]["total_s"] = time.perf_counter() - t0
        receipts = real_receipts(url, n, 1000)
        config = Path(svc.data_dir) / "empty.toml"
        config.touch()
        reader = reader_url(load_settings({}, config_file=str(config)), url)
        result["queries_ms"] = time_queries(reader, receipts, samples, n)
        if not args.no_pages:
            result["pages_ms"] = time_pages(svc, receipts, reps=3 if quick else 5)
    _print(result)
    path = write_result("dashboard", result, machine)
    print(f"result written to {path}")
    return result


def _print(r: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    ld = r["load"]
    rows.append(["load (transfers insert / indexes / other tables / vacuum)",
                 f"{ld['transfers_insert_s']:.0f} / {ld['transfers_indexes_s']:.0f} / {ld['other_tables_s']:.0f}"
                 f" / {ld['vacuum_analyze_s']:.0f} s", f"database {ld['database_bytes'] / (1 << 30):.1f} GiB", ""])
    for name, q in r["queries_ms"].items():
        tgt = "< 200 ms" if name.startswith("receipt_lookup") else ""
        rows.append([f"query {name}", f"{fmt_ms(q['p50'])} / {fmt_ms(q['p99'])}", f"n={q['n']}", tgt])
    for page, p in (r.get("pages_ms") or {}).items():
        rows.append([f"page {page}: cold / warm (p50)", f"{fmt_ms(p['cold_ms']['p50'])} / {fmt_ms(p['warm_ms']['p50'])}",
                     f"cold max {fmt_ms(p['cold_ms']['max'])}" + (f"; {len(p['errors'])} error(s)" if p["errors"] else ""),
                     "< 1.5 s"])
    print_table(f"dashboard over {r['parameters']['transfers']:,} transfers", ["measure", "p50 / p99", "detail", "target"],
                rows)
