"""What the log already knows about a batch, as a value for the gate's decision.

The gate's decision (:mod:`stream_processors.gate.decision`) never reads the
database: the adapter first asks the log the questions a batch raises (a
:class:`KnowledgeQuery`) and hands the answers over as a :class:`LogKnowledge`.
Today the questions are "is this event id logged, with which leaf hash and at
which index?" and "which event holds this (publisher, seq)?"; further facts
(for example who owns a transfer or a project) join as new fields of both,
leaving the existing ones as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas.envelope import Envelope

__all__ = ["Logged", "KnowledgeQuery", "LogKnowledge"]


@dataclass(frozen=True, slots=True)
class Logged:
    """An event already in the log: its RFC 9162 leaf hash and its index."""

    leaf_hash: bytes
    index: int


@dataclass(frozen=True, slots=True)
class KnowledgeQuery:
    """The questions a batch asks the log."""

    event_ids: frozenset[str] = frozenset()
    sequences: frozenset[tuple[str, int]] = frozenset()  # (publisher id, seq)

    @classmethod
    def for_envelopes(cls, envs: Iterable[Envelope]) -> KnowledgeQuery:
        ids: set[str] = set()
        seqs: set[tuple[str, int]] = set()
        for env in envs:
            ids.add(env.event_id)
            seqs.add((env.publisher_id, env.seq))
        return cls(frozenset(ids), frozenset(seqs))


@dataclass(frozen=True, slots=True)
class LogKnowledge:
    """The log's answers to a :class:`KnowledgeQuery` (absent keys: not in the log)."""

    entries: Mapping[str, Logged] = field(default_factory=dict)
    seq_owners: Mapping[tuple[str, int], str] = field(default_factory=dict)

    def logged(self, event_id: str) -> Logged | None:
        return self.entries.get(event_id)

    def seq_owner(self, publisher_id: str, seq: int) -> str | None:
        """The logged event id numbered ``seq`` by ``publisher_id``, if any."""
        return self.seq_owners.get((publisher_id, seq))
