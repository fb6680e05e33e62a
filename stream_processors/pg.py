"""A PostgreSQL worker thread for an asyncio processor: one connection, retries forever.

Faust agents run on an event loop; psycopg2 blocks.  Each processor gets one
dedicated thread and connection, so blocking never stalls heartbeats, and a
database restart only pauses processing: the unit of work is retried with
exponential backoff until it commits (it is idempotent and holds the
consumer's progress, so a retry after an unknown outcome is safe).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from infra.db import connect, describe_url
from schemas.errors import UnavailableService

__all__ = ["PgWorker", "record_progress"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class PgWorker:
    def __init__(self, url: str, schema: str, name: str) -> None:
        self.url, self.schema, self.name = url, schema, name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pg-{name}")
        self._conn: psycopg2.extensions.connection | None = None
        self.retries = 0

    def _connection(self) -> psycopg2.extensions.connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url, self.schema, retries=0, application_name=f"cuentas-{self.name}")
        return self._conn

    def run_sync(self, work: Callable[[Any], T], *, max_wait: float | None = None) -> T:
        """Run ``work(cursor)`` in a transaction; on a connection failure reconnect and retry."""
        delay = 0.2
        started = time.monotonic()
        while True:
            try:
                conn = self._connection()
                try:
                    with conn.cursor() as cur:
                        result = work(cur)
                    conn.commit()
                    return result
                except BaseException:
                    if not conn.closed:
                        conn.rollback()
                    raise
            except (psycopg2.OperationalError, psycopg2.InterfaceError, UnavailableService,
                    psycopg2.errors.SerializationFailure, psycopg2.errors.DeadlockDetected) as e:
                self.retries += 1
                if self._conn is not None and not self._conn.closed and isinstance(e, (psycopg2.OperationalError, psycopg2.InterfaceError)):
                    self._conn.close()
                if max_wait is not None and time.monotonic() - started > max_wait:
                    raise UnavailableService(f"{self.name}: PostgreSQL at {describe_url(self.url)} unavailable") from e
                log.warning("%s: database unavailable (%s); retrying in %.1fs", self.name, type(e).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self, work: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_sync, work)

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._pool.shutdown(wait=False)


def record_progress(cur: Any, group: str, offsets: dict[tuple[str, int], int], topic_ids: dict[str, str]) -> None:
    """Store the next offset to read per partition, in the caller's transaction."""
    from psycopg2.extras import execute_values

    if not offsets:
        return
    execute_values(
        cur,
        "INSERT INTO consumer_progress (group_id, topic, partition, topic_id, next_offset) VALUES %s"
        " ON CONFLICT (group_id, topic, partition) DO UPDATE SET"
        " next_offset = CASE WHEN consumer_progress.topic_id = EXCLUDED.topic_id"
        "   THEN GREATEST(consumer_progress.next_offset, EXCLUDED.next_offset) ELSE EXCLUDED.next_offset END,"
        " topic_id = EXCLUDED.topic_id, updated_at = now()",
        [(group, t, p, topic_ids.get(t, ""), o) for (t, p), o in sorted(offsets.items())],
    )
