"""Agent: reconcile transfers from ``accepted.transfers``, one transaction per chunk of records.

Each transaction advances the event-time clock, applies the events
(:func:`stream_processors.reconcilers.apply_transfer_events`) and records
the consumer's progress; flag changes and club contributions are produced
after the commit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from schemas.routing import ACCEPTED_TRANSFERS_TOPIC
from stream_processors import clock
from stream_processors.agents.reconciling import (
    Record,
    chunks,
    marks_of,
    publish_after_commit,
    unpack,
)
from stream_processors.context import Context, backlog_state, offsets
from stream_processors.pg import record_progress
from stream_processors.reconcilers import apply_transfer_events, thresholds
from stream_processors.rules.model import Contribution

__all__ = ["install"]


def install(app: Any, ctx: Context) -> None:
    settings = ctx.settings
    th = thresholds(settings)
    lateness = timedelta(seconds=settings.clock_lateness_s)
    pg = ctx.pg("transfers")
    group = ctx.group("reconcile-transfers")
    writer = clock.writer_id(group)  # this process's row of the forward-only clock
    topic = app.topic(ctx.topic(ACCEPTED_TRANSFERS_TOPIC), value_type=bytes, key_type=bytes)

    @app.agent(topic, name="reconcile-transfers")
    async def reconcile_transfers(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            cu = backlog_state(app, events)
            records: list[Record] = [(e, list(unpack(e))) for e in events]
            for chunk in chunks(records, settings.batch_size):
                evts = [ev for _e, evs in chunk for ev in evs if ev is not None]
                offs, mk = offsets([e for e, _ in chunk]), marks_of(chunk)

                def work(cur: Any) -> tuple[list[Any], list[Contribution]]:
                    clock.advance(cur, group, mk, cu)
                    out = apply_transfer_events(cur, evts, lambda: clock.now(cur, lateness, settings.clock_idle_s, writer=writer),
                                                th, ctx.keys)
                    record_progress(cur, group, offs, ctx.topic_ids)
                    return out

                envs, contributions = await pg.run(work)
                await publish_after_commit(ctx, envs, contributions, "transfers")
