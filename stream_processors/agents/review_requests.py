"""Timer: apply the reviewers' requests the dashboard recorded (leader only; issue 14.8).

The dashboard has no writer credential and no key; this timer applies each
pending ``review_requests`` row with the processors' own (see
:mod:`stream_processors.review_requests`), so a reviewer's decision becomes a
``flag.changed`` signed by the platform, like every other flag change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from stream_processors.context import Context
from stream_processors.review_requests import Applied, apply_pending

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: Any, ctx: Context) -> None:
    pg = ctx.pg("review-requests")
    keys = ctx.keys

    @app.timer(ctx.settings.review_requests_interval_s, on_leader=True)
    async def review_requests() -> None:
        done: Sequence[Applied] = await pg.run(lambda cur: apply_pending(cur, keys))
        for a in done:
            log.info("review request %d on %s: %s%s", a.request_id, a.flag_id, a.outcome,
                     f" ({a.event_id})" if a.event_id else "")
