"""Issue 14.8: the dashboard starts with no private key file readable to it, and a reviewer still acts.

The platform's keys stay where the processors keep them (``<data dir>/keys``, the very folder the
dashboard is pointed at), owned by another user with mode 600; the dashboard runs as a process that
cannot read them (root without ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH``, via ``setpriv``), with
the reader and reviewer-desk URLs and no ``DATABASE_URL``.  A reviewer signs in in Chromium and
acknowledges a discrepancy; the processors' part (a thread here: :func:`apply_pending` with the
writer's connection and the key they loaded) applies it, and it is logged signed by the platform.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from infra import db
from infra.identities import PlatformKeys, keys_dir
from infra.procs import free_port, stop_process
from infra.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
FLAG = "flg_eeeeeeeeeeeeeeeeeeeeeeeeee"
NOBODY = 65534
#: Root without the capabilities that let it read other users' files.
NO_READ_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return "unused:9092"


def _sql(s: Settings, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(s.database_url, options=f"-c search_path={s.database_schema}")
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


def test_the_dashboard_cannot_read_any_key_and_a_reviewer_action_still_takes_effect(
    migrated: Settings, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the dashboard without read access to the key files")
    from argon2 import PasswordHasher

    from dashboard import auth
    from tests.unit.test_dashboard_pages import ProcessorsStandIn

    s = migrated
    keys = PlatformKeys.load(s)  # the processors' keys (and the log's public key in <data dir>/public)
    _sql(s, "INSERT INTO flags (flag_id, flag_type, subject_kind, subject_id, accountable, severity,"
         " amount_at_stake, currency, status, raised_at, evidence) VALUES"
         " (%s, 'short_payout', 'transfer', 'tr-1', 'op.remesas-sol', 'medium', 6000, 'MXN', 'open', now(), '[]')",
         (FLAG,))
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    conn = db.connect(s.database_url, s.database_schema)
    rev = auth.add_reviewer(conn, "ana@example.org", "correct horse battery")
    conn.close()

    kdir = keys_dir(s)
    key_files = sorted(kdir.rglob("*.key"))
    assert len(key_files) >= 3
    for p in [kdir, *kdir.rglob("*")]:
        os.chown(p, NOBODY, NOBODY)
        p.chmod(0o700 if p.is_dir() else 0o600)
    try:
        for key in key_files:  # what the dashboard's process can do with them: nothing
            probe = subprocess.run([*NO_READ_OVERRIDE, sys.executable, "-c", f"open({str(key)!r}, 'rb').read()"],
                                   capture_output=True, text=True, timeout=60)
            assert probe.returncode != 0 and "PermissionError" in probe.stderr, probe

        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "LOG_KEY_FILE", "REGISTRY_KEY_FILE", "CUENTAS_KEY_PASSPHRASE")}
        env.update(CUENTAS_DATA_DIR=s.data_dir, DATABASE_SCHEMA=s.database_schema, KAFKA_BOOTSTRAP_SERVERS="unused:9092",
                   DASHBOARD_DATABASE_URL=db.reader_url(s, s.database_url),
                   REVIEW_DATABASE_URL=db.review_url(s, s.database_url), PYTHONUNBUFFERED="1")
        log = tmp_path / "dashboard.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*NO_READ_OVERRIDE, sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true",
                 "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline, healthy = time.monotonic() + 120, False
            while time.monotonic() < deadline and not healthy and proc.poll() is None:
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=5) as r:
                        healthy = r.status == 200
                except OSError:
                    time.sleep(0.5)
            assert healthy, log.read_text()[-3000:]
            caps = int(next(line.split()[1] for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                            if line.startswith("CapBnd:")), 16)
            assert not caps & 0b110, "the dashboard could read any file (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH)"

            with ProcessorsStandIn(s, keys) as processors:
                en = __import__("json").loads((ROOT / "dashboard" / "locales" / "en.json").read_text())
                context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
                page = context.new_page()
                try:
                    page.goto(f"{url}/watchdog?lang=en", wait_until="domcontentloaded", timeout=60_000)
                    page.wait_for_selector(IDLE, timeout=60_000)
                    page.locator("h1", has_text=en["watchdog.title"]).first.wait_for(timeout=60_000)
                    page.get_by_text(en["auth.title"]).first.click()
                    page.get_by_role("textbox", name=en["auth.username"]).fill("ana@example.org")
                    page.get_by_role("textbox", name=en["auth.password"], exact=True).fill("correct horse battery")
                    page.get_by_role("button", name=en["auth.sign_in"]).click()
                    page.get_by_text(rev.reviewer_id).first.wait_for(timeout=60_000)
                    page.wait_for_selector(IDLE, timeout=60_000)
                    page.get_by_role("button", name=en["watchdog.acknowledge"]).first.click()
                    page.wait_for_selector("[data-testid='stAlertContentSuccess']", timeout=60_000)
                finally:
                    context.close()
            assert processors.outcomes == ["applied"]
        finally:
            stop_process(proc)
        assert "PermissionError" not in log.read_text() and "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        for p in [kdir, *kdir.rglob("*")]:
            os.chown(p, 0, 0)

    assert _sql(s, "SELECT status FROM flags WHERE flag_id = %s", (FLAG,)) == [("acknowledged",)]
    hist = _sql(s, "SELECT h.actor, e.event_type, e.publisher_id FROM flag_history h"
                " JOIN log_entries e ON e.event_id = h.event_id WHERE h.flag_id = %s", (FLAG,))
    assert hist == [(rev.reviewer_id, "flag.changed", keys.platform.name)]
