"""The light receipt check on a phone on Fast 3G: code to "Verificado", and the bytes it costs (issue 18.4).

    cuentas bench receipt-page [--runs 7] [--url URL --code CODE | --site DIR --code CODE] [--dashboard]

By default it starts ``cuentas up --demo`` in a temporary folder (free
ports), waits until the processors have written the receipt document of a
demo code (the transfer paid short, with an open discrepancy), then drives
Chromium (Playwright) at 360 px in Spanish (es-MX, Mexico City) with the
network throttled through the DevTools protocol to the issue's "Fast 3G":
``Network.emulateNetworkConditions`` with 150 ms latency, 1.6 Mbit/s down
and 750 kbit/s up, and ``Network.setCacheDisabled`` (a new browser context
per run: a cold cache).  ``--url``/``--code`` measure a running stack or
any static host instead; ``--site DIR`` serves a folder written by ``cuentas
log export`` with the platform's static server.

Two scenarios, each ``--runs`` times:

* **link**: the page opened with ``?code=`` (as the dashboard's link or a
  QR code would): from the start of navigation to the
  ``data-testid="receipt-verified"`` element, as the page's own clock has it
  (``performance.now()`` when it marked success: navigation start = 0), so
  connection, page, document download and verification are all in it;
* **typed**: the page already open (cold), the code typed and "Buscar"
  pressed: from the click to the verified mark (document download and
  verification).

Bytes are what crossed the throttled network: the sum of
``Network.loadingFinished.encodedDataLength`` (headers and compressed
bodies) of every request of the run.  ``--dashboard`` also measures the
Streamlit track page once under the same conditions, for comparison (the
issue measured 14.4 s and ~2.4 MB).  Targets: at most 3 s, at most 100 KB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine_info, print_table, wait_until, write_result
from infra.procs import free_port
from schemas.privacy import receipt_digest
from schemas.receipt_doc import doc_path

__all__ = ["run", "FAST_3G", "measure"]

#: The issue's "Fast 3G": 150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up (bytes per second for CDP).
FAST_3G = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8, "uploadThroughput": 750_000 / 8}
TARGET_MS, TARGET_BYTES = 3000, 100_000
PHONE = {"viewport": {"width": 360, "height": 780}, "locale": "es-MX", "timezone_id": "America/Mexico_City",
         "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
VERIFIED = "[data-testid='receipt-verified']"
FAILED = "[data-testid='receipt-not-verified'], [data-testid='receipt-not-found']"


_LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def _launch(p: Any) -> Any:
    """Chromium as the browser tests find it: CUENTAS_BROWSER, what `make test` provisioned, else on the PATH."""
    exe = os.environ.get("CUENTAS_BROWSER")
    record = Path(sys.prefix) / "browser-path"
    if not exe and record.exists():
        exe = record.read_text().strip()
    exe = exe or shutil.which("chromium") or shutil.which("chromium-browser") or "playwright"
    kw: dict[str, Any] = {"args": _LAUNCH_ARGS}
    if exe != "playwright":
        kw["executable_path"] = exe
    return p.chromium.launch(**kw)


class _Throttled:
    """A new context (cold cache) with Fast 3G on its page, counting bytes over the wire."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(**PHONE)
        self.page = self.context.new_page()
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("Network.enable")
        self.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        self.cdp.send("Network.emulateNetworkConditions", FAST_3G)
        self.bytes = 0
        self.requests = 0
        self.cdp.on("Network.loadingFinished", self._finished)

    def _finished(self, e: dict[str, Any]) -> None:
        self.bytes += int(e.get("encodedDataLength", 0))
        self.requests += 1

    def reset(self) -> None:
        self.bytes, self.requests = 0, 0

    def close(self) -> None:
        self.context.close()


def _outcome(page: Any, timeout_ms: float) -> str:
    el = page.wait_for_selector(f"{VERIFIED}, {FAILED}", timeout=timeout_ms)
    testid = str(el.get_attribute("data-testid"))
    if testid != "receipt-verified":
        raise RuntimeError(f"the page says {testid}: {el.inner_text()}")
    return testid


def measure(browser: Any, url: str, code: str, scenario: str) -> dict[str, Any]:
    t = _Throttled(browser)
    try:
        if scenario == "link":
            wall = time.perf_counter()
            t.page.goto(f"{url}?code={code}", wait_until="commit", timeout=60_000)
            _outcome(t.page, 60_000)
            wall_ms = (time.perf_counter() - wall) * 1000
            page_ms = float(t.page.evaluate("Number(document.documentElement.dataset.verifiedMs)"))
            t.page.wait_for_load_state("load")
            return {"ms": page_ms, "wall_ms": wall_ms, "bytes": t.bytes, "requests": t.requests}
        t.page.goto(url, wait_until="load", timeout=60_000)
        page_bytes = t.bytes
        t.reset()
        t.page.fill("#code", code)
        start = float(t.page.evaluate("performance.now()"))
        t.page.click("button[type=submit]")
        _outcome(t.page, 60_000)
        ms = float(t.page.evaluate("Number(document.documentElement.dataset.verifiedMs)")) - start
        return {"ms": ms, "bytes": t.bytes, "requests": t.requests, "page_bytes": page_bytes}
    finally:
        t.close()


def measure_dashboard(browser: Any, url: str, code: str, timeout_s: float = 180) -> dict[str, Any]:
    """The Streamlit track page under the same conditions: navigation to its green "Verificado"."""
    t = _Throttled(browser)
    try:
        t0 = time.perf_counter()
        t.page.goto(f"{url}/track?lang=es&code={code}", wait_until="commit", timeout=120_000)
        t.page.locator("[data-testid='stAlertContentSuccess']", has_text="Verificado").first.wait_for(
            timeout=timeout_s * 1000)
        return {"ms": (time.perf_counter() - t0) * 1000, "bytes": t.bytes, "requests": t.requests}
    finally:
        t.close()


@contextlib.contextmanager
def _demo_stack(data_parent: str | None, keep: bool) -> Iterator[tuple[str, str, str, Path]]:
    """``cuentas up --demo`` in a temporary folder: (receipt check URL, dashboard URL, a demo code, data dir)."""
    root = Path(tempfile.mkdtemp(prefix="bench-receipt-page-", dir=data_parent))
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    check_port, dash_port = free_port(), free_port()
    env.update(CUENTAS_DATA_DIR=str(data), EMBEDDED_KAFKA_PORT="0", EMBEDDED_POSTGRES_PORT="0",
               DASHBOARD_PORT=str(dash_port), RECEIPT_CHECK_PORT=str(check_port),
               KAFKA_SESSION_TIMEOUT_S="6", KAFKA_REBALANCE_TIMEOUT_S="6", KAFKA_HEARTBEAT_S="1")
    log = (root / "up.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cuentas", "up", "--demo"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        codes = data / "demo" / "receipt-codes.txt"
        print("starting `cuentas up --demo` (a few minutes on a busy machine)...", flush=True)
        if not wait_until(lambda: codes.exists() or proc.poll() is not None, 300, 1):
            raise RuntimeError("the demo publisher wrote no receipt codes in 5 minutes")
        lines = [x for x in codes.read_text().splitlines() if x.startswith("CC-")]
        code = next((x.split()[0] for x in lines if "short" in x), lines[0].split()[0])
        public = data / "public" / doc_path(receipt_digest(code))
        print(f"waiting for the receipt document of {code}...", flush=True)
        if not wait_until(lambda: public.exists() or proc.poll() is not None, 600, 1):
            raise RuntimeError(f"no receipt document for {code} after 10 minutes")
        url = f"http://127.0.0.1:{check_port}/"
        wait_until(lambda: _answers(url), 60, 0.5)
        yield url, f"http://127.0.0.1:{dash_port}", code, data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def _static_site(folder: str) -> Iterator[str]:
    from infra.static_server import serve

    server, _ = serve(Path(folder))
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ms, b = [r["ms"] for r in rows], [r["bytes"] for r in rows]
    return {"runs": rows, "ms_median": statistics.median(ms), "ms_max": max(ms), "ms_min": min(ms),
            "bytes_median": statistics.median(b), "bytes_max": max(b),
            "met": max(ms) <= TARGET_MS and max(b) <= TARGET_BYTES}


def _bench(browser: Any, url: str, code: str, runs: int, dashboard: str | None) -> dict[str, Any]:
    measure(browser, url, code, "link")  # warm the server's file cache, not the browser's (cold every run)
    out: dict[str, Any] = {}
    for scenario in ("link", "typed"):
        rows = []
        for i in range(runs):
            rows.append(measure(browser, url, code, scenario))
            print(f"  {scenario} run {i + 1}: {rows[-1]['ms']:,.0f} ms, {rows[-1]['bytes']:,} bytes", flush=True)
        out[scenario] = _summary(rows)
    if dashboard:
        print("  the dashboard's track page, for comparison...", flush=True)
        out["dashboard_track_page"] = measure_dashboard(browser, dashboard, code)
    return out


def run(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    machine = machine_info()
    runs = args.runs or (3 if args.quick else 7)
    with contextlib.ExitStack() as stack:
        dashboard = None
        if args.url or args.site:
            if not args.code:
                raise SystemExit("cuentas bench receipt-page: --url or --site needs --code")
            url = args.url or stack.enter_context(_static_site(args.site))
            code, source = args.code, args.url or f"static site {args.site}"
        else:
            url, dash, code, _data = stack.enter_context(_demo_stack(args.data_dir, args.keep))
            source, dashboard = "cuentas up --demo", (dash if args.dashboard else None)
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                result = _bench(browser, url.rstrip("/") + "/", code, runs, dashboard)
            finally:
                browser.close()
    result.update(source=source, code_digest_prefix=receipt_digest(code)[:8], network=FAST_3G,
                  screen=PHONE, targets={"ms": TARGET_MS, "bytes": TARGET_BYTES})
    rows = [[s, f"{r['ms_median']:,.0f} ms", f"{r['ms_max']:,.0f} ms", f"{r['bytes_median']:,.0f}",
             f"{r['bytes_max']:,.0f}", "yes" if r["met"] else "NO"] for s, r in
            ((k, result[k]) for k in ("link", "typed"))]
    if "dashboard_track_page" in result:
        d = result["dashboard_track_page"]
        rows.append(["dashboard track page (1 run)", f"{d['ms']:,.0f} ms", "", f"{d['bytes']:,}", "", ""])
    print_table(f"receipt check on Fast 3G, 360 px, cold cache ({runs} runs; targets 3 s, 100 KB)",
                ["scenario", "median", "max", "bytes median", "bytes max", "within targets"], rows)
    path = write_result("receipt-page", result, machine)
    print(f"result: {path}")
