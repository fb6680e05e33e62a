"""The publisher's outbox: what it handed over, kept until the platform confirms it.

A local SQLite file per publisher (the publisher runs on its own machine, not
next to the platform's database).  Each event is stored, with its sequence
number, BEFORE it is sent; its status changes only when an acknowledgement
arrives: accepted (it is in the log), duplicate (the log had it already) or
rejected (with the platform's reason).  Pending events are republished until
confirmed; the platform deduplicates by event id.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outbox", "OutboxRow", "Counts", "RETRYABLE_REASONS", "RETRY_ATTEMPTS"]

#: Rejections that may be a race, not a verdict: the publisher's registration
#: (or key rotation) may simply not have reached the gate yet.  Such events
#: stay pending and are republished, up to RETRY_ATTEMPTS hand-overs in all;
#: after that the rejection is final.
RETRYABLE_REASONS = frozenset({"unknown_publisher", "unknown_key"})
RETRY_ATTEMPTS = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id     TEXT PRIMARY KEY,
    seq          INTEGER,
    event_type   TEXT,
    topic        TEXT NOT NULL,
    key          BLOB NOT NULL,
    raw          BLOB NOT NULL,
    handed       INTEGER NOT NULL DEFAULT 1,
    status       TEXT NOT NULL DEFAULT 'pending',
    reason       TEXT,
    message      TEXT,
    log_index    INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_sent_at REAL,
    confirmed_at REAL
);
CREATE INDEX IF NOT EXISTS events_pending ON events (status, last_sent_at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRow:
    event_id: str
    topic: str
    key: bytes
    raw: bytes


@dataclass(frozen=True)
class Counts:
    handed: int
    accepted: int
    rejected: int
    duplicates: int
    pending: int

    def as_dict(self) -> dict[str, int]:
        return {"handed": self.handed, "accepted": self.accepted, "rejected": self.rejected,
                "duplicates": self.duplicates, "pending": self.pending}


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # sequence numbers: gapless per publisher, allocated with the insert
    def next_seq(self) -> int:
        row = self.db.execute("SELECT v FROM meta WHERE k = 'seq'").fetchone()
        return int(row[0]) + 1 if row else 1

    def get_meta(self, k: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, k: str, v: str) -> None:
        self.db.execute("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v", (k, v))

    def add(self, event_id: str, seq: int | None, event_type: str | None, topic: str, key: bytes, raw: bytes) -> bool:
        """Store an event before sending; False if the same event id was handed before."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                "INSERT INTO events (event_id, seq, event_type, topic, key, raw) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(event_id) DO UPDATE SET handed = handed + 1",
                (event_id, seq, event_type, topic, key, raw),
            )
            new = self.db.execute("SELECT handed FROM events WHERE event_id = ?", (event_id,)).fetchone()[0] == 1
            if seq is not None and new:
                self.set_meta("seq", str(max(seq, self.next_seq() - 1)))
            self.db.execute("COMMIT")
            _ = cur
            return bool(new)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def add_many(self, rows: Iterable[tuple[str, int | None, str | None, str, bytes, bytes]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            last_seq = None
            for event_id, seq, et, topic, key, raw in rows:
                self.db.execute(
                    "INSERT INTO events (event_id, seq, event_type, topic, key, raw) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(event_id) DO UPDATE SET handed = handed + 1",
                    (event_id, seq, et, topic, key, raw),
                )
                if seq is not None:
                    last_seq = max(seq, last_seq or 0)
            if last_seq is not None:
                cur = self.next_seq() - 1
                self.set_meta("seq", str(max(cur, last_seq)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def mark_sent(self, event_ids: Iterable[str]) -> None:
        now = time.time()
        self.db.executemany(
            "UPDATE events SET attempts = attempts + 1, last_sent_at = ? WHERE event_id = ?",
            [(now, e) for e in event_ids],
        )

    def apply_acks(self, results: Iterable[dict[str, object]]) -> int:
        """Record acknowledgements; return how many pending events they settled."""
        now = time.time()
        settled = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for r in results:
                status = str(r.get("status"))
                if status not in ("accepted", "duplicate", "rejected"):
                    continue
                if status == "rejected" and r.get("reason") in RETRYABLE_REASONS:
                    cur = self.db.execute(
                        "UPDATE events SET reason = ?, message = ? WHERE event_id = ? AND status = 'pending'"
                        " AND attempts < ?",
                        (r.get("reason"), r.get("message"), r.get("event_id"), RETRY_ATTEMPTS),
                    )
                    if cur.rowcount:
                        continue  # still pending: republished later
                cur = self.db.execute(
                    "UPDATE events SET status = ?, reason = ?, message = ?, log_index = ?, confirmed_at = ?"
                    " WHERE event_id = ? AND status = 'pending'",
                    (status, r.get("reason"), r.get("message"), r.get("log_index"), now, r.get("event_id")),
                )
                settled += cur.rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return settled

    def due_for_resend(self, older_than_s: float, limit: int = 10000) -> list[OutboxRow]:
        cutoff = time.time() - older_than_s
        rows = self.db.execute(
            "SELECT event_id, topic, key, raw FROM events WHERE status = 'pending'"
            " AND (last_sent_at IS NULL OR last_sent_at < ?) ORDER BY seq LIMIT ?",
            (cutoff, limit),
        ).fetchall()
        return [OutboxRow(e, t, bytes(k), bytes(r)) for e, t, k, r in rows]

    def pending(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM events WHERE status = 'pending'").fetchone()[0])

    def counts(self) -> Counts:
        row = self.db.execute(
            "SELECT coalesce(sum(handed), 0),"
            " coalesce(sum(status IN ('accepted', 'duplicate')), 0),"
            " coalesce(sum(status = 'rejected'), 0),"
            " coalesce(sum(handed - 1), 0),"
            " coalesce(sum(status = 'pending'), 0) FROM events"
        ).fetchone()
        return Counts(*(int(x) for x in row))

    def rejected(self) -> Iterator[tuple[str, str | None, str | None]]:
        yield from self.db.execute("SELECT event_id, reason, message FROM events WHERE status = 'rejected' ORDER BY seq")

    def status_of(self, event_id: str) -> tuple[str, str | None, str | None, int | None] | None:
        row = self.db.execute("SELECT status, reason, message, log_index FROM events WHERE event_id = ?", (event_id,)).fetchone()
        return (row[0], row[1], row[2], row[3]) if row else None

    def accepted_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT event_id FROM events WHERE status IN ('accepted','duplicate')")]
