"""What the publisher's commands share: small parsers, settings, output, files and locks."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import ConfigurationError, MalformedInput
from schemas.times import utc

if TYPE_CHECKING:
    from infra.settings import Settings

__all__ = [
    "ID_RE",
    "CHUNK",
    "parse_duration",
    "parse_start",
    "key_passphrase",
    "check_id",
    "print_json",
    "current_settings",
    "running_platform",
    "write_atomic",
    "make_console",
    "progress_bar",
    "publisher_locks",
]


#: Publisher ids: what the registry accepts.
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{2,63}$")
#: Events handed to the outbox and Kafka at once.
CHUNK = 500

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``10m``, ``2h``, ``90d``, ``1w``, ``1h30m`` or plain seconds."""
    raw = text.strip().lower()
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(raw):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not raw or pos != len(raw) or total <= 0:
        raise MalformedInput(
            f"{text!r} is not a duration; write it like 90s, 10m, 2h, 90d or 1h30m",
            reason="duration",
        )
    return timedelta(seconds=total)


def parse_start(text: str) -> datetime:
    """An ISO 8601 date or date-time; no offset means UTC (``schemas.times.utc``)."""
    try:
        return utc(text)
    except MalformedInput as e:
        raise MalformedInput(f"--start {e}", reason="time") from e


def key_passphrase(var: str | None) -> bytes | None:
    """The passphrase from ``--passphrase-env VAR``, else CUENTAS_KEY_PASSPHRASE, else none."""
    if var:
        value = os.environ.get(var)
        if not value:
            raise ConfigurationError(f"--passphrase-env {var}: that environment variable is empty")
        return value.encode()
    from infra.identities import passphrase

    return passphrase()


def check_id(value: str, what: str) -> str:
    """``value`` if it is a valid publisher id, else a one-line error naming ``what``."""
    if not ID_RE.match(value):
        raise MalformedInput(
            f"{what} {value!r} must be 3-64 lowercase ASCII letters, digits or _ . : - "
            "(starting with a letter or digit)",
            reason="id",
        )
    return value


def print_json(obj: Any) -> None:
    """``--json`` output: indented, keys sorted."""
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def current_settings() -> Settings:
    """The settings from the environment (imported late: ``cuentas --help`` stays instant)."""
    from infra.settings import load_settings

    return load_settings()


def running_platform(settings: Settings, *, need_db: bool = True) -> tuple[Settings, str]:
    """Settings pointed at the running platform's broker, and its database URL."""
    from infra.runtime import resolve

    ep = resolve(settings, need_db=need_db)
    return settings.replace(kafka_bootstrap_servers=ep.kafka_bootstrap), ep.database_url


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(path)


def make_console(stderr: bool = True) -> Any:
    """A rich console for progress and notes (stderr: stdout stays for results)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def progress_bar(console: Any) -> Any:
    """Progress bars on a terminal; nothing when output is piped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


@contextlib.contextmanager
def publisher_locks(settings: Settings, ids: Iterable[str]) -> Iterator[None]:
    """Hold an exclusive lock per publisher for as long as this process publishes as it.

    Two processes numbering one publisher's events (say the demo's live trickle
    and a `cuentas simulate` with the demo's seed) would hand out the same
    sequence numbers, which the gate reads as equivocation.  The locks sit next
    to the outboxes and vanish with the process.
    """
    import fcntl

    from producers.publisher import outbox_path

    held: list[Any] = []
    try:
        for pid in sorted(set(ids)):
            path = outbox_path(settings, pid).with_suffix(".lock")
            path.parent.mkdir(parents=True, exist_ok=True)
            f = path.open("a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                f.close()
                raise ConfigurationError(
                    f"publisher {pid} is in use by another process on this machine (the demo "
                    "publisher of `cuentas up --demo`?); wait for it to finish or stop it"
                ) from e
            held.append(f)
        yield
    finally:
        for f in held:
            f.close()
