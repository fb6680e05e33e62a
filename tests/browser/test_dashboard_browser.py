"""A person's view: headless Chromium against the running demo stack.

Starts `cuentas up --demo` (embedded broker, PostgreSQL, processors, witness,
dashboard, demo publisher), opens every page in Spanish and English at desktop
and phone widths, checks key text, saves screenshots under
``test-artifacts/browser/``, and tracks a demo transfer by its receipt code in
Spanish on a 360 px screen until the page itself has verified it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from infra.procs import free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LOCALES = {lang: json.loads((ROOT / "dashboard" / "locales" / f"{lang}.json").read_text()) for lang in ("es", "en")}
PAGES = ["overview", "track", "projects", "watchdog", "publishers", "audit"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    if os.environ.get("SKIP_BROWSER_TESTS"):
        pytest.skip("SKIP_BROWSER_TESTS is set")
    root = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update(CUENTAS_DATA_DIR=str(root / "data"), EMBEDDED_KAFKA_PORT="0", EMBEDDED_POSTGRES_PORT="0",
               DASHBOARD_PORT=str(port), KAFKA_SESSION_TIMEOUT_S="6", KAFKA_REBALANCE_TIMEOUT_S="6",
               KAFKA_HEARTBEAT_S="1")
    proc = subprocess.Popen([sys.executable, "-m", "cuentas", "up", "--demo"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    codes = root / "data" / "demo" / "receipt-codes.txt"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not codes.exists():
            time.sleep(1)
        assert codes.exists(), "the demo publisher wrote no receipt codes"
        url = f"http://127.0.0.1:{port}"
        # the demo's receipt codes can be written before the dashboard listens
        healthy = False
        while time.monotonic() < deadline + 60 and not healthy:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as r:
                    healthy = r.status == 200
            except OSError:
                time.sleep(1)
        assert healthy, "the dashboard did not answer /_stcore/health"
        first = next(line.split()[0] for line in codes.read_text().splitlines() if line.startswith("CC-"))
        yield url, first
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_page(browser, url: str, width: int):
    page = browser.new_page(viewport={"width": width, "height": 900 if width > 400 else 780})
    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
    return page


@pytest.mark.parametrize("lang", ["es", "en"])
@pytest.mark.parametrize("width", [1280, 360])
def test_every_page_renders(demo, browser, lang, width):
    url, _ = demo
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        path = "" if name == "overview" else name  # the default page lives at /
        page = open_page(browser, f"{url}/{path}?lang={lang}", width)
        try:
            page.wait_for_timeout(2000)  # live fragments draw after the first run
            text = page.inner_text("body")
            assert "Page not found" not in text
            assert LOCALES[lang][f"nav.{name}"] in text or LOCALES[lang].get(f"{name}.title", "") in text
            assert "Traceback" not in text
            # nothing wider than the screen on a phone
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 2, f"{name} scrolls sideways by {overflow}px at {width}px"
            page.screenshot(path=str(ARTIFACTS / f"{name}-{lang}-{width}.png"), full_page=True)
        finally:
            page.close()


def test_track_demo_transfer_in_spanish_on_a_phone_until_verified(demo, browser):
    url, code = demo
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    verified_prefix = LOCALES["es"]["track.verified"].split(":")[0]  # "Verificado"
    deadline = time.monotonic() + 240
    text = ""
    while time.monotonic() < deadline:
        page = open_page(browser, f"{url}/track?lang=es&code={code}", 360)
        try:
            page.wait_for_timeout(1500)
            text = page.inner_text("[data-testid='stApp']")
            if f"{verified_prefix}:" in text:
                page.screenshot(path=str(ARTIFACTS / "track-verified-es-360.png"), full_page=True)
                break
        finally:
            page.close()
        time.sleep(5)
    assert f"{verified_prefix}:" in text, text[-1500:]
    assert LOCALES["es"]["track.download_receipt"] in text
