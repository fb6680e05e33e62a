"""Timer: sign and store a checkpoint (C2SP tlog-checkpoint) when the log grew (leader only)."""

from __future__ import annotations

from typing import Any

from stream_processors.checkpointer import make_checkpoint
from stream_processors.context import Context

__all__ = ["install"]


def install(app: Any, ctx: Context) -> None:
    pg = ctx.pg("checkpointer")

    @app.timer(ctx.settings.checkpoint_interval_s, on_leader=True)
    async def checkpointer() -> None:
        await pg.run(lambda cur: make_checkpoint(cur, ctx.keys.log))
