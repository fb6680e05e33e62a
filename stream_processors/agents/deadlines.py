"""Timer: re-evaluate entities whose deadline the event-time clock passed, and dirty projects (leader only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from stream_processors import clock
from stream_processors.agents.reconciling import publish_after_commit
from stream_processors.context import Context
from stream_processors.reconcilers import run_deadlines, thresholds

__all__ = ["install"]


def install(app: Any, ctx: Context) -> None:
    settings = ctx.settings
    th = thresholds(settings)
    lateness = timedelta(seconds=settings.clock_lateness_s)
    pg = ctx.pg("deadlines")
    writer = clock.writer_id(ctx.group("deadlines"))

    @app.timer(1.0, on_leader=True)
    async def deadlines() -> None:
        envs, contributions = await pg.run(
            lambda cur: run_deadlines(cur, th, ctx.keys, lateness, idle_s=settings.clock_idle_s,
                                     writer=writer))
        await publish_after_commit(ctx, envs, contributions, "deadlines")
