"""Agent: reconcile projects from ``accepted.projects`` and the re-keyed club contributions.

Club contributions reach a project through ``contributions.by_project``
(the Faust repartition, keyed by project); each transaction advances the
event-time clock, applies the events and contributions
(:func:`stream_processors.reconcilers.apply_project_events`) and records the
consumer's progress; flag changes are produced after the commit.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from schemas.routing import ACCEPTED_PROJECTS_TOPIC, CONTRIBUTIONS_TOPIC
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
from stream_processors.reconcilers import apply_project_events, contribution_from_json, thresholds
from stream_processors.rules.model import Contribution

__all__ = ["install"]


def install(app: Any, ctx: Context) -> None:
    settings = ctx.settings
    th = thresholds(settings)
    lateness = timedelta(seconds=settings.clock_lateness_s)
    pg = ctx.pg("projects")
    group = ctx.group("reconcile-projects")
    writer = clock.writer_id(group)  # this process's row of the forward-only clock
    contributions_topic = ctx.topic(CONTRIBUTIONS_TOPIC)
    topic = app.topic(ctx.topic(ACCEPTED_PROJECTS_TOPIC), contributions_topic, value_type=bytes, key_type=bytes)

    @app.agent(topic, name="reconcile-projects")
    async def reconcile_projects(stream: Any) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
            cu = backlog_state(app, events)
            records: list[Record] = []
            contrib_of: dict[int, Contribution] = {}
            for e in events:
                if e.message.topic == contributions_topic:
                    contrib_of[id(e)] = contribution_from_json(json.loads(e.message.value))
                    records.append((e, [None]))
                else:
                    records.append((e, list(unpack(e))))
            for chunk in chunks(records, settings.batch_size):
                evts = [ev for _e, evs in chunk for ev in evs if ev is not None]
                contribs = [contrib_of[id(e)] for e, _ in chunk if id(e) in contrib_of]
                offs, mk = offsets([e for e, _ in chunk]), marks_of(chunk)

                def work(cur: Any) -> list[Any]:
                    clock.advance(cur, group, mk, cu)
                    out = apply_project_events(cur, evts, contribs,
                                               lambda: clock.now(cur, lateness, settings.clock_idle_s, writer=writer),
                                               th, ctx.keys)
                    record_progress(cur, group, offs, ctx.topic_ids)
                    return out

                envs = await pg.run(work)
                await publish_after_commit(ctx, envs, [], "projects")
