"""What the reconcilers' agents and the deadline timer share.

Reading the gate's forwards (a bundle, ADR 0005, or a single envelope),
cutting a Kafka batch into transactions of whole records, the event-time
marks of a chunk, and producing flag changes and re-keyed contributions
after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from schemas.routing import CONTRIBUTIONS_TOPIC, FLAGS_TOPIC, partition_key
from stream_processors.context import Context, Msg
from stream_processors.forwarding import decode_bundle, is_bundle
from stream_processors.reconcilers import contribution_to_json, evt_of, parse_forwarded
from stream_processors.rules.model import Contribution, Evt

__all__ = ["Record", "unpack", "chunks", "marks_of", "publish_after_commit"]

log = logging.getLogger(__name__)

#: One Kafka record and the events it carries (None for a contribution).
Record = tuple[Any, list[Evt | None]]
#: a record with the events it carries (a reconciler's Record, the gate's items)
_R = TypeVar("_R", bound=tuple[Any, Sequence[Any]])


def _log_index(msg: Any) -> int | None:
    for k, v in msg.headers or ():
        if k == "log-index":
            return int(v)
    return None


def unpack(e: Any) -> list[Evt]:
    """The accepted events a forwarded record carries: a bundle (ADR 0005) or a single envelope.

    Only the gate writes these topics, from events it logged.  A record
    that cannot be read is logged and skipped: whatever it should have
    carried is still in the log and unconfirmed in ``pending_reconcile``,
    so the re-drive forwards it again.
    """
    m = e.message
    try:
        if is_bundle(m.headers):
            return [evt_of(o, idx) for idx, o in decode_bundle(m.value)]
        return [parse_forwarded(m.value, _log_index(m))]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        log.error("unreadable forwarded record %s/%s/%s skipped (%s: %s); the re-drive will forward its events"
                  " again from the log", m.topic, m.partition, m.offset, type(err).__name__, err)
        return []


def chunks(records: Sequence[_R], batch_size: int) -> list[list[_R]]:
    """Consecutive records holding at most ``batch_size`` events each (at least one record per chunk):
    each chunk is one transaction, so progress always covers whole records (the gate's and the
    reconcilers' alike)."""
    out: list[list[_R]] = [[]]
    n = 0
    for r in records:
        if out[-1] and n + len(r[1]) > batch_size:
            out.append([])
            n = 0
        out[-1].append(r)
        n += len(r[1])
    return [c for c in out if c]


def marks_of(chunk: Sequence[Record]) -> dict[tuple[str, int], datetime]:
    """The latest event time per (topic, partition) of a chunk, for the event-time clock."""
    out: dict[tuple[str, int], datetime] = {}
    for e, evs in chunk:
        key = (e.message.topic, e.message.partition)
        for ev in evs:
            if ev is not None and (key not in out or ev.event_time > out[key]):
                out[key] = ev.event_time
    return out


async def publish_after_commit(ctx: Context, flag_envs: Sequence[Any], contributions: Sequence[Contribution],
                               lane: str) -> None:
    msgs: list[Msg] = [
        (ctx.topic(FLAGS_TOPIC), partition_key(e.event_type, e.payload), e.leaf_bytes(), None) for e in flag_envs]
    msgs += [(ctx.topic(CONTRIBUTIONS_TOPIC), c.project_id.encode(), contribution_to_json(c), None)
             for c in contributions]
    await ctx.send_all(msgs, lane=lane)
