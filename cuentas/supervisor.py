"""`cuentas up`: start everything the platform needs, in the foreground, and stop it all cleanly.

Order: broker (unless external) -> database (unless external) -> migrations
-> topics -> platform identities -> the receipt check page -> processors,
witness, dashboard, the static server of the public site (the receipt check
page and its documents) and, with --demo, the demo publisher.  Ctrl-C or SIGTERM stops children in reverse
order; a child that dies is reported by name with the last lines of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infra import db as dbmod
from infra.embedded import EmbeddedKafka, EmbeddedPostgres
from infra.kafka import check_reachable, ensure_topics
from infra.procs import spawn, stop_process, tail, wait_until
from infra.runtime import Endpoints, clear_endpoints, write_endpoints
from infra.settings import Settings, processor_layout
from producers.registry import bootstrap_platform
from schemas.errors import UnavailableService

__all__ = ["Supervisor", "Child", "MAX_RESTARTS", "RESTART_WINDOW_S"]

#: A child that dies is restarted, unless it died more than this many times...
MAX_RESTARTS = 5
#: ...within this many seconds; then the platform stops and says why.
RESTART_WINDOW_S = 300.0


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    optional_exit_ok: bool = False
    env: dict[str, str] | None = None  # added to the supervisor's environment


class Supervisor:
    def __init__(self, settings: Settings, *, demo: bool = False, echo=print) -> None:  # type: ignore[no-untyped-def]
        self.s = settings
        self.demo = demo
        self.echo = echo
        self.kafka: EmbeddedKafka | None = None
        self.pg: EmbeddedPostgres | None = None
        self.children: list[Child] = []
        self._stopping = False
        self.logs = settings.data_path / "logs"

    # -- start --------------------------------------------------------------------
    def start_services(self) -> Endpoints:
        s = self.s
        s.data_path.mkdir(parents=True, exist_ok=True)
        if s.embedded_kafka:
            self.kafka = EmbeddedKafka(s.data_path, s.embedded_kafka_port).start()
            bootstrap = self.kafka.bootstrap
        else:
            bootstrap = s.kafka_bootstrap_servers
            check_reachable(s, timeout=10)
        kafka_settings = s.replace(kafka_bootstrap_servers=bootstrap)
        if s.embedded_postgres:
            self.pg = EmbeddedPostgres(s.data_path, s.embedded_postgres_port).start()
            url = self.pg.url
        else:
            url = s.database_url
            dbmod.connect(url, s.database_schema, retries=2, timeout=5).close()
        dbmod.migrate(url, s.database_schema)
        ensure_topics(kafka_settings)
        bootstrap_platform(kafka_settings, url)
        self.publish_keys()
        self.write_receipt_page()
        self.endpoints = Endpoints(bootstrap, url, f"http://{s.dashboard_host}:{s.dashboard_port}", os.getpid(),
                                   s.receipt_check_address if self.serves_receipts or s.receipt_check_url else "")
        write_endpoints(s, self.endpoints)
        return self.endpoints

    def publish_keys(self) -> None:
        """Make sure the demo witness has a key and its verifier key is public, before anyone reads it.

        The log's verifier key is published by ``PlatformKeys.load`` (in
        ``bootstrap_platform``); the dashboard reads both from
        ``<data dir>/public`` and never a private key (issue 14.3).
        """
        from infra.identities import key_path
        from infra.keystore import load_or_create
        from infra.public_keys import DEMO_WITNESS, publish_witness_key
        from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, public_key_bytes

        # As `cuentas witness run` makes it (no passphrase), before it starts.
        key = load_or_create(key_path(self.s, "witness"))
        publish_witness_key(self.s, VerifierKey(DEMO_WITNESS, public_key_bytes(key), ALG_COSIGNATURE_V1))

    @property
    def serves_receipts(self) -> bool:
        return self.s.receipt_check_port != 0

    def write_receipt_page(self) -> None:
        """The receipt check page for the keys just published (issue 18), in the public site's folder.

        Written before the processors start writing receipt documents beside it,
        and again at every start so a new witness or log key is in it.
        """
        from infra.receipt_docs import write_page

        write_page(self.s)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.endpoints.kafka_bootstrap
        env["DATABASE_URL"] = self.endpoints.database_url
        env["CUENTAS_DATA_DIR"] = str(self.s.data_path)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    #: What the dashboard's process must not inherit (issue 14.8): the writer's database URL and
    #: anything that opens a private key.  It gets the reader and reviewer-desk URLs instead.
    DASHBOARD_WITHHELD = ("DATABASE_URL", "LOG_KEY_FILE", "REGISTRY_KEY_FILE", "CUENTAS_KEY_PASSPHRASE",
                          "KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEYFILE")

    def dashboard_env(self) -> dict[str, str]:
        """The public dashboard's environment: no writer credential, no key, a data dir without keys.

        Its own data folder (``<data dir>/dashboard``) holds nothing but what
        Streamlit may write; verifier keys come from the public site's folder
        (``PUBLIC_DIR``), the database through the reader role and the
        reviewer-desk role (migrations 0004, 0025), never the writer's URL.
        """
        env = self._env()
        for var in self.DASHBOARD_WITHHELD:
            env.pop(var, None)
        url = self.endpoints.database_url
        env["DASHBOARD_DATABASE_URL"] = dbmod.reader_url(self.s, url)
        env["REVIEW_DATABASE_URL"] = dbmod.review_url(self.s, url)
        env["PUBLIC_DIR"] = str(self.s.public_path)
        home = self.s.data_path / "dashboard"
        home.mkdir(parents=True, exist_ok=True)
        env["CUENTAS_DATA_DIR"] = str(home)
        return env

    def start_children(self) -> None:
        py = sys.executable
        dash = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
        self.children = [
            Child(name, [py, "-m", "stream_processors"], self.logs / f"{name}.log",
                  env=None if comps is None else {"CUENTAS_COMPONENTS": comps})
            for name, comps in processor_layout(self.s)
        ] + [
            Child("witness", [py, "-m", "cuentas", "witness", "run", "--demo"], self.logs / "witness.log"),
            Child("dashboard", [py, "-m", "streamlit", "run", str(dash), "--server.headless", "true",
                                "--server.port", str(self.s.dashboard_port), "--server.address", self.s.dashboard_host,
                                "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "none",
                                "--client.toolbarMode", "viewer"], self.logs / "dashboard.log"),
        ]
        if self.serves_receipts:
            self.children.append(Child("receipt-check", [py, "-m", "infra.static_server", str(self.s.public_path),
                                                         "--host", self.s.receipt_check_host,
                                                         "--port", str(self.s.receipt_check_port)],
                                       self.logs / "receipt-check.log"))
        if self.demo:
            self.children.append(Child("demo-publisher", [py, "-m", "cuentas", "simulate", "--demo"],
                                       self.logs / "demo-publisher.log", optional_exit_ok=True))
        env = self._env()
        dash_env = self.dashboard_env()
        for c in self.children:
            c.proc = spawn(c.argv, log_path=c.log_path,
                           env=dash_env if c.name == "dashboard" else {**env, **(c.env or {})})

    def dashboard_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoints.dashboard_url + "/_stcore/health", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def describe(self) -> str:
        lines = ["Cuentas Claras is running:"]
        lines.append(f"  dashboard   {self.endpoints.dashboard_url}")
        if self.endpoints.receipt_check_url:
            lines.append(f"  receipts    {self.endpoints.receipt_check_url} (the light receipt check page)")
        kind = "embedded Tansu" if self.kafka else "external"
        lines.append(f"  kafka       {self.endpoints.kafka_bootstrap} ({kind})")
        kind = "embedded PostgreSQL" if self.pg else "external"
        lines.append(f"  database    {dbmod.describe_url(self.endpoints.database_url)} ({kind}, schema {self.s.database_schema})")
        lines.append(f"  data dir    {self.s.data_path}")
        lines.append(f"  logs        {self.logs}/")
        for c in self.children:
            lines.append(f"  {c.name:<11} pid {c.proc.pid if c.proc else '-'}")
        lines.append("Stop with Ctrl-C.")
        return "\n".join(lines)

    # -- run ------------------------------------------------------------------------
    def run(self) -> int:
        def on_signal(signum: int, frame: object) -> None:
            self._stopping = True

        old_int = signal.signal(signal.SIGINT, on_signal)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        code = 0
        try:
            self.start_services()
            if self._stopping:
                return 0
            self.start_children()
            wait_until(lambda: self._stopping or self.dashboard_healthy() or self._dead() is not None, timeout=60, interval=0.25)
            self.echo(self.describe())
            deaths: dict[str, list[float]] = {}
            env = self._env()
            while not self._stopping:
                dead = self._dead()
                if dead is not None:
                    rc = dead.proc.returncode if dead.proc else "?"
                    self.echo(f"cuentas up: {dead.name} exited with code {rc}; last lines of {dead.log_path}:")
                    self.echo(tail(dead.log_path))
                    now = time.monotonic()
                    recent = [t for t in deaths.get(dead.name, []) if now - t < RESTART_WINDOW_S] + [now]
                    deaths[dead.name] = recent
                    if len(recent) > MAX_RESTARTS:
                        self.echo(f"cuentas up: {dead.name} died {len(recent)} times in {RESTART_WINDOW_S:.0f} s; stopping")
                        code = 1
                        break
                    # Effects are idempotent and progress is in PostgreSQL, so
                    # a restarted processor simply carries on (ADR 0002).
                    time.sleep(min(30.0, 2.0 ** (len(recent) - 1)))
                    self.echo(f"cuentas up: restarting {dead.name}")
                    dead.proc = spawn(dead.argv, log_path=dead.log_path,
                                      env=self.dashboard_env() if dead.name == "dashboard"
                                      else {**env, **(dead.env or {})})
                    continue
                if self.kafka and not self.kafka.alive():
                    self.echo(f"cuentas up: the embedded broker died; last lines of {self.kafka.log_path}:\n{tail(self.kafka.log_path)}")
                    code = 1
                    break
                if self.pg and not self.pg.alive():
                    self.echo(f"cuentas up: the embedded PostgreSQL died; last lines of {self.pg.log_path}:\n{tail(self.pg.log_path)}")
                    code = 1
                    break
                time.sleep(0.25)
        finally:
            self.stop()
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
        return code

    def _dead(self) -> Child | None:
        for c in self.children:
            if c.proc is not None and c.proc.poll() is not None:
                if c.optional_exit_ok and c.proc.returncode == 0:
                    continue
                return c
        return None

    def stop(self) -> None:
        for c in reversed(self.children):
            if c.proc is not None:
                stop_process(c.proc, sig=signal.SIGTERM, timeout=15)
        if self.pg:
            self.pg.stop()
        if self.kafka:
            self.kafka.stop()
        clear_endpoints(self.s)


def fail_fast_check(settings: Settings) -> None:
    """Raise UnavailableService quickly when an external service is unreachable."""
    if not settings.embedded_kafka:
        check_reachable(settings, timeout=10)
    if not settings.embedded_postgres:
        dbmod.connect(settings.database_url, settings.database_schema, retries=1, timeout=5).close()
    _ = UnavailableService
