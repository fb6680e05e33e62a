"""The audit log in PostgreSQL: append rate through the one writer, proof latency at 1M and 10M leaves.

    cuentas bench log [--sizes 1000000,10000000] [--proofs 2000] [--append-leaves 200000] [--quick]

1. Append: ``infra.log_store.append`` (the real writer: ``SELECT
   ... FOR UPDATE`` on ``log_state``, leaves into ``log_entries``, tiles grown
   with ``data || new``, new root and frontier) in batches of 1,000 and
   2,000 leaves of ~600 bytes, one commit per batch, on a fresh log and
   again on top of the 10M-leaf tree.
2. Proofs: inclusion and consistency proofs through
   ``infra.log_store.inclusion/consistency`` (one SELECT of the
   tiles each, then the pure core's hashing) at each size, with a sample
   verified against the root by ``schemas.merkle.verify_inclusion`` /
   ``verify_consistency``.

Shortcut to reach 10 million leaves in minutes: the tree is NOT built
through ``append`` (that would take over half an hour at the measured
append rate).  Leaf hashes of synthetic leaves (``b"bench-leaf-<i>"``) are
computed with hashlib, the tiles with the pure core
(``schemas.merkle.append_leaf_hashes`` + ``schemas.tiles.tile_updates``,
the very functions the writer uses), streamed into ``log_tiles`` with COPY,
and ``log_state`` (size, root, frontier) is set to match.  ``log_entries``
stays empty for that tree: proofs read only tiles.  The root recomputed from
the stored tiles (``log_store.root_at``) is checked against the frontier's.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import (
    Services,
    fmt_ms,
    fmt_rate,
    machine_info,
    percentiles,
    print_table,
    write_result,
)
from infra import log_store
from infra.db import connect, migrate
from schemas.merkle import (
    append_leaf_hashes,
    frontier_root,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from schemas.tiles import TILE_WIDTH, tile_updates

__all__ = ["run", "TileBuilder"]

_TILE_BYTES = TILE_WIDTH * 32


def _leaf_data(i: int) -> bytes:
    return b"bench-leaf-%d" % i


class TileBuilder:
    """Builds a log's tiles for synthetic leaves with the pure core and COPYs them into ``log_tiles``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.size = 0
        self.frontier: list[bytes] = []
        self.pending: dict[tuple[int, int], bytes] = {}  # whole content of tiles not yet complete
        self.partial_written: set[tuple[int, int]] = set()
        self.tiles_written = 0
        self.bytes_written = 0

    def grow(self, target: int, chunk: int = 1 << 20) -> None:
        sha = hashlib.sha256
        while self.size < target:
            n = min(chunk, target - self.size)
            hashes = [sha(b"\x00" + _leaf_data(i)).digest() for i in range(self.size, self.size + n)]
            self.frontier, nodes = append_leaf_hashes(self.frontier, self.size, hashes)
            del hashes
            complete: list[tuple[int, int, bytes]] = []
            for key, data in tile_updates(nodes).items():
                whole = self.pending.pop(key, b"") + data
                if len(whole) == _TILE_BYTES:
                    complete.append((key[0], key[1], whole))
                else:
                    self.pending[key] = whole
            del nodes
            self._copy([t for t in complete if (t[0], t[1]) not in self.partial_written])
            self._upsert([t for t in complete if (t[0], t[1]) in self.partial_written])
            self.partial_written -= {(lv, ix) for lv, ix, _ in complete}
            self.size += n
        # Partial right-edge tiles exist at every size: store them whole (they grow later).
        self._upsert([(lv, ix, d) for (lv, ix), d in sorted(self.pending.items())])
        self.partial_written |= set(self.pending)
        with self.conn.cursor() as cur:
            cur.execute("UPDATE log_state SET size = %s, root = %s, frontier = %s, updated_at = now() WHERE id = 1",
                        (self.size, frontier_root(self.frontier), b"".join(self.frontier)))
        self.conn.commit()

    def _copy(self, tiles: list[tuple[int, int, bytes]]) -> None:
        if not tiles:
            return
        buf = io.StringIO()
        for lv, ix, data in tiles:
            buf.write(f"{lv}\t{ix}\t\\\\x{data.hex()}\n")
        buf.seek(0)
        with self.conn.cursor() as cur:
            cur.copy_expert("COPY log_tiles (level, idx, data) FROM STDIN", buf)
        self.conn.commit()
        self.tiles_written += len(tiles)
        self.bytes_written += sum(len(d) for _, _, d in tiles)

    def _upsert(self, tiles: list[tuple[int, int, bytes]]) -> None:
        if not tiles:
            return
        from psycopg2.extras import execute_values

        with self.conn.cursor() as cur:
            execute_values(cur, "INSERT INTO log_tiles (level, idx, data) VALUES %s"
                                " ON CONFLICT (level, idx) DO UPDATE SET data = EXCLUDED.data", tiles)
        self.conn.commit()
        self.tiles_written += len(tiles)


def _leaves(first: int, n: int) -> list[log_store.NewLeaf]:
    now = datetime.now(UTC)
    pad = "x" * 420
    out = []
    for i in range(first, first + n):
        eid = f"{i:026d}"
        sig = "A" * 86 + "=="
        leaf = ('{"header":{"event_id":"' + eid + '","event_time":"2026-11-01T12:00:00Z","key_id":"4ff41689",'
                '"publisher_id":"op.bench-norte","schema_version":1,"seq":' + str(i) + ',"type":"transfer.sent"},'
                '"payload":{"pad":"' + pad + '"},"signature":"' + sig + '"}').encode()
        out.append(log_store.NewLeaf(eid, "transfer.sent", "op.bench-norte", i, now, leaf))
    return out


def append_bench(url: str, schema: str, total: int, batch: int, first: int) -> dict[str, Any]:
    leaves = _leaves(first, total)
    conn = connect(url, schema)
    lat: list[float] = []
    c0 = time.process_time()
    t0 = time.perf_counter()
    try:
        for k in range(0, total, batch):
            b0 = time.perf_counter()
            with conn.cursor() as cur:
                log_store.append(cur, leaves[k:k + batch])
            conn.commit()
            lat.append((time.perf_counter() - b0) * 1000)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        with conn.cursor() as cur:
            size, root, _ = log_store.current_state(cur)
            ok = log_store.root_at(cur, size) == root
        conn.rollback()
    finally:
        conn.close()
    return {"batch": batch, "leaves": total, "leaf_bytes": sum(len(x.leaf) for x in leaves) // len(leaves),
            "seconds": wall, "leaves_per_s": total / wall, "python_cpu_s": cpu,
            "python_cpu_us_per_leaf": cpu / total * 1e6, "batch_commit_ms": percentiles(lat),
            "log_size_after": size, "root_matches_tiles": ok}


def proof_bench(url: str, schema: str, size: int, proofs: int, verify: int) -> dict[str, Any]:
    rng = random.Random(size)
    conn = connect(url, schema)
    conn.set_session(readonly=True, autocommit=True)
    try:
        with conn.cursor() as cur:
            st_size, root, _ = log_store.current_state(cur)
            assert st_size == size, (st_size, size)
            root_ok = log_store.root_at(cur, size) == root
            incl: list[float] = []
            checked = 0
            for k in range(proofs):
                idx = rng.randrange(size)
                t0 = time.perf_counter()
                proof = log_store.inclusion(cur, idx, size)
                incl.append((time.perf_counter() - t0) * 1000)
                if k < verify:
                    verify_inclusion(leaf_hash(_leaf_data(idx)), idx, size, proof, root)
                    checked += 1
            cons: list[float] = []
            cchecked = 0
            for k in range(proofs):
                old = rng.randrange(1, size)
                t0 = time.perf_counter()
                proof = log_store.consistency(cur, old, size)
                cons.append((time.perf_counter() - t0) * 1000)
                if k < verify // 4:
                    verify_consistency(old, size, proof, log_store.root_at(cur, old), root)
                    cchecked += 1
            cur.execute("SELECT count(*), coalesce(sum(length(data)), 0), pg_total_relation_size('log_tiles')"
                        " FROM log_tiles")
            row = cur.fetchone()
            assert row is not None
            ntiles, tile_bytes, rel = (int(x) for x in row)
    finally:
        conn.close()
    return {"size": size, "inclusion_ms": percentiles(incl), "consistency_ms": percentiles(cons),
            "inclusion_verified": checked, "consistency_verified": cchecked, "root_matches_tiles": root_ok,
            "tiles": int(ntiles), "tile_bytes": int(tile_bytes), "log_tiles_relation_bytes": rel}


def run(args: argparse.Namespace) -> dict[str, Any]:
    quick = bool(args.quick)
    sizes = [int(x) for x in (args.sizes or ("100000,1000000" if quick else "1000000,10000000")).split(",") if x]
    proofs = int(args.proofs or (300 if quick else 2000))
    n_append = int(args.append_leaves or (20_000 if quick else 200_000))
    machine = machine_info()
    result: dict[str, Any] = {"parameters": {"sizes": sizes, "proofs": proofs, "append_leaves": n_append,
                                             "quick": quick}}
    with Services(kafka=False, postgres=True, keep=bool(args.keep), base_dir=args.data_dir) as svc:
        url = svc.database_url
        print(f"data folder {svc.data_dir}; postgres {url}")
        # 1. appends on a fresh log
        migrate(url, "logfresh")
        result["append_fresh"] = []
        first = 0
        for batch in (1000, 2000):
            r = append_bench(url, "logfresh", n_append, batch, first)
            first += n_append
            result["append_fresh"].append(r)
            print(f"append, batches of {batch}: {r['leaves_per_s']:,.0f} leaves/s")
        # 2. a big tree from tiles (COPY), proofs at each size
        migrate(url, "logbig")
        conn = connect(url, "logbig")
        builder = TileBuilder(conn)
        result["proofs"] = []
        result["build"] = []
        try:
            for size in sorted(sizes):
                t0, c0 = time.perf_counter(), time.process_time()
                builder.grow(size)
                build = {"size": size, "seconds": time.perf_counter() - t0, "python_cpu_s": time.process_time() - c0,
                         "tiles_written_total": builder.tiles_written}
                result["build"].append(build)
                print(f"built {size:,} leaves of tiles in {build['seconds']:.1f}s")
                with conn.cursor() as cur:
                    cur.execute("ANALYZE log_tiles")
                conn.commit()
                p = proof_bench(url, "logbig", size, proofs, verify=min(proofs, 400))
                result["proofs"].append(p)
                print(f"{size:,} leaves: inclusion p99 {p['inclusion_ms']['p99']:.2f} ms,"
                      f" consistency p99 {p['consistency_ms']['p99']:.2f} ms")
        finally:
            conn.close()
        # 3. appends on top of the big tree
        r = append_bench(url, "logbig", max(n_append // 2, 2000), 2000, 10**9)
        result["append_on_big_tree"] = r
        print(f"append at {sizes[-1]:,} leaves, batches of 2000: {r['leaves_per_s']:,.0f} leaves/s")
    _print(result)
    path = write_result("log", result, machine)
    print(f"result written to {path}")
    return result


def _print(r: dict[str, Any]) -> None:
    rows: list[list[Any]] = []
    for a in r["append_fresh"]:
        rows.append([f"append, fresh log, batches of {a['batch']:,}", fmt_rate(a["leaves_per_s"]),
                     f"commit p50 {fmt_ms(a['batch_commit_ms']['p50'])}, p99 {fmt_ms(a['batch_commit_ms']['p99'])}",
                     "target >= 5,000/s"])
    a = r["append_on_big_tree"]
    rows.append([f"append on the {r['proofs'][-1]['size']:,}-leaf tree, batches of {a['batch']:,}",
                 fmt_rate(a["leaves_per_s"]),
                 f"commit p50 {fmt_ms(a['batch_commit_ms']['p50'])}, p99 {fmt_ms(a['batch_commit_ms']['p99'])}", ""])
    for b in r["build"]:
        rows.append([f"build {b['size']:,} leaves of tiles (COPY shortcut)", f"{b['seconds']:.0f} s", "", ""])
    for p in r["proofs"]:
        for kind in ("inclusion", "consistency"):
            q = p[f"{kind}_ms"]
            rows.append([f"{kind} proof at {p['size']:,} leaves (p50/p95/p99)",
                         f"{fmt_ms(q['p50'])} / {fmt_ms(q['p95'])} / {fmt_ms(q['p99'])}",
                         f"{q['n']:,} proofs, {p[f'{kind}_verified']} verified",
                         "target p99 < 20 ms at 10M"])
    print_table("log: append and proofs", ["measure", "value", "detail", "target"], rows)

