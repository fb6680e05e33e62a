"""The Faust agents and timers of the processors, one small module each.

Each module has ``install(app, ctx)`` (``ctx``: :class:`stream_processors.context.Context`).
:data:`COMPONENTS` groups them under the names ``create_app(components=...)``
and ``CUENTAS_COMPONENTS`` take; the incarnation watch is always installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_processors.agents import (
    checkpointer,
    deadlines,
    gate,
    incarnation,
    receipt_documents,
    reconcile_projects,
    reconcile_transfers,
    redrive,
    review_requests,
    sequence_gaps,
)
from stream_processors.context import Context

__all__ = ["Install", "COMPONENTS", "ALWAYS"]

Install = Callable[[Any, Context], None]

#: What runs in every worker.
ALWAYS: tuple[Install, ...] = (incarnation.install,)

#: Component name -> what it installs, in installation order.
COMPONENTS: dict[str, tuple[Install, ...]] = {
    # The sequence-gap check follows the gate's records of (publisher, seq).
    "gate": (gate.install, sequence_gaps.install),
    "checkpointer": (checkpointer.install,),
    # Receipt documents for the static receipt check page (issue 18).
    "receipts": (receipt_documents.install,),
    "redrive": (redrive.install,),
    # Reviewers' requests change flags, which the reconcilers own (issue 14.8).
    "reconcilers": (reconcile_transfers.install, reconcile_projects.install, deadlines.install,
                    review_requests.install),
}
