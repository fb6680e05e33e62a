"""The Chromium the browser tests drive, as ``make test`` provisioned it (tests/browser/provision.py)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_RECORD = Path(sys.prefix) / "browser-path"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def browser_executable() -> str | None:
    """A Chromium path, ``"playwright"`` for Playwright's own build, or None when there is none."""
    if os.environ.get("CUENTAS_BROWSER"):
        return os.environ["CUENTAS_BROWSER"]
    if _RECORD.exists():
        recorded = _RECORD.read_text().strip()
        if recorded == "playwright" or Path(recorded).exists():
            return recorded
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is open, so any later test in the same xdist worker that calls asyncio.run() failed
# ("cannot be called from a running event loop": test_faust_fetch_wait.py after test_receipt_page.py).
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if os.environ.get("SKIP_BROWSER_TESTS"):
        pytest.skip("SKIP_BROWSER_TESTS is set")
    exe = browser_executable()
    if exe is None:
        pytest.fail("no Chromium for the browser tests: run `make test` (it provisions one, see "
                    "tests/browser/provision.py), set CUENTAS_BROWSER, or set SKIP_BROWSER_TESTS=1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        kw: dict[str, Any] = {"args": LAUNCH_ARGS}
        if exe != "playwright":
            kw["executable_path"] = exe
        b = p.chromium.launch(**kw)
        yield b
        b.close()
