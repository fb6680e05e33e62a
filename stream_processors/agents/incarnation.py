"""Exit when the broker's topics are a new incarnation, so the supervisor restarts the worker.

A broker that lost its topics (the embedded broker after a restart, or a
cluster rebuilt from scratch) leaves aiokafka's consumer wedged: it never
fetches again.  Each worker watches the topics' incarnation (the topic id in
Metadata) and, when it changes, exits with :data:`EXIT_NEW_INCARNATION` so
its supervisor starts it afresh; uncommitted work is simply redone (ADR 0002).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from infra.kafka import topic_ids
from schemas.routing import FAMILIES
from stream_processors.context import Context

__all__ = ["EXIT_NEW_INCARNATION", "install"]

#: Exit status of a worker that left because the broker's topics were recreated.
EXIT_NEW_INCARNATION = 75

log = logging.getLogger(__name__)


def install(app: Any, ctx: Context) -> None:
    watched = ctx.topic(FAMILIES["transfer"].publish_topic)
    seen_ids: dict[str, str] = {}

    def incarnation_changed() -> bool:
        try:
            now_id = topic_ids(ctx.settings, [watched]).get(watched, "")
        except Exception:
            return False
        if not now_id:
            return False
        first = seen_ids.setdefault(watched, now_id)
        return first != now_id

    @app.timer(5.0)
    async def incarnation_watch() -> None:
        if await asyncio.get_running_loop().run_in_executor(None, incarnation_changed):
            log.error("the broker's topics are a new incarnation (broker restarted or rebuilt); "
                      "exiting so the supervisor restarts this worker with fresh consumers")
            logging.shutdown()
            os._exit(EXIT_NEW_INCARNATION)
