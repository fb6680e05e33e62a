"""Timer: write the receipt documents of transfers whose events or flags changed (leader only; issue 18).

Against the newest witness-cosigned checkpoint, into the public site's
``receipts/`` (``PUBLIC_DIR``), each file atomically; the indexing of new
leaves and the choice of changed transfers are in :mod:`infra.receipt_docs`,
the documents themselves in :mod:`schemas.receipt_doc`.  A lookup then costs
the platform nothing: any static host serves the file.
"""

from __future__ import annotations

import logging
from typing import Any

from infra.receipt_docs import Written, refresh
from stream_processors.context import Context

__all__ = ["install"]

log = logging.getLogger(__name__)


def install(app: Any, ctx: Context) -> None:
    pg = ctx.pg("receipt-documents")
    public = ctx.settings.public_path

    @app.timer(ctx.settings.receipt_docs_interval_s, on_leader=True)
    async def receipt_documents() -> None:
        done: Written = await pg.run(lambda cur: refresh(cur, public))
        if done.documents:
            log.info("receipt documents: %d written against checkpoint %d (%d still due)",
                     done.documents, done.checkpoint_size, done.pending)
