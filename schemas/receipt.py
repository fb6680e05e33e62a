"""Receipts: everything needed to check, offline, that an event is in the public log.

A receipt (``cuentas receipt EVENT_ID``) is a JSON object::

    {
      "format": "cuentas-claras/receipt/v1",
      "event": { ...the signed envelope... },
      "leaf_index": 41,
      "tree_size": 1200,
      "inclusion_proof": ["<base64 32-byte hash>", ...],
      "checkpoint": "<C2SP signed note: checkpoint + log signature + witness cosignatures>",
      "publisher_key": "<C2SP verifier key of the event's publisher>"   (optional)
    }

:func:`verify_receipt` trusts nothing but the keys it is given: it checks the
log's signature on the checkpoint (C2SP signed-note), the witnesses'
cosignatures (C2SP tlog-cosignature), that the checkpoint's size is the
proof's tree size, the inclusion proof of the RFC 8785 canonical event bytes
(RFC 9162 2.1.3.2), and, when a publisher key is present, the event's own
Ed25519 signature.  Each failure is one ``VerificationError`` or
``MalformedInput`` with a one-line message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.canonical import canonicalize, parse_json
from schemas.envelope import Envelope, parse_envelope, verify_envelope_signature
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import VerifierKey, parse_verifier_key
from schemas.merkle import leaf_hash, verify_inclusion
from schemas.note import Checkpoint, open_checkpoint, verify_cosignatures

__all__ = [
    "RECEIPT_FORMAT",
    "Receipt",
    "VerifiedReceipt",
    "parse_receipt",
    "build_receipt",
    "verify_receipt",
]

RECEIPT_FORMAT = "cuentas-claras/receipt/v1"
_MAX_RECEIPT_BYTES = 1 << 20
_KEYS = {
    "format",
    "event",
    "leaf_index",
    "tree_size",
    "inclusion_proof",
    "checkpoint",
    "publisher_key",
}


@dataclass(frozen=True)
class Receipt:
    event: Mapping[str, Any]
    leaf_index: int
    tree_size: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    publisher_key: str | None = None

    def leaf_bytes(self) -> bytes:
        return canonicalize(self.event)

    def to_json(self) -> str:
        obj: dict[str, Any] = {
            "format": RECEIPT_FORMAT,
            "event": self.event,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof],
            "checkpoint": self.checkpoint,
        }
        if self.publisher_key:
            obj["publisher_key"] = self.publisher_key
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class VerifiedReceipt:
    receipt: Receipt
    envelope: Envelope
    checkpoint: Checkpoint
    witnesses: tuple[tuple[VerifierKey, int], ...]
    publisher_signature_checked: bool


def build_receipt(
    leaf: bytes,
    leaf_index: int,
    tree_size: int,
    proof: Sequence[bytes],
    checkpoint_note: str,
    publisher_key: str | None = None,
) -> Receipt:
    return Receipt(
        json.loads(leaf), leaf_index, tree_size, tuple(proof), checkpoint_note, publisher_key
    )


def _int(obj: Mapping[str, Any], name: str) -> int:
    v = obj.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise MalformedInput(
            f"receipt field {name} must be a non-negative integer", reason="receipt", field=name
        )
    return v


def parse_receipt(data: bytes | str) -> Receipt:
    # surrogatepass: a lone surrogate in text input must reach the strict JSON
    # parser (which rejects it as MalformedInput), not raise UnicodeEncodeError.
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    obj = parse_json(raw, max_bytes=_MAX_RECEIPT_BYTES)
    if not isinstance(obj, dict):
        raise MalformedInput("a receipt is a JSON object", reason="receipt")
    extra = set(obj) - _KEYS
    missing = {"format", "event", "leaf_index", "tree_size", "inclusion_proof", "checkpoint"} - set(
        obj
    )
    if missing or extra:
        raise MalformedInput(
            f"receipt has {'missing fields ' + ', '.join(sorted(missing)) if missing else ''}"
            f"{'; ' if missing and extra else ''}{'unknown fields ' + ', '.join(sorted(extra)) if extra else ''}",
            reason="receipt",
        )
    if obj["format"] != RECEIPT_FORMAT:
        raise MalformedInput(
            f"unknown receipt format {obj['format']!r} (want {RECEIPT_FORMAT})",
            reason="receipt",
            field="format",
        )
    if not isinstance(obj["event"], dict):
        raise MalformedInput(
            "receipt field event must be an object", reason="receipt", field="event"
        )
    proof = obj["inclusion_proof"]
    if not isinstance(proof, list) or len(proof) > 64:
        raise MalformedInput(
            "inclusion_proof must be a list of at most 64 hashes",
            reason="receipt",
            field="inclusion_proof",
        )
    hashes = []
    for i, h in enumerate(proof):
        try:
            b = base64.b64decode(h, validate=True) if isinstance(h, str) else b""
        except (binascii.Error, ValueError):
            b = b""
        if len(b) != 32:
            raise MalformedInput(
                f"inclusion_proof[{i}] is not a base64 32-byte hash",
                reason="receipt",
                field=f"inclusion_proof/{i}",
            )
        hashes.append(b)
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
    return Receipt(
        obj["event"],
        _int(obj, "leaf_index"),
        _int(obj, "tree_size"),
        tuple(hashes),
        obj["checkpoint"],
        pk,
    )


def verify_receipt(
    receipt: Receipt | bytes | str,
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey] = (),
    min_witnesses: int = 0,
) -> VerifiedReceipt:
    """Check a receipt fully offline; raise with a one-line reason on any failure."""
    r = receipt if isinstance(receipt, Receipt) else parse_receipt(receipt)
    cp, note = open_checkpoint(r.checkpoint, log_key)
    witnesses: list[tuple[VerifierKey, int]] = []
    if min_witnesses or witness_keys:
        witnesses = verify_cosignatures(note, witness_keys, min_witnesses)
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
    return VerifiedReceipt(r, env, cp, tuple(witnesses), checked)
