"""What the log already knows about a batch, as a value for the gate's decision.

The gate's decision (:mod:`stream_processors.gate.decision`) never reads the
database: the adapter first asks the log the questions a batch raises (a
:class:`KnowledgeQuery`) and hands the answers over as a :class:`LogKnowledge`.
The questions are "is this event id logged, with which leaf hash and at
which index?", "which event holds this (publisher, seq)?" and "who owns this
transfer or project?" (a :class:`Subject`: the first registration of its id
that reached the log, ``docs/adr/0007-authority-and-time.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from schemas.envelope import Envelope
from schemas.routing import entity_of

__all__ = ["REGISTERING_TYPES", "Logged", "Subject", "KnowledgeQuery", "LogKnowledge", "subject_key"]

#: The event types that bring a subject into being, per subject kind.
REGISTERING_TYPES: Final[Mapping[str, str]] = {
    "transfer.sent": "transfer",
    "project.registered": "project",
}


@dataclass(frozen=True, slots=True)
class Logged:
    """An event already in the log: its RFC 9162 leaf hash and its index."""

    leaf_hash: bytes
    index: int


@dataclass(frozen=True, slots=True)
class Subject:
    """A transfer or a project as its first registration in the log made it: who owns it.

    ``owner`` published that ``transfer.sent`` (the operator: the gate only
    accepts one naming its publisher) or ``project.registered`` (the committee
    bound to ``club_id``).  A transfer's ``payout_agents`` may publish its
    payouts too; a project's ``verifiers`` alone may verify its milestones.
    ``origin_time`` is the registration's claimed time: nothing may settle a
    transfer before it.
    """

    kind: str  # transfer | project
    subject_id: str
    owner: str
    origin_time: datetime
    event_id: str
    log_index: int | None = None
    club_id: str | None = None
    payout_agents: frozenset[str] = frozenset()
    verifiers: frozenset[str] = frozenset()

    @classmethod
    def of(cls, env: Envelope, log_index: int | None = None) -> Subject | None:
        """The subject ``env`` registers (a ``transfer.sent`` or ``project.registered``), else None."""
        kind = REGISTERING_TYPES.get(env.event_type)
        if kind is None:
            return None
        p = env.payload
        ident = entity_of(env.event_type, p)
        assert ident is not None  # both registering types name their entity
        club = p.get("club_id") if kind == "project" else None
        return cls(
            kind=kind,
            subject_id=ident[1],
            owner=env.publisher_id,
            origin_time=env.time(),
            event_id=env.event_id,
            log_index=log_index,
            club_id=club if isinstance(club, str) else None,
            payout_agents=frozenset(p.get("payout_agents", ())),
            verifiers=frozenset(p.get("verifiers", ())),
        )


def subject_key(env: Envelope) -> tuple[str, str] | None:
    """``(kind, id)`` of the transfer or project ``env`` speaks about, or None (registry, flags)."""
    return entity_of(env.event_type, env.payload)


@dataclass(frozen=True, slots=True)
class KnowledgeQuery:
    """The questions a batch asks the log."""

    event_ids: frozenset[str] = frozenset()
    sequences: frozenset[tuple[str, int]] = frozenset()  # (publisher id, seq)
    subjects: frozenset[tuple[str, str]] = frozenset()  # (kind, id)

    @classmethod
    def for_envelopes(cls, envs: Iterable[Envelope]) -> KnowledgeQuery:
        ids: set[str] = set()
        seqs: set[tuple[str, int]] = set()
        subjects: set[tuple[str, str]] = set()
        for env in envs:
            ids.add(env.event_id)
            seqs.add((env.publisher_id, env.seq))
            key = subject_key(env)
            if key is not None:
                subjects.add(key)
        return cls(frozenset(ids), frozenset(seqs), frozenset(subjects))


@dataclass(frozen=True, slots=True)
class LogKnowledge:
    """The log's answers to a :class:`KnowledgeQuery` (absent keys: not in the log)."""

    entries: Mapping[str, Logged] = field(default_factory=dict)
    seq_owners: Mapping[tuple[str, int], str] = field(default_factory=dict)
    subjects: Mapping[tuple[str, str], Subject] = field(default_factory=dict)

    def logged(self, event_id: str) -> Logged | None:
        return self.entries.get(event_id)

    def seq_owner(self, publisher_id: str, seq: int) -> str | None:
        """The logged event id numbered ``seq`` by ``publisher_id``, if any."""
        return self.seq_owners.get((publisher_id, seq))

    def subject(self, kind: str, subject_id: str) -> Subject | None:
        """The transfer or project ``subject_id`` as the log registered it, if it did."""
        return self.subjects.get((kind, subject_id))
