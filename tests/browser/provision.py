"""Make sure a Chromium for the browser tests exists; print where it is.

``make test`` runs this before pytest, so a fresh machine needs nothing but
Python and make.  In order:

1. ``CUENTAS_BROWSER`` (a path to a Chromium binary), if set;
2. a Chromium already installed (``chromium``, ``chromium-browser``,
   ``google-chrome`` on the PATH);
3. Debian's ``chromium`` package, when this user may install packages
   (root with ``apt-get``): Playwright cannot download its own browsers on
   some networks, and Debian's build is what the project's machines use;
4. ``playwright install chromium`` (Playwright's own build, downloaded).

The result goes to ``.venv/browser-path`` (one line: the executable, or
``playwright`` for Playwright's own build), which ``tests/browser`` reads.  If
none of this works the script exits 1 with one line saying what to do; set
``SKIP_BROWSER_TESTS=1`` to run everything else without a browser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = Path(os.environ.get("VIRTUAL_ENV") or ROOT / ".venv") / "browser-path"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def installed() -> str | None:
    explicit = os.environ.get("CUENTAS_BROWSER")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def apt_install() -> bool:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("browser tests: installing Debian's chromium (apt-get install chromium)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, **quiet)
    return installed() is not None


def playwright_install() -> bool:
    print("browser tests: downloading Playwright's chromium (playwright install chromium)...", flush=True)
    done = subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return done.returncode == 0


def main() -> int:
    if os.environ.get("SKIP_BROWSER_TESTS"):
        print("browser tests: skipped (SKIP_BROWSER_TESTS is set)")
        RECORD.unlink(missing_ok=True)
        return 0
    path = installed() or (installed() if apt_install() else None)
    if path is None and playwright_install():
        path = "playwright"
    if path is None:
        print("browser tests: no Chromium, and none could be installed (not root with apt-get, and "
              "`playwright install chromium` failed). Install chromium, set CUENTAS_BROWSER=/path/to/chromium, "
              "or run with SKIP_BROWSER_TESTS=1.", file=sys.stderr)
        return 1
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(path + "\n")
    print(f"browser tests: using {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
