"""Receipts: everything needed to check, offline, that an event is in the public log.

A receipt (``cuentas receipt``) is a JSON object::

    {
      "format": "cuentas-claras/receipt/v2",
      "event": { ...the signed envelope... },
      "leaf_index": 41,
      "tree_size": 1200,
      "inclusion_proof": ["<base64 32-byte hash>", ...],
      "checkpoint": "<C2SP signed note: checkpoint + log signature + witness cosignatures>",
      "publisher_proof": {
        "entry": { ...the publisher.registered or publisher.key_rotated envelope... },
        "leaf_index": 3,
        "inclusion_proof": ["<base64 32-byte hash>", ...]
      }
    }

:func:`verify_receipt` trusts nothing but the keys it is given: it checks the
log's signature on the checkpoint (C2SP signed-note), the witnesses'
cosignatures (C2SP tlog-cosignature, under a :class:`WitnessPolicy`), that the
checkpoint's size is the proof's tree size, the inclusion proof of the RFC
8785 canonical event bytes (RFC 9162 2.1.3.2), and the publisher's key:

* v2 (``publisher_proof``): the registry entry that admitted the key the
  event names is in the same checkpoint (its own inclusion proof), was logged
  before the event, admits that key id for that publisher, valid from no later
  than the event's time; and the event's Ed25519 signature verifies with it.
  So the log key (and, if wanted, witness keys) is all a verifier needs.
* v1 (``cuentas-claras/receipt/v1``, still accepted): an optional
  ``publisher_key`` string checks the event's signature, but nothing binds
  that key to the registry: the result says the publisher key is not proven.

Trust anchor.  The registry entry is signed by the registry authority, whose
key a verifier does not hold; it is trusted because it is in the log: the
log appends a registry event only after checking the authority's signature
(the gate, :meth:`schemas.registry.TrustRegistry.authorize`), and witnesses
make sure everyone sees that same log.  The log key is thus the one anchor.
A receipt proves the key was admitted before the event and valid from its
time; a later rotation's bound or a revocation is not part of it (the gate
checked them when it accepted the event; they are in the log to read).

Each failure is one ``VerificationError`` or ``MalformedInput`` with a
one-line message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from schemas.canonical import canonicalize, parse_json
from schemas.envelope import Envelope, parse_envelope, verify_envelope_signature
from schemas.errors import MalformedInput, ProofError, VerificationError
from schemas.keys import ALG_ED25519, VerifierKey, key_id, parse_verifier_key
from schemas.merkle import leaf_hash, verify_inclusion
from schemas.note import Checkpoint, open_checkpoint
from schemas.times import parse_time
from schemas.witness_policy import WitnessPolicy

__all__ = [
    "ADMISSION_TYPES",
    "BUNDLE_FORMAT",
    "RECEIPT_FORMAT",
    "RECEIPT_FORMAT_V1",
    "PublisherProof",
    "Receipt",
    "VerifiedReceipt",
    "admission_for",
    "admitted_key",
    "build_receipt",
    "bundle_json",
    "parse_receipt",
    "parse_receipts",
    "verify_receipt",
]

RECEIPT_FORMAT_V1: Final = "cuentas-claras/receipt/v1"
#: The format written today.
RECEIPT_FORMAT: Final = "cuentas-claras/receipt/v2"
#: Several receipts in one file (``cuentas receipt --code``, ``cuentas flags show``).
BUNDLE_FORMAT: Final = "cuentas-claras/receipts/v1"
#: Registry events that admit a key: the first one, and each rotation.
ADMISSION_TYPES: Final = ("publisher.registered", "publisher.key_rotated")

_MAX_RECEIPT_BYTES = 1 << 20
_MAX_BUNDLE_BYTES = 16 << 20
_MAX_BUNDLE_RECEIPTS = 1000
_MAX_PROOF = 64
_COMMON = {"format", "event", "leaf_index", "tree_size", "inclusion_proof", "checkpoint"}
_KEYS = {RECEIPT_FORMAT_V1: _COMMON | {"publisher_key"}, RECEIPT_FORMAT: _COMMON | {"publisher_proof"}}
_REQUIRED = {RECEIPT_FORMAT_V1: _COMMON, RECEIPT_FORMAT: _COMMON | {"publisher_proof"}}
_PROOF_KEYS = {"entry", "leaf_index", "inclusion_proof"}


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@dataclass(frozen=True)
class PublisherProof:
    """The registry entry that admitted the event's key, and its inclusion proof (same tree)."""

    entry: Mapping[str, Any]
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]

    def leaf_bytes(self) -> bytes:
        return canonicalize(self.entry)

    def to_obj(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "leaf_index": self.leaf_index,
            "inclusion_proof": _b64(self.inclusion_proof),
        }


@dataclass(frozen=True)
class Receipt:
    event: Mapping[str, Any]
    leaf_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    publisher_key: str | None = None  # v1 only
    publisher_proof: PublisherProof | None = None  # v2

    @property
    def format(self) -> str:
        return RECEIPT_FORMAT if self.publisher_proof is not None else RECEIPT_FORMAT_V1

    def leaf_bytes(self) -> bytes:
        return canonicalize(self.event)

    def to_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "format": self.format,
            "event": self.event,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion_proof": _b64(self.inclusion_proof),
            "checkpoint": self.checkpoint,
        }
        if self.publisher_proof is not None:
            obj["publisher_proof"] = self.publisher_proof.to_obj()
        elif self.publisher_key:
            obj["publisher_key"] = self.publisher_key
        return obj

    def to_json(self) -> str:
        return json.dumps(self.to_obj(), indent=2, ensure_ascii=False) + "\n"


def bundle_json(receipts: Sequence[Receipt], **about: Any) -> str:
    """Several receipts as one document (``BUNDLE_FORMAT``); ``about`` adds context members."""
    obj: dict[str, Any] = {"format": BUNDLE_FORMAT, **about, "receipts": [r.to_obj() for r in receipts]}
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class VerifiedReceipt:
    receipt: Receipt
    envelope: Envelope
    checkpoint: Checkpoint
    witnesses: tuple[tuple[VerifierKey, int], ...]
    publisher_signature_checked: bool
    #: The key that verified the event came from a registry entry in the same log (v2).
    publisher_key_proven: bool = False

    @property
    def publisher_status(self) -> str:
        if self.publisher_key_proven:
            pp = self.receipt.publisher_proof
            assert pp is not None
            return (
                f"publisher signature checked with the key admitted by registry entry {pp.leaf_index}"
            )
        if self.publisher_signature_checked:
            return "publisher signature checked with the key in the receipt; publisher key not proven"
        return "publisher key not proven"


# --------------------------------------------------------------------------- registry entries


def admitted_key(entry: Envelope) -> tuple[str, VerifierKey, datetime]:
    """(publisher id, key, valid from) admitted by a ``publisher.registered`` or ``.key_rotated`` event."""
    if entry.event_type not in ADMISSION_TYPES:
        raise VerificationError(
            f"registry entry {entry.event_id} is a {entry.event_type}, not an event that admits a key",
            reason="not_an_admission",
            expected=list(ADMISSION_TYPES),
            got=entry.event_type,
        )
    p = entry.payload
    field = "public_key" if entry.event_type == "publisher.registered" else "new_public_key"
    key = parse_verifier_key(str(p[field]), alg=ALG_ED25519)
    return str(p["publisher_id"]), key, parse_time(str(p["valid_from"]))


def admission_for(
    event: Envelope, event_index: int, entries: Iterable[tuple[int, Envelope]]
) -> tuple[int, Envelope] | None:
    """The registry entry that admitted the key ``event`` names, among ``(log index, entry)``.

    The one logged before the event, for its publisher, whose key has the
    event's key id under the publisher's name (C2SP key ids bind the name).
    Not the newest key: an event signed before a rotation names the old one.
    """
    for index, entry in entries:
        if index >= event_index or entry.event_type not in ADMISSION_TYPES:
            continue
        try:
            pid, key, _ = admitted_key(entry)
        except (MalformedInput, VerificationError, KeyError):
            continue
        if pid == event.publisher_id and key_id(pid, key.public_key).hex() == event.key_id:
            return index, entry
    return None


# --------------------------------------------------------------------------- building


def build_receipt(
    leaf: bytes,
    leaf_index: int,
    tree_size: int,
    proof: Sequence[bytes],
    checkpoint_note: str,
    publisher_key: str | None = None,
    publisher_proof: PublisherProof | None = None,
) -> Receipt:
    """A receipt (v2 when ``publisher_proof`` is given, else v1)."""
    return Receipt(
        json.loads(leaf),
        leaf_index,
        tree_size,
        tuple(proof),
        checkpoint_note,
        None if publisher_proof is not None else publisher_key,
        publisher_proof,
    )


# --------------------------------------------------------------------------- parsing


def _int(obj: Mapping[str, Any], name: str, where: str = "") -> int:
    v = obj.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise MalformedInput(
            f"receipt field {where}{name} must be a non-negative integer",
            reason="receipt",
            field=where + name,
        )
    return v


def _hashes(value: object, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > _MAX_PROOF:
        raise MalformedInput(
            f"{where} must be a list of at most {_MAX_PROOF} hashes", reason="receipt", field=where
        )
    out = []
    for i, h in enumerate(value):
        try:
            b = base64.b64decode(h, validate=True) if isinstance(h, str) else b""
        except (binascii.Error, ValueError):
            b = b""
        if len(b) != 32:
            raise MalformedInput(
                f"{where}[{i}] is not a base64 32-byte hash", reason="receipt", field=f"{where}/{i}"
            )
        out.append(b)
    return tuple(out)


def _members(obj: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    extra = set(obj) - allowed
    missing = required - set(obj)
    if missing or extra:
        raise MalformedInput(
            f"{what} has {'missing fields ' + ', '.join(sorted(missing)) if missing else ''}"
            f"{'; ' if missing and extra else ''}"
            f"{'unknown fields ' + ', '.join(sorted(extra)) if extra else ''}",
            reason="receipt",
        )


def _publisher_proof(value: object) -> PublisherProof:
    where = "publisher_proof/"
    if not isinstance(value, dict):
        raise MalformedInput(
            "publisher_proof must be an object", reason="receipt", field="publisher_proof"
        )
    _members(value, _PROOF_KEYS, _PROOF_KEYS, "publisher_proof")
    if not isinstance(value["entry"], dict):
        raise MalformedInput(
            "publisher_proof/entry must be an object", reason="receipt", field=where + "entry"
        )
    return PublisherProof(
        value["entry"],
        _int(value, "leaf_index", where),
        _hashes(value["inclusion_proof"], where + "inclusion_proof"),
    )


def _receipt_from(obj: object) -> Receipt:
    if not isinstance(obj, dict):
        raise MalformedInput("a receipt is a JSON object", reason="receipt")
    fmt = obj.get("format")
    if not isinstance(fmt, str) or fmt not in _KEYS:  # a list or an object is not hashable
        raise MalformedInput(
            f"unknown receipt format {fmt!r} (want {RECEIPT_FORMAT} or {RECEIPT_FORMAT_V1})",
            reason="receipt",
            field="format",
        )
    _members(obj, _KEYS[fmt], _REQUIRED[fmt], "receipt")
    if not isinstance(obj["event"], dict):
        raise MalformedInput(
            "receipt field event must be an object", reason="receipt", field="event"
        )
    hashes = _hashes(obj["inclusion_proof"], "inclusion_proof")
    if not isinstance(obj["checkpoint"], str):
        raise MalformedInput(
            "receipt field checkpoint must be the signed note text",
            reason="receipt",
            field="checkpoint",
        )
    pk = obj.get("publisher_key")
    if pk is not None and not isinstance(pk, str):
        raise MalformedInput(
            "publisher_key must be a verifier key string", reason="receipt", field="publisher_key"
        )
    proof = _publisher_proof(obj["publisher_proof"]) if fmt == RECEIPT_FORMAT else None
    return Receipt(
        obj["event"],
        _int(obj, "leaf_index"),
        _int(obj, "tree_size"),
        hashes,
        obj["checkpoint"],
        pk,
        proof,
    )


def _json(data: bytes | str, max_bytes: int) -> Any:
    # surrogatepass: a lone surrogate in text input must reach the strict JSON
    # parser (which rejects it as MalformedInput), not raise UnicodeEncodeError.
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return parse_json(raw, max_bytes=max_bytes)


def parse_receipt(data: bytes | str) -> Receipt:
    """Parse one receipt (v1 or v2) strictly; ``MalformedInput`` otherwise."""
    return _receipt_from(_json(data, _MAX_RECEIPT_BYTES))


def parse_receipts(data: bytes | str) -> list[Receipt]:
    """One receipt, or a bundle of them (``BUNDLE_FORMAT``), as a list."""
    obj = _json(data, _MAX_BUNDLE_BYTES)
    if not isinstance(obj, dict) or obj.get("format") != BUNDLE_FORMAT:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > _MAX_RECEIPT_BYTES:
            raise MalformedInput(
                f"a single receipt is at most {_MAX_RECEIPT_BYTES} bytes", reason="oversize"
            )
        return [_receipt_from(obj)]
    items = obj.get("receipts")
    if not isinstance(items, list) or not 1 <= len(items) <= _MAX_BUNDLE_RECEIPTS:
        raise MalformedInput(
            f"a receipt bundle holds 1 to {_MAX_BUNDLE_RECEIPTS} receipts in 'receipts'",
            reason="receipt",
            field="receipts",
        )
    out = []
    for i, item in enumerate(items):
        try:
            out.append(_receipt_from(item))
        except MalformedInput as e:
            raise MalformedInput(f"receipts[{i}]: {e}", reason=e.reason, field=e.field) from e
    return out


# --------------------------------------------------------------------------- verifying


def _check_publisher_proof(r: Receipt, env: Envelope, cp: Checkpoint) -> None:
    pp = r.publisher_proof
    assert pp is not None
    entry_leaf = pp.leaf_bytes()
    try:
        verify_inclusion(leaf_hash(entry_leaf), pp.leaf_index, r.tree_size, pp.inclusion_proof, cp.root)
    except ProofError as e:
        raise VerificationError(
            f"the publisher's registry entry is not proven in the log: {e}",
            reason="publisher_proof",
            expected=e.expected,
            got=e.got,
        ) from e
    entry = parse_envelope(entry_leaf, max_bytes=_MAX_RECEIPT_BYTES)
    if pp.leaf_index >= r.leaf_index:
        raise VerificationError(
            f"registry entry {pp.leaf_index} was logged after the event (leaf {r.leaf_index}): "
            "it cannot have admitted the key that signed it",
            reason="admitted_later",
            expected=f"< {r.leaf_index}",
            got=pp.leaf_index,
        )
    publisher, key, valid_from = admitted_key(entry)
    if publisher != env.publisher_id or key.name != env.publisher_id:
        raise VerificationError(
            f"the registry entry admits a key of {publisher}, the event names {env.publisher_id}",
            reason="key_mismatch",
            expected=env.publisher_id,
            got=publisher,
        )
    verify_envelope_signature(env, key.public_key)
    if env.time() < valid_from:
        raise VerificationError(
            f"key {env.key_id} of {env.publisher_id} is valid from {entry.payload['valid_from']}, "
            f"the event is of {env.event_time}",
            reason="key_not_yet_valid",
            expected=str(entry.payload["valid_from"]),
            got=env.event_time,
        )


def verify_receipt(
    receipt: Receipt | bytes | str,
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey] = (),
    min_witnesses: int | None = None,
    *,
    policy: WitnessPolicy | None = None,
) -> VerifiedReceipt:
    """Check a receipt fully offline; raise with a one-line reason on any failure.

    Witnesses: ``policy``, else ``WitnessPolicy.of(witness_keys, min_witnesses)``
    -- with witness keys given and no minimum, every one of them must have
    cosigned the receipt's checkpoint.
    """
    if policy is None:
        policy = WitnessPolicy.of(witness_keys, min_witnesses)
    r = receipt if isinstance(receipt, Receipt) else parse_receipt(receipt)
    cp, note = open_checkpoint(r.checkpoint, log_key)
    witnesses = policy.check(note)
    if cp.size != r.tree_size:
        raise VerificationError(
            f"the checkpoint is for tree size {cp.size} but the proof is for {r.tree_size}",
            reason="size_mismatch",
            expected=r.tree_size,
            got=cp.size,
        )
    leaf = r.leaf_bytes()
    verify_inclusion(leaf_hash(leaf), r.leaf_index, r.tree_size, r.inclusion_proof, cp.root)
    env = parse_envelope(leaf, max_bytes=_MAX_RECEIPT_BYTES)
    if r.publisher_proof is not None:
        _check_publisher_proof(r, env, cp)
        return VerifiedReceipt(r, env, cp, witnesses, True, True)
    checked = False
    if r.publisher_key:
        pk = parse_verifier_key(r.publisher_key)
        if pk.name != env.publisher_id:
            raise VerificationError(
                f"publisher key is for {pk.name}, the event names {env.publisher_id}",
                reason="key_mismatch",
                expected=env.publisher_id,
                got=pk.name,
            )
        verify_envelope_signature(env, pk.public_key)
        checked = True
    return VerifiedReceipt(r, env, cp, witnesses, checked)
