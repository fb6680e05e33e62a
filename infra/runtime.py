"""Where the running platform's services are: explicit settings, or what `cuentas up` recorded.

`cuentas up` writes ``<data dir>/run/endpoints.json`` after it started the
embedded services, so every other command (publish, status, log, ...) finds
them without the user copying ports around.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.settings import Settings
from schemas.errors import UnavailableService

__all__ = ["Endpoints", "resolve", "write_endpoints", "clear_endpoints", "endpoints_path"]


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    database_url: str
    dashboard_url: str = ""
    supervisor_pid: int = 0
    #: The light receipt check page (the static server of `cuentas up`, or RECEIPT_CHECK_URL).
    receipt_check_url: str = ""


def endpoints_path(settings: Settings) -> Path:
    return settings.data_path / "run" / "endpoints.json"


def write_endpoints(settings: Settings, ep: Endpoints) -> None:
    p = endpoints_path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(ep), f)
    tmp.replace(p)


def clear_endpoints(settings: Settings) -> None:
    endpoints_path(settings).unlink(missing_ok=True)


def resolve(settings: Settings, *, need_kafka: bool = True, need_db: bool = True) -> Endpoints:
    recorded: dict[str, object] = {}
    p = endpoints_path(settings)
    if p.exists():
        try:
            recorded = json.loads(p.read_text())
        except (OSError, ValueError):
            recorded = {}
    kafka = settings.kafka_bootstrap_servers or str(recorded.get("kafka_bootstrap", ""))
    db = settings.database_url or str(recorded.get("database_url", ""))
    if (need_kafka and not kafka) or (need_db and not db):
        raise UnavailableService(
            "the platform is not running here: start it with `cuentas up` "
            f"(data dir {settings.data_path}), or set KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL"
        )
    return Endpoints(kafka, db, str(recorded.get("dashboard_url", "")), int(str(recorded.get("supervisor_pid", 0) or 0)),
                     str(recorded.get("receipt_check_url", "")))
