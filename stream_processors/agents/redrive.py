"""Timer: forward again the accepted events the reconcilers have not confirmed (leader only).

A forward produced after the gate's commit may be lost (ADR 0002): the event
stays in ``pending_reconcile`` until a reconciler stores it, and this timer
sends it again, from the log, after ``REDRIVE_AFTER_S``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from schemas.routing import accepted_topic_for, partition_key
from stream_processors.context import Context, Msg
from stream_processors.gate.store import due_for_redrive

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: Any, ctx: Context) -> None:
    pg = ctx.pg("redrive")
    after = ctx.settings.redrive_after_s

    @app.timer(max(1.0, after / 3), on_leader=True)
    async def redrive() -> None:
        rows = await pg.run(lambda cur: due_for_redrive(cur, after))
        if not rows:
            return
        log.info("re-driving %d accepted events not yet reconciled", len(rows))
        msgs: list[Msg] = []
        for event_type, idx, leaf in rows:
            ft = accepted_topic_for(event_type)
            if ft:
                payload = json.loads(leaf)["payload"]
                msgs.append((ctx.topic(ft), partition_key(event_type, payload), leaf, [("log-index", str(idx).encode())]))
        await ctx.send_all(msgs, lane="redrive")
