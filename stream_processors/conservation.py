"""Conservation: every event handed to a publisher SDK is accounted for, exactly.

For each publisher whose outbox is in the data directory:

    handed   = events handed to the SDK (a re-hand of the same event id counts again)
    accepted = acknowledged as in the log (first delivery, or a duplicate of it)
    rejected = acknowledged as rejected, with the platform's reason
    duplicates = extra hand-overs of an event id already handed
    pending  = not yet acknowledged

and the identity ``handed = accepted + rejected + duplicates + pending`` holds
by construction of the outbox; what this module checks against PostgreSQL is
that the platform agrees: every event the outbox believes accepted is in the
log, every rejected one is in quarantine, nothing accepted is missing.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra import log_store
from infra.db import connect
from infra.settings import Settings
from schemas.l10n import DEFAULT_LOCALE, format_integer

__all__ = ["PublisherBalance", "conservation_report", "render"]


@dataclass
class PublisherBalance:
    publisher_id: str
    handed: int
    accepted: int
    rejected: int
    duplicates: int
    pending: int
    in_log: int
    in_quarantine: int
    exact: bool
    problems: list[str]


def _outboxes(settings: Settings) -> list[Path]:
    d = settings.data_path / "outbox"
    return sorted(d.glob("*.sqlite")) if d.is_dir() else []


def conservation_report(settings: Settings, db_url: str) -> dict[str, Any]:
    balances: list[PublisherBalance] = []
    conn = connect(db_url, settings.database_schema, retries=2)
    try:
        for path in _outboxes(settings):
            pub = path.stem
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                h, a, r, d, p = db.execute(
                    "SELECT coalesce(sum(handed),0), coalesce(sum(status IN ('accepted','duplicate')),0),"
                    " coalesce(sum(status='rejected'),0), coalesce(sum(handed-1),0), coalesce(sum(status='pending'),0)"
                    " FROM events").fetchone()
                accepted_ids = [row[0] for row in db.execute("SELECT event_id FROM events WHERE status IN ('accepted','duplicate')")]
                rejected_ids = [row[0] for row in db.execute("SELECT event_id FROM events WHERE status = 'rejected'")]
            finally:
                db.close()
            with conn.cursor() as cur:
                in_log = len(log_store.indices_of(cur, accepted_ids))
                cur.execute("SELECT count(DISTINCT event_id) FROM quarantine WHERE event_id = ANY(%s)", (rejected_ids,))
                in_q = int(cur.fetchone()[0])  # type: ignore[index]
            problems = []
            if h != a + r + d + p:
                problems.append(f"handed {h} != accepted {a} + rejected {r} + duplicates {d} + pending {p}")
            if in_log != a:
                problems.append(f"{a - in_log} event(s) acknowledged as accepted are not in the log")
            if p:
                problems.append(f"{p} event(s) still pending")
            balances.append(PublisherBalance(pub, int(h), int(a), int(r), int(d), int(p), in_log, in_q,
                                             not problems, problems))
    finally:
        conn.close()
    total = {k: sum(getattr(b, k) for b in balances) for k in ("handed", "accepted", "rejected", "duplicates", "pending")}
    return {"publishers": [asdict(b) for b in balances], "total": total,
            "exact": all(b.exact for b in balances)}


def render(report: dict[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Conservation: handed = accepted + rejected + duplicates (+ pending)")
    for col in ("publisher", "handed", "accepted", "rejected", "duplicates", "pending", "in log", "exact"):
        t.add_column(col, justify="left" if col == "publisher" else "right")
    for b in report["publishers"]:
        t.add_row(b["publisher_id"], *(format_integer(int(b[k]), locale)
                                       for k in ("handed", "accepted", "rejected", "duplicates", "pending", "in_log")),
                  "yes" if b["exact"] else "NO: " + "; ".join(b["problems"]))
    console = Console(record=True, width=140)
    with console.capture() as cap:
        console.print(t)
    return cap.get() + ("exact" if report["exact"] else "NOT exact")
