"""`cuentas up` on embedded defaults: starts, answers, and leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from infra.procs import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(
        CUENTAS_DATA_DIR=str(tmp_path / "data"),
        EMBEDDED_KAFKA_PORT=str(free_port()),
        EMBEDDED_POSTGRES_PORT=str(free_port()),
        DASHBOARD_PORT=str(free_port()),
        RECEIPT_CHECK_PORT=str(free_port()),
        KAFKA_SESSION_TIMEOUT_S="6", KAFKA_REBALANCE_TIMEOUT_S="6", KAFKA_HEARTBEAT_S="1",
    )
    env.update(extra)
    return env


def _cmd(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # gone, or a zombie not yet reaped
        return ""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_up_then_sigint_leaves_no_process(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cuentas", "up"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    port = int(env["DASHBOARD_PORT"])
    seen: list[psutil.Process] = []
    try:
        # Generous: this test is about leaving no process behind, not about
        # start-up speed; under a loaded CI machine the whole stack (broker,
        # PostgreSQL, migrations, processors, witness, dashboard) took over 90 s.
        deadline = time.monotonic() + 240
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _descendants(proc.pid) or seen
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    healthy = r.status == 200
            except OSError:
                pass
            if healthy:
                break
            time.sleep(0.5)
        assert healthy, "dashboard did not answer /_stcore/health"
        seen = _descendants(proc.pid)
        names = " ".join(_cmd(p) for p in seen)
        for part in ("tansu", "postgres", "stream_processors", "streamlit", "witness", "infra.static_server"):
            assert part in names, f"{part} is not running under cuentas up"

        # `cuentas status` finds the running platform and calls it healthy
        status = subprocess.run([sys.executable, "-m", "cuentas", "status", "--json"], env=env, cwd=ROOT,
                                capture_output=True, timeout=60)
        report = json.loads(status.stdout)
        assert status.returncode == 0, report
        assert {"broker", "topics", "database", "processors", "dashboard", "receipt_check"} <= set(report["components"])
        # the light receipt check page (issue 18.3) is served, with the log's key in it
        assert report["receipt_check_url"] == f"http://127.0.0.1:{env['RECEIPT_CHECK_PORT']}/"
        with urllib.request.urlopen(report["receipt_check_url"], timeout=5) as r:
            page = r.read().decode()
        log_pub = (tmp_path / "data" / "public" / "log.pub").read_text().strip()
        assert log_pub in page and "cc-config" in page

        # a processor that dies is reported by name and restarted
        before = {p.pid for p in seen if "stream_processors" in _cmd(p)}
        victim = next(p for p in seen if "stream_processors" in _cmd(p))
        victim.kill()
        deadline = time.monotonic() + 30
        fresh: list[psutil.Process] = []
        while time.monotonic() < deadline and not fresh:
            fresh = [p for p in _descendants(proc.pid) if "stream_processors" in _cmd(p) and p.pid not in before]
            time.sleep(0.5)
        assert fresh, "the killed processor was not restarted"
        seen = _descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    time.sleep(0.5)
    alive = [p for p in seen if p.is_running() and _cmd(p)]
    assert not alive, f"left behind: {[_cmd(p) for p in alive]}"
    assert b"dashboard" in out
    assert re.search(rb"processors[-\w]* exited with code -9", out) and re.search(rb"restarting processors", out)


@pytest.mark.parametrize(
    "var,value,needle",
    [
        ("DATABASE_URL", "postgresql://nobody@127.0.0.1:{port}/x", "127.0.0.1:{port}"),
        ("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:{port}", "127.0.0.1:{port}"),
    ],
)
def test_unreachable_service_fails_fast_with_one_line(tmp_path, var, value, needle):
    port = free_port()
    env = _env(tmp_path, **{var: value.format(port=port)})
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cuentas", "up"], env=env, cwd=ROOT, capture_output=True, timeout=60)
    assert time.monotonic() - t0 < 30
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    assert len(err) == 1, err
    assert needle.format(port=port) in err[0] and "Traceback" not in err[0]
