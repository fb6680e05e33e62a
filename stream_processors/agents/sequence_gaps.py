"""Timer: open and resolve ``sequence_gap`` flags (leader only), installed with the gate."""

from __future__ import annotations

from typing import Any

from schemas.routing import FLAGS_TOPIC, partition_key
from stream_processors.context import Context
from stream_processors.sequence_gaps import check_gaps

__all__ = ["install"]


def install(app: Any, ctx: Context) -> None:
    pg = ctx.pg("sequence-gaps")
    quiet = ctx.settings.redrive_after_s
    gate_group = ctx.group("gate")  # gaps age only once the gate has read everything

    @app.timer(max(1.0, quiet / 3), on_leader=True)
    async def sequence_gaps() -> None:
        envs = await pg.run(lambda cur: check_gaps(cur, ctx.keys, quiet, gate_group, ctx.settings.clock_idle_s))
        if envs:
            await ctx.send_all([(ctx.topic(FLAGS_TOPIC), partition_key(e.event_type, e.payload), e.leaf_bytes(), None)
                                for e in envs], lane="gaps")
