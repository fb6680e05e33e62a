"""The trust registry: who may publish what, with which key, and when.

A pure state machine.  Its root of trust is one key, the registry
authority's (a ``VerifierKey`` whose name, e.g. ``registry.cuentasclaras``,
is the ``publisher_id`` of every registry event).  Only events signed by that
key change the registry: ``publisher.registered`` admits a publisher with its
kind, roles, government party and first key; ``publisher.key_rotated`` adds a
key and bounds the older ones; ``publisher.revoked`` revokes one key or the
whole publisher from a given time on.

``authorize`` answers, for any envelope: was it signed by a key that was
valid for this publisher, and may this publisher publish this type of event
(and, for a government, about this party)?  The gate asks it in two steps,
:meth:`TrustRegistry.authenticate` (who really signed it) and
:meth:`TrustRegistry.check_policy` (may they), so that it can judge the
event's time in between with the publisher's declared backfill.

Order of the checks, and why the signature comes third rather than last:
``unknown_publisher``, ``unknown_key``, ``bad_signature``, then the policy
checks ``key_not_yet_valid``, ``key_revoked``, ``key_expired``,
``publisher_revoked``, ``role_not_allowed``, ``party_mismatch``.  Policy
failures become public flags that name the publisher as accountable
(``revoked_key_used``, ``role_violation``), so they must only ever be raised
for events the publisher's key really signed; anyone can forge an envelope
that *claims* a revoked key, and that must read as ``bad_signature``
(a forgery), not as the publisher's misconduct.

Two clocks (``docs/adr/0007-authority-and-time.md``).  A key must be valid at
the event's *claimed* time (``event_time``, chosen by the publisher) **and**
not revoked or rotated out at its *arrival* (when the gate decides it, which
the publisher cannot choose).  So once a revocation or a rotation's end has
been applied, every event that reaches the log is refused whatever time it
claims: a thief holding a compromised key cannot backdate events to before
the revocation.  Events accepted before it stay in the log: revoking a key
never erases the history it signed while it was good.  ``authorize`` without
``arrived_at`` judges at the claimed time only (an offline check of a logged
event, whose arrival the log itself records).

The registry also records what the gate needs to judge time and authority:
each registration's arrival (``registered_at``, the start of nothing but the
end of the publisher's declared backfill, with ``backfill_until``) and the
club a committee is bound to (``club_id``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from schemas.catalog import REGISTRY_EVENT_TYPES, validate_payload
from schemas.envelope import Envelope
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import ALG_ED25519, VerifierKey, parse_verifier_key, verify_ed25519
from schemas.times import format_time, parse_time

__all__ = [
    "STATE_VERSION",
    "KeyInfo",
    "Party",
    "PublisherInfo",
    "SignatureKey",
    "signature_key",
    "TrustRegistry",
]

STATE_VERSION: Final = 1
_BEGINNING: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DISBURSEMENT_TYPES: Final = frozenset({"disbursement.pledged", "disbursement.made"})


@dataclass(frozen=True, slots=True)
class Party:
    """The government party a government publisher speaks for."""

    level: str  # municipal | state | federal
    id: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One key of a publisher and its validity window (all times aware UTC)."""

    key_id: str  # 8 lowercase hex, C2SP key id under the publisher's name
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None = None  # set by a rotation: old_key_valid_until
    revoked_at: datetime | None = None

    def verifier_key(self, publisher_id: str) -> VerifierKey:
        return VerifierKey(publisher_id, self.public_key)


@dataclass(frozen=True, slots=True)
class PublisherInfo:
    """What the registry knows of one publisher."""

    publisher_id: str
    kind: str  # operator | committee | government | platform | reviewer | verifier | payout_agent | authority
    roles: frozenset[str]
    party: Party | None
    keys: tuple[KeyInfo, ...]
    revoked_at: datetime | None = None
    club_id: str | None = None  # a committee's club
    registered_at: datetime | None = None  # the registration's arrival in the log
    backfill_until: datetime | None = None  # declared end of the backfill, if earlier

    def key(self, key_id: str) -> KeyInfo | None:
        for k in self.keys:
            if k.key_id == key_id:
                return k
        return None

    @property
    def valid_from(self) -> datetime:
        """The registration's ``valid_from``: the first key's (the start of the backfill)."""
        return self.keys[0].valid_from

    @property
    def backfill_end(self) -> datetime | None:
        """The end of the declared backfill: the registration's arrival, or ``backfill_until``
        when earlier; None when neither is known (no backfill)."""
        ends = [t for t in (self.registered_at, self.backfill_until) if t is not None]
        return min(ends) if ends else None

    def in_backfill(self, t: datetime) -> bool:
        """Whether a claimed time ``t`` lies in the declared backfill ``[valid_from, backfill_end]``.

        History dated there is published on purpose (a government publishing last
        year's disbursements when it joins): neither too old nor late.
        """
        end = self.backfill_end
        return end is not None and self.valid_from <= t <= end


#: What identifies one signature check: (signature, public key, signed bytes).
#: Results computed ahead of :meth:`TrustRegistry.authorize` (for example on
#: several cores) are handed to it as a mapping from these to the verdict; a
#: result cannot be mistaken for another envelope's or another key's.
SignatureKey = tuple[bytes, bytes, bytes]


def signature_key(env: Envelope, public_key: bytes) -> SignatureKey:
    """The :data:`SignatureKey` of checking ``env``'s signature with ``public_key``."""
    return (env.signature, public_key, env.signed_bytes())


_NO_SIGNATURES: Final[Mapping[SignatureKey, bool]] = {}


def _refuse(
    reason: str, message: str, *, expected: object | None = None, got: object | None = None
) -> VerificationError:
    return VerificationError(message, reason=reason, expected=expected, got=got)


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None else min(a, b)


class TrustRegistry:
    """Publishers, their keys and roles, as established by the registry authority's events."""

    def __init__(self, authority: VerifierKey) -> None:
        if authority.alg != ALG_ED25519:
            raise MalformedInput("the registry authority key must be Ed25519", reason="key")
        self.authority: Final = authority
        self._authority_key_id = authority.key_id.hex()
        self._authority_info = PublisherInfo(
            publisher_id=authority.name,
            kind="authority",
            roles=frozenset(REGISTRY_EVENT_TYPES),
            party=None,
            keys=(KeyInfo(self._authority_key_id, authority.public_key, _BEGINNING),),
        )
        self._publishers: dict[str, PublisherInfo] = {}
        self._applied: set[str] = set()

    def copy(self) -> TrustRegistry:
        """An independent registry in the same state (applying to it leaves this one as it is)."""
        other = TrustRegistry(self.authority)
        other._publishers = dict(self._publishers)  # PublisherInfo is immutable
        other._applied = set(self._applied)
        return other

    # --- reading --------------------------------------------------------------

    @property
    def publishers(self) -> Mapping[str, PublisherInfo]:
        return dict(self._publishers)

    def publisher(self, publisher_id: str) -> PublisherInfo | None:
        return self._publishers.get(publisher_id)

    def knows(self, publisher_id: str, key_id: str) -> bool:
        """Whether ``publisher_id`` and its key ``key_id`` are known here.

        The authority is always known (it comes from configuration, not from
        events).  An adapter holding a cached registry reloads it from the log
        when an event names a publisher or key it does not know: another
        worker may have accepted the registration or rotation meanwhile.
        """
        if publisher_id == self.authority.name:
            return True
        info = self._publishers.get(publisher_id)
        return info is not None and info.key(key_id) is not None

    # --- signatures -----------------------------------------------------------

    def signature_jobs(self, envs: Iterable[Envelope]) -> list[tuple[Envelope, bytes]]:
        """(envelope, public key) for every envelope whose signing key is known.

        Lets an adapter verify signatures ahead of :meth:`authorize` (for
        example on several cores) and hand the results to it as a value,
        ``{signature_key(env, public_key): ok}``; this module itself stays
        single-threaded.
        """
        jobs: list[tuple[Envelope, bytes]] = []
        for env in envs:
            if env.event_type in REGISTRY_EVENT_TYPES or env.publisher_id == self.authority.name:
                jobs.append((env, self.authority.public_key))
                continue
            info = self._publishers.get(env.publisher_id)
            key = info.key(env.key_id) if info is not None else None
            if key is not None:
                jobs.append((env, key.public_key))
        return jobs

    def _signature_ok(
        self, env: Envelope, public_key: bytes, signatures: Mapping[SignatureKey, bool]
    ) -> bool:
        known = signatures.get(signature_key(env, public_key)) if signatures else None
        if known is not None:
            return known
        return verify_ed25519(public_key, env.signature, env.signed_bytes())

    def _check_authority(
        self, env: Envelope, signatures: Mapping[SignatureKey, bool]
    ) -> PublisherInfo:
        if env.publisher_id != self.authority.name or env.key_id != self._authority_key_id:
            raise _refuse(
                "not_authority",
                f"{env.event_type} must be signed by the registry authority "
                f"{self.authority.name} (key {self._authority_key_id}), "
                f"not {env.publisher_id} (key {env.key_id})",
                expected=self._authority_key_id,
                got=env.key_id,
            )
        if not self._signature_ok(env, self.authority.public_key, signatures):
            raise _refuse("bad_signature", f"event {env.event_id}: authority signature is invalid")
        return self._authority_info

    # --- authorization --------------------------------------------------------

    def authenticate(
        self, env: Envelope, *, signatures: Mapping[SignatureKey, bool] = _NO_SIGNATURES
    ) -> tuple[PublisherInfo, KeyInfo]:
        """Who really signed ``env``: its publisher and key, else ``VerificationError``.

        Reasons: ``not_authority`` (registry events only), ``unknown_publisher``,
        ``unknown_key``, ``bad_signature``; and ``role_not_allowed`` for a
        genuine authority signature on anything but a registry event.
        """
        if env.event_type in REGISTRY_EVENT_TYPES:
            auth = self._check_authority(env, signatures)
            return auth, auth.keys[0]
        if env.publisher_id == self.authority.name:
            # Authenticate first: only a genuine authority signature may earn
            # the authority a role verdict (and the integrity flag it raises);
            # anything else is a forgery in its name.
            if env.key_id != self._authority_key_id:
                raise _refuse("unknown_key", f"key {env.key_id} is not the registry authority's key")
            if not self._signature_ok(env, self.authority.public_key, signatures):
                raise _refuse("bad_signature", f"event {env.event_id}: authority signature is invalid")
            raise _refuse(
                "role_not_allowed",
                f"the registry authority signs registry events only, not {env.event_type}",
            )
        found = self._publishers.get(env.publisher_id)
        if found is None:
            raise _refuse("unknown_publisher", f"publisher {env.publisher_id} is not registered")
        info = found
        key = info.key(env.key_id)
        if key is None:
            raise _refuse(
                "unknown_key",
                f"key {env.key_id} is not a key of {env.publisher_id}",
                expected=[k.key_id for k in info.keys],
                got=env.key_id,
            )
        if not self._signature_ok(env, key.public_key, signatures):
            raise _refuse(
                "bad_signature",
                f"event {env.event_id}: signature does not verify with key {key.key_id} "
                f"of {env.publisher_id}",
            )
        return info, key

    def check_policy(
        self,
        env: Envelope,
        info: PublisherInfo,
        key: KeyInfo,
        *,
        arrived_at: datetime | None = None,
    ) -> None:
        """May ``info`` publish ``env`` with ``key``?  ``VerificationError`` if not.

        Reasons, in order: ``key_not_yet_valid`` (the claimed time is before the
        key's ``valid_from``), ``key_revoked``, ``key_expired``,
        ``publisher_revoked`` (revoked or rotated out at the claimed time or, when
        ``arrived_at`` is given, at the arrival: whichever is later),
        ``role_not_allowed``, ``party_mismatch``.  Registry events are the
        authority's and pass.
        """
        if env.event_type in REGISTRY_EVENT_TYPES:
            return
        t = env.time()
        at = t if arrived_at is None or arrived_at < t else arrived_at
        when = (
            f"event time is {env.event_time}"
            if at == t
            else f"the event arrived at {format_time(at)} (it claims {env.event_time})"
        )
        if t < key.valid_from:
            raise _refuse(
                "key_not_yet_valid",
                f"key {key.key_id} of {env.publisher_id} is valid from "
                f"{format_time(key.valid_from)}, event time is {env.event_time}",
                expected=format_time(key.valid_from),
                got=env.event_time,
            )
        if key.revoked_at is not None and key.revoked_at <= at:
            raise _refuse(
                "key_revoked",
                f"key {key.key_id} of {env.publisher_id} was revoked at "
                f"{format_time(key.revoked_at)}; {when}",
                expected=format_time(key.revoked_at),
                got=format_time(at),
            )
        if key.valid_until is not None and at > key.valid_until:
            raise _refuse(
                "key_expired",
                f"key {key.key_id} of {env.publisher_id} was rotated out and valid until "
                f"{format_time(key.valid_until)}; {when}",
                expected=format_time(key.valid_until),
                got=format_time(at),
            )
        if info.revoked_at is not None and info.revoked_at <= at:
            raise _refuse(
                "publisher_revoked",
                f"publisher {env.publisher_id} was revoked at {format_time(info.revoked_at)}; {when}",
                expected=format_time(info.revoked_at),
                got=format_time(at),
            )
        if env.event_type not in info.roles:
            raise _refuse(
                "role_not_allowed",
                f"{env.publisher_id} ({info.kind}) may not publish {env.event_type}; "
                f"its roles are {', '.join(sorted(info.roles))}",
            )
        if env.event_type in _DISBURSEMENT_TYPES:
            level, party_id = env.payload.get("party_level"), env.payload.get("party_id")
            if info.party is None or (level, party_id) != (info.party.level, info.party.id):
                own = "none" if info.party is None else f"{info.party.level} {info.party.id}"
                raise _refuse(
                    "party_mismatch",
                    f"{env.publisher_id} speaks for party {own}, not for {level} {party_id}",
                    expected=None if info.party is None else [info.party.level, info.party.id],
                    got=[level, party_id],
                )

    def authorize(
        self,
        env: Envelope,
        *,
        signatures: Mapping[SignatureKey, bool] = _NO_SIGNATURES,
        arrived_at: datetime | None = None,
    ) -> PublisherInfo:
        """The publisher of ``env`` if it may have published it, else ``VerificationError``.

        :meth:`authenticate` then :meth:`check_policy`: reasons, in the order
        checked: ``not_authority`` (registry events only), ``unknown_publisher``,
        ``unknown_key``, ``bad_signature``, ``key_not_yet_valid``,
        ``key_revoked``, ``key_expired``, ``publisher_revoked``,
        ``role_not_allowed``, ``party_mismatch``.

        ``signatures`` are verdicts computed ahead (see :meth:`signature_jobs`);
        a signature they do not cover is verified here.  ``arrived_at`` judges
        revocations and rotations at the arrival too (see the module docstring).
        """
        info, key = self.authenticate(env, signatures=signatures)
        self.check_policy(env, info, key, arrived_at=arrived_at)
        return info

    # --- applying registry events ---------------------------------------------

    def apply(
        self,
        env: Envelope,
        *,
        signatures: Mapping[SignatureKey, bool] = _NO_SIGNATURES,
        arrived_at: datetime | None = None,
    ) -> None:
        """Apply one registry event signed by the authority, which arrived at ``arrived_at``.

        The arrival of a registration ends the publisher's declared backfill;
        without it (a test, an offline replay) the event's own time stands in.
        Idempotent per ``event_id`` (replaying the registry topic is safe).
        Refusals: ``VerificationError`` with ``not_authority``,
        ``bad_signature``, ``already_registered`` (publisher or key),
        ``unknown_publisher``, ``unknown_key``, ``publisher_revoked``;
        ``MalformedInput`` for a non-registry event or an invalid payload.
        ``signatures`` as for :meth:`authorize`.
        """
        if env.event_type not in REGISTRY_EVENT_TYPES:
            raise MalformedInput(
                f"apply() takes registry events ({', '.join(REGISTRY_EVENT_TYPES)}), "
                f"not {env.event_type}",
                reason="unknown_type",
                field="/header/type",
            )
        self._check_authority(env, signatures)
        if env.event_id in self._applied:
            return
        p = env.payload
        validate_payload(env.event_type, env.schema_version, p)
        if env.event_type == "publisher.registered":
            self._register(p, env.time() if arrived_at is None else arrived_at)
        elif env.event_type == "publisher.key_rotated":
            self._rotate(p)
        else:
            self._revoke(p)
        self._applied.add(env.event_id)

    def _register(self, p: Mapping[str, Any], arrived_at: datetime) -> None:
        pid = p["publisher_id"]
        if pid in self._publishers or pid == self.authority.name:
            raise _refuse("already_registered", f"publisher {pid} is already registered")
        vk = parse_verifier_key(p["public_key"], alg=ALG_ED25519)
        party = p.get("party")
        backfill = p.get("backfill_until")
        self._publishers[pid] = PublisherInfo(
            publisher_id=pid,
            kind=p["kind"],
            roles=frozenset(p["roles"]),
            party=None if party is None else Party(party["level"], party["id"]),
            keys=(KeyInfo(vk.key_id.hex(), vk.public_key, parse_time(p["valid_from"])),),
            club_id=p.get("club_id"),
            registered_at=arrived_at.astimezone(UTC),
            backfill_until=None if backfill is None else parse_time(backfill),
        )

    def _existing(self, pid: str) -> PublisherInfo:
        info = self._publishers.get(pid)
        if info is None:
            raise _refuse("unknown_publisher", f"publisher {pid} is not registered")
        return info

    def _rotate(self, p: Mapping[str, Any]) -> None:
        info = self._existing(p["publisher_id"])
        if info.revoked_at is not None:
            raise _refuse("publisher_revoked", f"publisher {info.publisher_id} is revoked")
        vk = parse_verifier_key(p["new_public_key"], alg=ALG_ED25519)
        kid = vk.key_id.hex()
        if info.key(kid) is not None:
            raise _refuse(
                "already_registered", f"key {kid} is already a key of {info.publisher_id}"
            )
        until = parse_time(p["old_key_valid_until"])
        old = tuple(replace(k, valid_until=_earliest(k.valid_until, until)) for k in info.keys)
        new = KeyInfo(kid, vk.public_key, parse_time(p["valid_from"]))
        self._publishers[info.publisher_id] = replace(info, keys=(*old, new))

    def _revoke(self, p: Mapping[str, Any]) -> None:
        info = self._existing(p["publisher_id"])
        at = parse_time(p["revoked_at"])
        kid = p["key_id"]
        if kid is None:
            self._publishers[info.publisher_id] = replace(
                info, revoked_at=_earliest(info.revoked_at, at)
            )
            return
        if info.key(kid) is None:
            raise _refuse("unknown_key", f"key {kid} is not a key of {info.publisher_id}")
        keys = tuple(
            replace(k, revoked_at=_earliest(k.revoked_at, at)) if k.key_id == kid else k
            for k in info.keys
        )
        self._publishers[info.publisher_id] = replace(info, keys=keys)

    # --- snapshots ------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """A JSON-able snapshot (stable order) for an adapter to persist."""

        def t(dt: datetime | None) -> str | None:
            return None if dt is None else format_time(dt)

        return {
            "version": STATE_VERSION,
            "authority": str(self.authority),
            "publishers": {
                pid: {
                    "kind": info.kind,
                    "roles": sorted(info.roles),
                    "party": None
                    if info.party is None
                    else {"level": info.party.level, "id": info.party.id},
                    "revoked_at": t(info.revoked_at),
                    "club_id": info.club_id,
                    "registered_at": t(info.registered_at),
                    "backfill_until": t(info.backfill_until),
                    "keys": [
                        {
                            "public_key": str(k.verifier_key(pid)),
                            "valid_from": t(k.valid_from),
                            "valid_until": t(k.valid_until),
                            "revoked_at": t(k.revoked_at),
                        }
                        for k in info.keys
                    ],
                }
                for pid, info in sorted(self._publishers.items())
            },
            "applied": sorted(self._applied),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, authority: VerifierKey) -> TrustRegistry:
        """Restore a snapshot.  ``authority`` comes from configuration, never from the
        snapshot itself: a snapshot made under another root of trust is refused
        (``VerificationError(reason="not_authority")``)."""
        if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
            raise MalformedInput("registry state: unknown or missing version", reason="state")
        if state.get("authority") != str(authority):
            raise _refuse(
                "not_authority",
                "registry state was made under a different authority key",
                expected=str(authority),
                got=state.get("authority"),
            )
        reg = cls(authority)

        def t(text: str | None) -> datetime | None:
            return None if text is None else parse_time(text)

        try:
            for pid, s in state["publishers"].items():
                keys = []
                for k in s["keys"]:
                    vk = parse_verifier_key(k["public_key"], alg=ALG_ED25519)
                    if vk.name != pid:
                        raise MalformedInput(f"key of {pid} is named {vk.name}", reason="state")
                    valid_from = t(k["valid_from"])
                    assert valid_from is not None
                    keys.append(
                        KeyInfo(
                            vk.key_id.hex(),
                            vk.public_key,
                            valid_from,
                            t(k["valid_until"]),
                            t(k["revoked_at"]),
                        )
                    )
                party = s["party"]
                reg._publishers[pid] = PublisherInfo(
                    publisher_id=pid,
                    kind=s["kind"],
                    roles=frozenset(s["roles"]),
                    party=None if party is None else Party(party["level"], party["id"]),
                    keys=tuple(keys),
                    revoked_at=t(s["revoked_at"]),
                    club_id=s.get("club_id"),
                    registered_at=t(s.get("registered_at")),
                    backfill_until=t(s.get("backfill_until")),
                )
            reg._applied = set(state["applied"])
        except (KeyError, TypeError, AttributeError, AssertionError, MalformedInput) as e:
            raise MalformedInput(f"registry state is malformed: {e!r}", reason="state") from e
        return reg
