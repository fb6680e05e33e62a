"""The ingestion gate: a pure decision per batch and the SQL around it.

``decision``    :func:`decide_batch` (pure: parsed items, log knowledge,
                registry, time, limits, signature verdicts -> decisions)
``knowledge``   :class:`LogKnowledge`, what the log already knows of a batch
``signatures``  Ed25519 verification ahead of the decision, on threads
``store``       the gate's SQL, inside the caller's transaction

The Faust agent that runs it is :mod:`stream_processors.agents.gate`.
"""

from stream_processors.gate.decision import (
    AUTHENTICATED_REJECTIONS,
    INTEGRITY_REASONS,
    BatchDecision,
    Decision,
    GateLimits,
    Incoming,
    Parsed,
    decide_batch,
    needs_registry_reload,
    parse_item,
)
from stream_processors.gate.knowledge import KnowledgeQuery, Logged, LogKnowledge
from stream_processors.gate.store import load_registry

__all__ = [
    "INTEGRITY_REASONS",
    "AUTHENTICATED_REJECTIONS",
    "Incoming",
    "Parsed",
    "parse_item",
    "GateLimits",
    "Decision",
    "BatchDecision",
    "needs_registry_reload",
    "decide_batch",
    "Logged",
    "KnowledgeQuery",
    "LogKnowledge",
    "load_registry",
]
