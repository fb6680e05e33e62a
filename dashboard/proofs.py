"""Receipts and proofs built by the dashboard itself, then verified with the pure core.

The page never trusts a stored "verified" flag: it reads the log entry, the
inclusion proof from the hash tiles (one query, :mod:`infra.log_store`)
and the newest checkpoint that covers the entry (preferring one that a
witness cosigned), builds the receipt (:mod:`infra.receipts`, the same
builder as ``cuentas receipt``) and checks it
(:func:`schemas.receipt.verify_receipt`) against the log's public key and
the witness policy (:class:`schemas.witness_policy.WitnessPolicy`, the same
one ``cuentas verify`` applies).  Only then is it shown as verified.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import streamlit as st

from dashboard.data import cursor
from infra import log_store, public_keys, receipts
from infra.receipts import LogReceipt
from infra.settings import Settings
from schemas.errors import CuentasError, MalformedInput, VerificationError
from schemas.keys import VerifierKey
from schemas.merkle import leaf_hash, verify_consistency, verify_inclusion
from schemas.note import open_checkpoint, parse_note
from schemas.receipt import verify_receipt
from schemas.witness_policy import WitnessPolicy

__all__ = [
    "ReceiptCheck",
    "ConsistencyCheck",
    "log_verifier",
    "trusted_keys",
    "verify_command",
    "witness_verifiers",
    "check_receipt",
    "witness_policy",
    "check_consistency",
    "proof_document",
]

ReceiptState = Literal["verified", "unwitnessed", "no_checkpoint", "not_in_log", "failed", "no_key"]
_NO_WITNESSES = WitnessPolicy()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@st.cache_resource(show_spinner=False, max_entries=8)
def _trusted(_settings: Settings, stamp: tuple[str, str, str, float, float]) -> public_keys.TrustedKeys:
    # ``stamp`` names what the keys depend on (``_settings`` is not hashed).
    # Public files only (derive=False): the dashboard reads no private key.
    return public_keys.trusted_keys(_settings)


def trusted_keys(settings: Settings) -> public_keys.TrustedKeys:
    """The log's and the trusted witnesses' verifier keys, from ``<data dir>/public`` and ``WITNESS_KEYS``.

    Never from a private key file: the files are written by whoever holds
    the keys (the processors, ``cuentas up``, the demo witness).
    """
    stamp = (str(settings.data_path), settings.log_origin, settings.witness_keys,
             _mtime(public_keys.log_key_file(settings)), _mtime(public_keys.public_dir(settings) / "witnesses"))
    try:
        return _trusted(settings, stamp)
    except CuentasError:  # a WITNESS_KEYS entry that is not a witness key: trust none rather than guess
        return public_keys.TrustedKeys(public_keys.read_log_key(settings), ())


def witness_verifiers(settings: Settings) -> tuple[VerifierKey, ...]:
    """The witnesses whose cosignatures the dashboard checks (WITNESS_KEYS, else the published ones)."""
    return trusted_keys(settings).witnesses


def log_verifier(settings: Settings) -> VerifierKey | None:
    """The log's public key as published in ``<data dir>/public/log.pub``, or None.

    Never created or derived here: a dashboard that invented its own log key
    would "verify" nothing.
    """
    return trusted_keys(settings).log


def verify_command(keys: public_keys.TrustedKeys, target: str = "receipt.json") -> str:
    """The ``cuentas verify`` line for ``target`` with these keys (a receipt, or ``--export DIR``)."""
    log = str(keys.log) if keys.log is not None else "<log key>"
    return f"cuentas verify {target} --log-key {log}" + "".join(f" --witness-key {w}" for w in keys.witnesses)


@dataclass
class ReceiptCheck:
    state: ReceiptState
    leaf_index: int | None = None
    tree_size: int | None = None
    witnesses: int = 0
    receipt_json: str | None = None
    proof: list[str] = field(default_factory=list)
    leaf_hash: str | None = None
    checkpoint: str | None = None
    event_type: str | None = None
    publisher_id: str | None = None
    event_time: Any = None
    error: str | None = None


@st.cache_data(ttl=15, show_spinner=False, max_entries=256)
def _receipt_parts(url: str, schema: str, event_id: str) -> LogReceipt | None:
    # The one receipt builder (infra.receipts, as `cuentas receipt`), preferring
    # a checkpoint a witness cosigned.
    with cursor(url, schema) as cur:
        return receipts.find_receipt(cur, event_id, cosigned=None)


def witness_policy(settings: Settings) -> WitnessPolicy:
    """The dashboard's witness policy: the trusted witnesses, and how many must have cosigned.

    ``MIN_WITNESSES`` lowers the default (every trusted witness).  A value
    that is not a number from 0 to the number of trusted witnesses falls back
    to the strict default: a bad setting must never turn a check green.
    """
    keys = witness_verifiers(settings)
    raw = settings.min_witnesses.strip()
    try:
        return WitnessPolicy.of(keys, int(raw) if raw else None)
    except (ValueError, MalformedInput):
        return WitnessPolicy.of(keys)


def check_receipt(url: str, schema: str, event_id: str, log_key: VerifierKey | None,
                  policy: WitnessPolicy = _NO_WITNESSES) -> ReceiptCheck:
    """Build the receipt of ``event_id`` and verify it; the state says how far it got.

    "verified" (the green check) needs the log's signature, the inclusion
    proof, the publisher's key proven by its registry entry where the log
    has one, and ``policy`` met by at least one trusted witness: a policy
    that trusts no witness never earns the green check.
    """
    try:
        found = _receipt_parts(url, schema, event_id)
    except CuentasError as e:  # missing or short tiles: the log's own data is inconsistent
        return ReceiptCheck("failed", error=getattr(e, "reason", "") or "proof")
    if found is None:
        return ReceiptCheck("not_in_log")
    entry = found.entry
    res = ReceiptCheck("no_checkpoint", leaf_index=entry.index, event_type=entry.event_type,
                       publisher_id=entry.publisher_id, event_time=entry.event_time,
                       leaf_hash=base64.b64encode(leaf_hash(entry.leaf)).decode())
    receipt = found.receipt
    if receipt is None:
        return res
    res.tree_size = receipt.tree_size
    res.checkpoint = receipt.checkpoint
    res.proof = [base64.b64encode(h).decode() for h in receipt.inclusion_proof]
    res.receipt_json = receipt.to_json()
    if log_key is None:
        res.state = "no_key"
        return res
    try:
        verify_receipt(receipt, log_key)
    except (VerificationError, MalformedInput) as err:
        res.state = "failed"
        res.error = getattr(err, "reason", "") or str(err)
        return res
    # The green check needs the policy's cosignatures, under witness keys we
    # trust (C2SP tlog-cosignature), not merely signature lines.
    try:
        res.witnesses = len(policy.check(parse_note(receipt.checkpoint)))
        witnessed = bool(policy.keys) and res.witnesses >= 1
    except (MalformedInput, VerificationError):
        res.witnesses, witnessed = 0, False
    res.state = "verified" if found.cosigned and witnessed else "unwitnessed"
    return res


def proof_document(check: ReceiptCheck, event_id: str) -> str:
    """An inclusion proof without the event body (for events that carry pseudonyms)."""
    import json

    return json.dumps(
        {
            "event_id": event_id,
            "leaf_index": check.leaf_index,
            "tree_size": check.tree_size,
            "leaf_hash": check.leaf_hash,
            "inclusion_proof": check.proof,
            "checkpoint": check.checkpoint,
        },
        indent=2,
        ensure_ascii=False,
    ) + "\n"


@dataclass
class ConsistencyCheck:
    ok: bool
    size1: int
    size2: int
    proof: list[str] = field(default_factory=list)
    root1: str | None = None
    root2: str | None = None
    error: str | None = None


def check_consistency(url: str, schema: str, size1: int, size2: int,
                      log_key: VerifierKey | None) -> ConsistencyCheck:
    """Prove from the tiles that checkpoint ``size2`` extends checkpoint ``size1``, and verify it.

    The two roots come from the SIGNED checkpoints (their log signature is
    checked first), never from an unsigned column.
    """
    res = ConsistencyCheck(False, size1, size2)
    if size1 <= 0 or size2 <= 0:
        res.error = "bad_size"
        return res
    if size1 > size2:
        res.error = "size_order"
        return res
    try:
        with cursor(url, schema) as cur:
            notes = log_store.checkpoint_notes(cur, [size1, size2])
            if size1 not in notes or size2 not in notes:
                res.error = "no_checkpoint"
                return res
            if log_key is None:
                res.error = "no_key"
                return res
            cp1, _ = open_checkpoint(notes[size1], log_key)
            cp2, _ = open_checkpoint(notes[size2], log_key)
            proof = log_store.consistency(cur, size1, size2) if size1 != size2 else []
    except CuentasError as e:
        res.error = getattr(e, "reason", "") or "bad_signature"
        return res
    res.root1 = base64.b64encode(cp1.root).decode()
    res.root2 = base64.b64encode(cp2.root).decode()
    res.proof = [base64.b64encode(h).decode() for h in proof]
    try:
        verify_consistency(size1, size2, proof, cp1.root, cp2.root)
    except (VerificationError, MalformedInput) as e:
        res.error = getattr(e, "reason", "") or "bad_proof"
        return res
    res.ok = True
    return res


def verify_inclusion_only(check: ReceiptCheck, log_key: VerifierKey) -> None:
    """Re-check an inclusion proof against the signed checkpoint (used for proof-only results)."""
    if check.checkpoint is None or check.leaf_index is None or check.tree_size is None or check.leaf_hash is None:
        raise MalformedInput("nothing to verify", reason="incomplete")
    cp, _ = open_checkpoint(check.checkpoint, log_key)
    verify_inclusion(base64.b64decode(check.leaf_hash), check.leaf_index, cp.size,
                     [base64.b64decode(h) for h in check.proof], cp.root)

