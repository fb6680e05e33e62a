"""The ingestion gate's decision for a batch: pure, no cursor, no SQL, no I/O.

accepted   valid schema, valid signature by a registered key whose roles
           allow the type, claimed time in range, a publisher that may speak
           for the subject, not seen before: appended to the log (through the
           one writer) and forwarded.
duplicate  same event id, same bytes: acknowledged again, not appended.
rejected   kept in ``quarantine`` with a specific reason code and message.

Equivocation (same event id, other bytes), forged or role-violating events,
reused sequence numbers and events about a subject their publisher does not
own also raise integrity flags; an accepted event published long after its
claimed time raises ``published_late``.

Two clocks (``docs/adr/0007-authority-and-time.md``): ``now`` is the batch's
*arrival*, fixed once by the adapter and recorded as the entries'
``accepted_at``; an event's ``event_time`` is its *claimed* time.  In order,
after the signature: the time window (claimed at most ``max_future_skew``
after arrival, at least ``max_age`` before it unless inside the publisher's
declared backfill), the key's validity (at the claimed time, and not revoked
or rotated out at arrival), roles and party, then authority over the subject
against what the log knows of it (:class:`~stream_processors.gate.knowledge.Subject`):
``not_subject_owner``, ``subject_exists`` (a second registration of an id;
the first to reach the log wins, whatever time either claims) and
``time_before_origin`` (a settling event dated before the transfer it settles).
A subject the log does not know yet is judged later, by the reconcilers.

:func:`decide_batch` takes the parsed items, what the log already knows about
them (:class:`~stream_processors.gate.knowledge.LogKnowledge`), the trust
registry, the time, the limits and the signature verdicts computed ahead (on
threads, by the adapter), and returns a :class:`BatchDecision`: one decision
per item, the order in which the accepted ones are appended, and the
registry after the batch's registry events.  The adapter
(:mod:`stream_processors.gate.store`, :mod:`stream_processors.agents.gate`)
reads the knowledge before and writes the outcome after, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from schemas.catalog import REGISTRY_EVENT_TYPES
from schemas.envelope import Envelope, parse_envelope
from schemas.errors import MalformedInput, VerificationError
from schemas.flags import FlagType, Severity
from schemas.merkle import leaf_hash
from schemas.registry import PublisherInfo, SignatureKey, TrustRegistry
from schemas.thresholds import LATE_PUBLICATION
from schemas.times import format_time, parse_time
from stream_processors.gate.knowledge import LogKnowledge, Subject, subject_key

__all__ = [
    "INTEGRITY_REASONS",
    "AUTHORITY_REASONS",
    "AUTHENTICATED_REJECTIONS",
    "Outcome",
    "Incoming",
    "Parsed",
    "parse_item",
    "GateLimits",
    "Decision",
    "BatchDecision",
    "needs_registry_reload",
    "authority_refusal",
    "decide_batch",
]

#: Rejection reasons that are attacks or integrity failures, not clumsy input;
#: each raises an integrity flag against the publisher named in the event.
INTEGRITY_REASONS: dict[str, tuple[FlagType, Severity]] = {
    "equivocation": ("equivocation", "critical"),
    "bad_signature": ("forged_signature", "critical"),
    "key_mismatch": ("forged_signature", "critical"),
    "unknown_key": ("forged_signature", "high"),
    "role_not_allowed": ("role_violation", "high"),
    "party_mismatch": ("role_violation", "high"),
    "key_revoked": ("revoked_key_used", "high"),
    "publisher_revoked": ("revoked_key_used", "high"),
    "key_expired": ("revoked_key_used", "high"),
    "seq_reused": ("equivocation", "high"),
    # A publisher speaking for a subject it does not own, a second registration
    # of an existing id, a settlement dated before its origin: one flag per
    # offending event, about the transfer or project (``integrity_spec``).
    "not_subject_owner": ("authority_violation", "high"),
    "subject_exists": ("authority_violation", "high"),
    "time_before_origin": ("authority_violation", "high"),
}

#: The reasons of :func:`authority_refusal`: their flag is about the subject, keyed by the event id.
AUTHORITY_REASONS: Final = frozenset({"not_subject_owner", "subject_exists", "time_before_origin"})

#: Rejections decided after the signature verified: the publisher really sent
#: this sequence number, so it is not a gap.
AUTHENTICATED_REJECTIONS: Final = frozenset({
    "time_out_of_range", "role_not_allowed", "party_mismatch", "key_revoked", "key_expired",
    "publisher_revoked", "key_not_yet_valid", "already_registered", *AUTHORITY_REASONS,
})

Outcome = Literal["accepted", "duplicate", "rejected"]

_NO_SIGNATURES: Final[Mapping[SignatureKey, bool]] = {}


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes
    source: str  # "topic/partition/offset", for the quarantine record


@dataclass(frozen=True, slots=True)
class Parsed:
    """One incoming item after parsing: its envelope, or why it could not be parsed."""

    raw: bytes
    source: str
    envelope: Envelope | None
    reason: str = ""  # the parse error's reason code when ``envelope`` is None
    message: str = ""
    field: str = ""  # the parse error's JSON pointer, when it names one


def parse_item(item: Incoming, max_event_bytes: int) -> Parsed:
    try:
        env = parse_envelope(item.raw, max_bytes=max_event_bytes)
    except MalformedInput as e:
        return Parsed(item.raw, item.source, None, e.reason, str(e), e.field or "")
    return Parsed(item.raw, item.source, env)


@dataclass(frozen=True, slots=True)
class GateLimits:
    max_event_bytes: int
    max_future_skew: timedelta  # claimed time at most this after arrival
    max_age: timedelta  # claimed time at least this before arrival, outside the backfill
    late_publication: timedelta = LATE_PUBLICATION  # beyond: accepted, flagged published_late


@dataclass(frozen=True, slots=True)
class Decision:
    """The fate of one item; ``log_index`` once appended (or, for a duplicate, its logged copy's)."""

    outcome: Outcome
    raw: bytes
    source: str
    envelope: Envelope | None = None
    reason: str = ""
    message: str = ""
    log_index: int | None = None
    #: The JSON pointer of the offending part, when known: the public sees it only through
    #: ``schemas.rejections.public_path`` (never a value nor an unknown property name).
    field: str = ""
    #: Accepted, but published more than ``late_publication`` after its claimed time, outside its backfill.
    late: bool = False

    @property
    def event_id(self) -> str | None:
        return None if self.envelope is None else self.envelope.event_id

    @property
    def publisher_id(self) -> str | None:
        return None if self.envelope is None else self.envelope.publisher_id

    @property
    def event_type(self) -> str | None:
        return None if self.envelope is None else self.envelope.event_type

    @property
    def raises_integrity_flag(self) -> bool:
        return self.outcome == "rejected" and self.reason in INTEGRITY_REASONS and bool(self.publisher_id)

    @property
    def counts_for_sequences(self) -> bool:
        """Whether the publisher really sent this sequence number (see ``sequence_gaps``).

        Only authenticated events count: a forger must not be able to open or
        close gaps in someone else's numbering.
        """
        return self.envelope is not None and (
            self.outcome == "accepted" or self.reason in AUTHENTICATED_REJECTIONS
        )


@dataclass(frozen=True, slots=True)
class BatchDecision:
    decisions: tuple[Decision, ...]  # one per parsed item, in the batch's order
    log_order: tuple[int, ...]  # positions of the accepted decisions, in the order to append them
    registry: TrustRegistry  # the registry after the batch (the one given when nothing applied)
    applied: tuple[Envelope, ...] = ()  # the registry events the batch applied, in order
    arrived_at: datetime | None = None  # the batch's arrival (``now``): the entries' accepted_at

    def accepted(self) -> list[Decision]:
        """The accepted decisions in log order (registry events first)."""
        return [self.decisions[i] for i in self.log_order]

    def rejected(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "rejected"]

    def duplicates(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "duplicate"]

    def integrity(self) -> list[Decision]:
        """Rejections that raise an integrity flag against the publisher they name."""
        return [d for d in self.decisions if d.raises_integrity_flag]

    def late(self) -> list[Decision]:
        """Accepted events published late (each raises ``published_late``)."""
        return [d for d in self.decisions if d.outcome == "accepted" and d.late]

    def subjects(self) -> list[Subject]:
        """The subjects the batch's accepted events register, with their log indices once logged."""
        out: list[Subject] = []
        for i in self.log_order:
            d = self.decisions[i]
            sub = None if d.envelope is None else Subject.of(d.envelope, d.log_index)
            if sub is not None:
                out.append(sub)
        return out

    def sequence_evidence(self) -> list[Envelope]:
        """Envelopes whose (publisher, seq) the publisher really sent (accepted or authenticated)."""
        return [d.envelope for d in self.decisions if d.counts_for_sequences and d.envelope is not None]

    def logged(self, indices: Sequence[int]) -> BatchDecision:
        """The same decisions with the log indices the append gave the accepted ones."""
        if len(indices) != len(self.log_order):
            raise ValueError(f"{len(indices)} log indices for {len(self.log_order)} accepted events")
        ds = list(self.decisions)
        for pos, idx in zip(self.log_order, indices, strict=True):
            ds[pos] = replace(ds[pos], log_index=idx)
        return replace(self, decisions=tuple(ds))


def _is_registry(env: Envelope) -> bool:
    return env.event_type in REGISTRY_EVENT_TYPES


def needs_registry_reload(envelopes: Iterable[Envelope], registry: TrustRegistry) -> bool:
    """Whether an envelope names a publisher or key ``registry`` does not know.

    Another worker may have accepted a registration or rotation since the
    adapter loaded its registry, so it reloads from the log before deciding.
    Publishers registered or rotated by a registry event of the same batch
    do not count: the decision applies those events first.
    """
    envs = list(envelopes)
    in_batch = {str(e.payload.get("publisher_id")) for e in envs if _is_registry(e)}
    return any(
        not _is_registry(e) and e.publisher_id not in in_batch and not registry.knows(e.publisher_id, e.key_id)
        for e in envs
    )


def _admit(env: Envelope, registry: TrustRegistry, now: datetime, limits: GateLimits,
           signatures: Mapping[SignatureKey, bool]) -> tuple[str, str] | tuple[str, str, str] | PublisherInfo:
    """(reason, message[, schema path]) when ``env`` may not enter the log on its own merits, else its publisher.

    Who signed it first (a forgery must never earn its victim a flag), then
    the time window, then the key's validity at the claimed time and at
    arrival, roles and party.  The registry authority's own events are judged
    by arrival alone: their claimed time carries no meaning (a registration's
    validity is in its payload), so only the future skew applies to them.
    """
    try:
        info, key = registry.authenticate(env, signatures=signatures)
    except VerificationError as e:
        return e.reason, str(e)
    t = env.time()
    if t > now + limits.max_future_skew:
        return ("time_out_of_range", f"event_time {env.event_time} is more than {limits.max_future_skew} in the future",
                "/header/event_time")
    if (env.event_type not in REGISTRY_EVENT_TYPES and t < now - limits.max_age and not info.in_backfill(t)):
        return ("time_out_of_range", (f"event_time {env.event_time} is more than {_days(limits.max_age)} before its "
                                      f"arrival at {format_time(now)}, outside the publisher's declared backfill"),
                "/header/event_time")
    try:
        registry.check_policy(env, info, key, arrived_at=now)
    except VerificationError as e:
        return e.reason, str(e)
    return info


def _days(d: timedelta) -> str:
    days = d / timedelta(days=1)
    return f"{days:g} days"


#: Settling events of a transfer and the payload time each claims.
_SETTLING: Final[Mapping[str, str]] = {
    "transfer.paid_out": "paid_at",
    "transfer.cancelled": "cancelled_at",
    "transfer.refunded": "refunded_at",
}


#: Project events only the registering committee (the project's owner) may publish
#: (issue 15: a cancellation and the returns it promises are the committee's word).
_OWNER_ONLY_PROJECT: Final = frozenset({"project.cancelled", "project.funds_returned"})


def authority_refusal(env: Envelope, info: PublisherInfo,
                      subject: Subject | None) -> tuple[str, str, str] | None:
    """(reason, schema path, message) when ``info`` may not say ``env`` about its subject, else None.

    ``subject`` is what the log (or the batch) already registered under the
    event's transfer or project id, None if nothing.  What needs no subject
    is decided anyway (a ``transfer.sent`` naming another operator, a
    ``project.registered`` for another club, a verification signed for
    someone else); the rest waits for the subject, and the reconcilers judge
    it once it is known.  Messages name the rule and the path, never a value
    from the event (``docs/adr/0007-authority-and-time.md``).
    """
    et, p, pub = env.event_type, env.payload, env.publisher_id
    if et == "transfer.sent":
        if p.get("operator") != pub:
            return ("not_subject_owner", "/payload/operator",
                    "a transfer.sent is published by the operator it names, and only by it")
        if subject is not None:
            return ("subject_exists", "/payload/transfer_id",
                    "this transfer id is already registered in the log; the first registration stands")
        return None
    if et == "project.registered":
        if info.club_id is None or p.get("club_id") != info.club_id:
            return ("not_subject_owner", "/payload/club_id",
                    "a project is registered by the committee bound to its club in the registry")
        if subject is not None:
            return ("subject_exists", "/payload/project_id",
                    "this project id is already registered in the log; the first registration stands")
        return None
    if et == "milestone.verified" and p.get("verifier_id") != pub:
        return ("not_subject_owner", "/payload/verifier_id",
                "a verification is signed by the verifier it names")
    if subject is None:
        return None
    if et in _SETTLING:
        if pub != subject.owner and not (et == "transfer.paid_out" and pub in subject.payout_agents):
            who = "operator or a payout agent it named" if et == "transfer.paid_out" else "operator"
            return ("not_subject_owner", "/header/publisher_id",
                    f"only the transfer's {who} may publish its {et}")
        field = _SETTLING[et]
        for path, t in ((f"/payload/{field}", _time_or_none(p.get(field))), ("/header/event_time", env.time())):
            if t is not None and t < subject.origin_time:
                return ("time_before_origin", path,
                        f"a {et} may not be dated before the transfer.sent it settles")
        return None
    if et == "milestone.reported" and pub != subject.owner:
        return ("not_subject_owner", "/header/publisher_id",
                "only the committee that registered the project reports its milestones")
    if et in _OWNER_ONLY_PROJECT:
        if pub != subject.owner:
            return ("not_subject_owner", "/header/publisher_id",
                    f"only the committee that registered the project may publish its {et}")
        if et == "project.cancelled":
            for path, t in (("/payload/cancelled_at", _time_or_none(p.get("cancelled_at"))),
                            ("/header/event_time", env.time())):
                if t is not None and t < subject.origin_time:
                    return ("time_before_origin", path,
                            "a project.cancelled may not be dated before the project.registered")
    if et == "milestone.verified":
        if pub == subject.owner:
            return ("not_subject_owner", "/header/publisher_id",
                    "the committee that registered a project never verifies its milestones")
        if pub not in subject.verifiers:
            return ("not_subject_owner", "/header/publisher_id",
                    "only a verifier the project names may verify its milestones")
    return None


def _time_or_none(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except MalformedInput:
        return None


def decide_batch(parsed: Sequence[Parsed], known: LogKnowledge, registry: TrustRegistry, now: datetime,
                 limits: GateLimits, signatures: Mapping[SignatureKey, bool] = _NO_SIGNATURES) -> BatchDecision:
    """Decide every item of a batch arriving at ``now``.

    ``known`` answers :meth:`KnowledgeQuery.for_envelopes` over the batch's
    envelopes; ``signatures`` are verdicts computed ahead (a signature they do
    not cover is verified here).  ``registry`` is not modified: when the batch
    holds registry events, they are applied to a copy (arriving at ``now``),
    returned as ``BatchDecision.registry``.
    """
    decisions: list[Decision] = [
        Decision("accepted", p.raw, p.source, p.envelope) if p.envelope is not None
        else Decision("rejected", p.raw, p.source, reason=p.reason, message=p.message, field=p.field)
        for p in parsed
    ]
    # Registry events first, so a batch holding a registration and the new
    # publisher's first events accepts both.
    order = sorted(((i, p.envelope) for i, p in enumerate(parsed) if p.envelope is not None),
                   key=lambda item: 0 if item[1].event_type.startswith("publisher.") else 1)
    reg = registry
    applied: list[Envelope] = []
    log_order: list[int] = []
    batch_hashes: dict[str, bytes] = {}  # event id -> leaf hash, accepted in this batch
    batch_owners: dict[tuple[str, int], str] = {}  # (publisher, seq) -> event id, accepted in this batch
    batch_subjects: dict[tuple[str, str], Subject] = {}  # registered in this batch (first in batch order)

    def reject(i: int, reason: str, message: str, field: str = "") -> None:
        decisions[i] = replace(decisions[i], outcome="rejected", reason=reason, message=message, field=field)

    for i, env in order:
        lh = leaf_hash(env.leaf_bytes())
        logged = known.logged(env.event_id)
        prior: tuple[bytes, int | None] | None = None if logged is None else (logged.leaf_hash, logged.index)
        if prior is None and env.event_id in batch_hashes:
            prior = (batch_hashes[env.event_id], None)
        if prior is not None and prior[0] == lh:
            # The very bytes of an event already accepted (so already
            # authenticated): a replay or a redelivery, acknowledged again.
            decisions[i] = replace(decisions[i], outcome="duplicate", reason="duplicate", log_index=prior[1])
            continue
        # Authenticate before anything is concluded about the publisher:
        # otherwise an unsigned envelope could get a flag raised against it.
        admitted = _admit(env, reg, now, limits, signatures)
        if isinstance(admitted, tuple):
            reject(i, *admitted)
            continue
        if prior is not None:
            reject(i, "equivocation", f"event id {env.event_id} was already logged with different content")
            continue
        pair = (env.publisher_id, env.seq)
        owner = batch_owners.get(pair) or known.seq_owner(*pair)
        if owner is not None and owner != env.event_id:
            reject(i, "seq_reused", f"sequence number {env.seq} of {env.publisher_id} already belongs to event {owner}")
            continue
        if env.event_type.startswith("publisher."):
            if reg is registry:
                reg = registry.copy()  # the caller's registry stays as it was
            try:
                reg.apply(env, signatures=signatures, arrived_at=now)
            except MalformedInput as e:
                reject(i, e.reason, str(e), e.field or "")
                continue
            except VerificationError as e:
                reject(i, e.reason, str(e))
                continue
            applied.append(env)
        else:
            key = subject_key(env)
            subject = None if key is None else (batch_subjects.get(key) or known.subject(*key))
            refused = authority_refusal(env, admitted, subject)
            if refused is not None:
                reason, field, message = refused
                reject(i, reason, f"{field}: {message}", field)
                continue
            t = env.time()
            if now - t > limits.late_publication and not admitted.in_backfill(t):
                decisions[i] = replace(decisions[i], late=True)
            sub = Subject.of(env)
            if sub is not None:
                batch_subjects[(sub.kind, sub.subject_id)] = sub
        batch_hashes[env.event_id] = lh
        batch_owners[pair] = env.event_id
        log_order.append(i)
    return BatchDecision(tuple(decisions), tuple(log_order), reg, tuple(applied), now)
