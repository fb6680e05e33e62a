"""PostgreSQL adapter: connections with retry and backoff, ordered SQL migrations, COPY of rows.

Every connection sets ``search_path`` to the configured schema, so several
platforms (or tests) can share one server.  Every query elsewhere is
parameterised; identifiers are quoted with ``psycopg2.sql``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from infra.settings import Settings
from schemas.errors import ConfigurationError, UnavailableService

__all__ = [
    "connect",
    "connection",
    "describe_url",
    "migrate",
    "migrations",
    "applied_migrations",
    "READER_ROLE",
    "REVIEW_ROLE",
    "reader_url",
    "review_url",
    "role_url",
    "copy_rows",
]

log = logging.getLogger(__name__)

READER_ROLE = "cuentas_reader"
#: The dashboard's reviewer desk: sign-in and review requests only (migration 0025, issue 14.8).
REVIEW_ROLE = "cuentas_review"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def describe_url(url: str) -> str:
    """host:port/db of a URL, without user or password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path or ''}"


def _check_schema(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ConfigurationError(f"DATABASE_SCHEMA={schema!r} must be a lower-case SQL identifier")
    return schema


def connect(url: str, schema: str, *, retries: int = 0, timeout: float = 5.0,
            application_name: str = "cuentas") -> psycopg2.extensions.connection:
    """Open a connection, retrying with exponential backoff ``retries`` times."""
    _check_schema(schema)
    delay = 0.2
    for attempt in range(retries + 1):
        try:
            conn = psycopg2.connect(
                url,
                connect_timeout=max(1, int(timeout)),
                options=f"-c search_path={schema},public",
                application_name=application_name,
            )
            return conn
        except psycopg2.OperationalError as e:
            if attempt == retries:
                raise UnavailableService(
                    f"cannot reach PostgreSQL at {describe_url(url)}: "
                    f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r} "
                    "(check DATABASE_URL, that the server runs and accepts this user)"
                ) from e
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


@contextmanager
def connection(url: str, schema: str, **kw: object) -> Iterator[psycopg2.extensions.connection]:
    conn = connect(url, schema, **kw)  # type: ignore[arg-type]
    try:
        yield conn
    finally:
        conn.close()


def role_url(url: str, role: str) -> str:
    """``url``'s server and database as ``role``, with no password (none of the writer's credential)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{role}@{netloc}").geturl()


def reader_url(settings: Settings, writer_url: str) -> str:
    """The read-only dashboard URL: DASHBOARD_DATABASE_URL, else the writer's server as the reader role."""
    if settings.dashboard_database_url:
        return settings.dashboard_database_url
    return role_url(writer_url, READER_ROLE)


def review_url(settings: Settings, writer_url: str) -> str:
    """The reviewer desk's URL: REVIEW_DATABASE_URL, else the writer's server as the review role."""
    if settings.review_database_url:
        return settings.review_database_url
    return role_url(writer_url, REVIEW_ROLE)


# --- migrations --------------------------------------------------------------------


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file in infra/migrations, in order."""
    out = []
    for entry in resources.files("infra.migrations").iterdir():
        m = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise ConfigurationError("two migrations share a version number")
    return out


def applied_migrations(conn: psycopg2.extensions.connection, schema: str) -> dict[int, str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT to_regclass(%s)", (f"{_check_schema(schema)}.schema_migrations",)
        )
        row = cur.fetchone()
        if not row or row[0] is None:
            return {}
        cur.execute(sql.SQL("SELECT version, checksum FROM {}.schema_migrations").format(sql.Identifier(schema)))
        return {int(v): c for v, c in cur.fetchall()}


def migrate(url: str, schema: str) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return what ran.

    A PostgreSQL advisory lock serialises concurrent runs; an applied
    migration whose file has since changed is an error, never re-run.
    """
    ran: list[str] = []
    conn = connect(url, schema, retries=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext('cuentas-migrate'))")
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            cur.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                    " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(sql.Identifier(schema))
            )
        conn.commit()
        done = applied_migrations(conn, schema)
        for version, name, text in migrations():
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    raise ConfigurationError(
                        f"migration {version:04d}_{name} was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            with conn.cursor() as cur:
                cur.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(schema)))
                cur.execute(text.replace("{{schema}}", schema).replace("{{reader}}", READER_ROLE)
                            .replace("{{review}}", REVIEW_ROLE))
                cur.execute(
                    "INSERT INTO schema_migrations(version, name, checksum) VALUES (%s, %s, %s)",
                    (version, name, checksum),
                )
            conn.commit()
            ran.append(f"{version:04d}_{name}")
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(hashtext('cuentas-migrate'))")
        conn.commit()
    except psycopg2.Error as e:
        conn.rollback()
        raise UnavailableService(f"migration failed on {describe_url(url)}: {e}".strip()) from e
    finally:
        conn.close()
    return ran


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_str(v: str) -> str:
    return v.translate(_COPY_ESCAPES) if ("\\" in v or "\t" in v or "\n" in v or "\r" in v) else v


def _copy_bytes(v: bytes) -> str:
    return "\\\\x" + v.hex()


_COPY_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: _copy_str,
    int: str,
    bytes: _copy_bytes,
    bool: lambda v: "t" if v else "f",
    type(None): lambda v: "\\N",
}


def _copy_field(v: Any) -> str:
    # PostgreSQL COPY text format (docs: COPY, "Text Format"): \N is NULL,
    # backslash, tab, newline and carriage return are escaped; bytea in its
    # hex form (\x...) has its backslash escaped too.
    f = _COPY_BY_TYPE.get(type(v))
    if f is not None:
        return f(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return _copy_bytes(bytes(v))
    if isinstance(v, str):
        return _copy_str(v)
    if hasattr(v, "isoformat"):
        return str(v.isoformat())
    return str(v)


def copy_rows(cur: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Stream ``rows`` into ``table`` with COPY: far less quoting work than a multi-row INSERT."""
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join(map(_copy_field, r)))
        buf.write("\n")
    if buf.tell() == 0:
        return
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
