"""Receipt documents: one transfer's public record, proven, as a static file keyed by its receipt digest.

The light receipt check (issue 18) is a static page that fetches
``receipts/<first 2 hex>/<receipt_digest>.json`` beside the tlog-tiles
export and verifies it in the browser.  A document (format
:data:`DOC_FORMAT`) is::

    {
      "format": "cuentas-claras/receipt-doc/v1",
      "receipt_digest": "<64 hex: schemas.privacy.receipt_digest of the code>",
      "checkpoint": "<C2SP signed note: checkpoint + log signature + witness cosignatures>",
      "events": [
        {"leaf": "<base64 of the exact leaf bytes>", "leaf_index": 41,
         "inclusion_proof": ["<base64 32-byte hash>", ...], "registry_entry": 0},
        ...
      ],
      "registry": [
        {"leaf": "<base64>", "leaf_index": 3, "inclusion_proof": [...]},
        ...
      ]
    }

``events`` are every logged event of the transfer (``transfer.sent``,
``paid_out``, ``cancelled``, ``refunded``) and every ``flag.changed`` whose
subject is the transfer, in log order, each with its RFC 9162 inclusion
proof against the document's checkpoint.  ``registry`` holds, once each, the
registry entries that admitted the keys those events name (as the
``publisher_proof`` of :mod:`schemas.receipt` v2); ``registry_entry`` points
into it (``null`` when no logged entry admits the key: then the event's
publisher is not proven and a verifier refuses the document).

Nothing else: no unsigned summary (everything a verifier shows must come from
the verified events, and verifying takes milliseconds), nothing about persons
beyond the signed events' own bytes (which must be there verbatim to be
verified), no index of documents.  So a document is exactly as public as the
log it is cut from.

:func:`verify_document` is the reference verifier: each event becomes a
receipt v2 checked by :func:`schemas.receipt.verify_receipt`, and the
document must be about one transfer whose ``transfer.sent`` carries the
document's receipt digest.  The page's JavaScript does the same checks.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas.canonical import parse_json
from schemas.envelope import Envelope, parse_envelope
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import VerifierKey
from schemas.note import Checkpoint, open_checkpoint
from schemas.receipt import PublisherProof, Receipt, verify_receipt
from schemas.witness_policy import WitnessPolicy

__all__ = [
    "DOC_FORMAT",
    "DOC_DIR",
    "TRANSFER_EVENT_TYPES",
    "DocEntry",
    "DocEvent",
    "ReceiptDocument",
    "VerifiedDocument",
    "doc_path",
    "transfer_of_leaf",
    "group_by_transfer",
    "build_document",
    "parse_document",
    "verify_document",
]

DOC_FORMAT: Final = "cuentas-claras/receipt-doc/v1"
#: The folder beside ``tile/`` and ``checkpoint`` that holds the documents.
DOC_DIR: Final = "receipts"
#: The transfer's own events; with the ``flag.changed`` events about it, a document's content.
TRANSFER_EVENT_TYPES: Final = (
    "transfer.sent",
    "transfer.paid_out",
    "transfer.cancelled",
    "transfer.refunded",
)

_DIGEST_RE: Final = re.compile(r"[0-9a-f]{64}")
#: A document is a handful of events; the limit only bounds what a verifier reads.
_MAX_DOC_BYTES: Final = 4 << 20
_MAX_EVENTS: Final = 1000
_MAX_PROOF: Final = 64
_MAX_LEAF_BYTES: Final = 1 << 20
_TOP: Final = {"format", "receipt_digest", "checkpoint", "events", "registry"}
_EVENT: Final = {"leaf", "leaf_index", "inclusion_proof", "registry_entry"}
_ENTRY: Final = {"leaf", "leaf_index", "inclusion_proof"}


def doc_path(receipt_digest: str) -> str:
    """``receipts/<first 2 hex>/<digest>.json``: where a digest's document lives (no listing)."""
    if not isinstance(receipt_digest, str) or not _DIGEST_RE.fullmatch(receipt_digest):
        raise MalformedInput("a receipt digest is 64 lowercase hex digits", reason="receipt_digest")
    return f"{DOC_DIR}/{receipt_digest[:2]}/{receipt_digest}.json"


# --------------------------------------------------------------------------- which transfer


def transfer_of_leaf(leaf: bytes) -> str | None:
    """The transfer a logged leaf is about: a transfer event's, or a ``flag.changed``'s subject.

    The leaf is trusted bytes from the log (the gate checked them), so plain
    JSON parsing is enough; anything unexpected is simply about no transfer.
    """
    try:
        obj = json.loads(leaf)
        kind = obj["header"]["type"]
        payload = obj["payload"]
        if kind in TRANSFER_EVENT_TYPES:
            tid = payload["transfer_id"]
        elif kind == "flag.changed" and payload["subject"]["kind"] == "transfer":
            tid = payload["subject"]["id"]
        else:
            return None
    except (ValueError, TypeError, KeyError):
        return None
    return tid if isinstance(tid, str) else None


def group_by_transfer(entries: Iterable[tuple[int, bytes]]) -> dict[str, list[int]]:
    """``{transfer id: [log index, ...]}`` of the leaves ``(index, leaf)`` about a transfer."""
    out: dict[str, list[int]] = {}
    for index, leaf in entries:
        tid = transfer_of_leaf(leaf)
        if tid is not None:
            out.setdefault(tid, []).append(index)
    return out


# --------------------------------------------------------------------------- the document


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


@dataclass(frozen=True)
class DocEntry:
    """A registry entry that admitted a key, with its inclusion proof."""

    leaf: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]

    def to_obj(self) -> dict[str, Any]:
        return {
            "leaf": _b64(self.leaf),
            "leaf_index": self.leaf_index,
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
        }


@dataclass(frozen=True)
class DocEvent:
    """One event of the transfer, its proof, and which registry entry admitted its key."""

    leaf: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    registry_entry: int | None

    def to_obj(self) -> dict[str, Any]:
        return {
            "leaf": _b64(self.leaf),
            "leaf_index": self.leaf_index,
            "inclusion_proof": [_b64(h) for h in self.inclusion_proof],
            "registry_entry": self.registry_entry,
        }


@dataclass(frozen=True)
class ReceiptDocument:
    receipt_digest: str
    checkpoint: str
    events: tuple[DocEvent, ...]
    registry: tuple[DocEntry, ...]

    @property
    def path(self) -> str:
        return doc_path(self.receipt_digest)

    def to_obj(self) -> dict[str, Any]:
        return {
            "format": DOC_FORMAT,
            "receipt_digest": self.receipt_digest,
            "checkpoint": self.checkpoint,
            "events": [e.to_obj() for e in self.events],
            "registry": [e.to_obj() for e in self.registry],
        }

    def to_bytes(self) -> bytes:
        """Compact JSON: a phone on 3G downloads it."""
        return json.dumps(self.to_obj(), separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def receipts(self, tree_size: int) -> list[Receipt]:
        """Each event as a receipt v2 (publisher proof included when its entry is known)."""
        out = []
        for e in self.events:
            proof = None
            if e.registry_entry is not None:
                r = self.registry[e.registry_entry]
                proof = PublisherProof(json.loads(r.leaf), r.leaf_index, r.inclusion_proof)
            out.append(
                Receipt(json.loads(e.leaf), e.leaf_index, tree_size, e.inclusion_proof, self.checkpoint,
                        None, proof)
            )
        return out


def build_document(
    receipt_digest: str,
    checkpoint_note: str,
    events: Sequence[tuple[bytes, int, Sequence[bytes], tuple[bytes, int, Sequence[bytes]] | None]],
) -> ReceiptDocument:
    """A document from ``(leaf, index, proof, admitting entry or None)`` per event.

    The admitting entry is ``(leaf, index, proof)`` of the registry event that
    admitted the event's key (:func:`infra.receipts.publisher_proof` finds it);
    entries shared by several events are written once.  Events are put in log
    order; all proofs must be against ``checkpoint_note``'s tree.
    """
    doc_path(receipt_digest)  # validates the digest
    registry: list[DocEntry] = []
    where: dict[int, int] = {}
    out: list[DocEvent] = []
    for leaf, index, proof, entry in sorted(events, key=lambda e: e[1]):
        ref: int | None = None
        if entry is not None:
            e_leaf, e_index, e_proof = entry
            if e_index not in where:
                where[e_index] = len(registry)
                registry.append(DocEntry(bytes(e_leaf), e_index, tuple(e_proof)))
            ref = where[e_index]
        out.append(DocEvent(bytes(leaf), index, tuple(proof), ref))
    return ReceiptDocument(receipt_digest, checkpoint_note, tuple(out), tuple(registry))


# --------------------------------------------------------------------------- parsing


def _bad(msg: str, field: str | None = None) -> MalformedInput:
    return MalformedInput(f"receipt document: {msg}", reason="receipt_doc", field=field)


def _index(obj: Mapping[str, Any], where: str) -> int:
    v = obj.get("leaf_index")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise _bad(f"{where}/leaf_index must be a non-negative integer", where + "/leaf_index")
    return v


def _bytes(value: object, where: str, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or (size is not None and len(raw) != size) or (size is None and not raw):
        raise _bad(f"{where} is not base64{f' of {size} bytes' if size else ''}", where)
    if size is None and len(raw) > _MAX_LEAF_BYTES:
        raise _bad(f"{where} is over {_MAX_LEAF_BYTES} bytes", where)
    return raw


def _proof(value: object, where: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > _MAX_PROOF:
        raise _bad(f"{where} must be a list of at most {_MAX_PROOF} hashes", where)
    return tuple(_bytes(h, f"{where}/{i}", 32) for i, h in enumerate(value))


def _members(obj: object, keys: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise _bad(f"{where or 'the document'} must be an object with exactly {', '.join(sorted(keys))}",
                   where or None)
    return obj


def parse_document(data: bytes | str) -> ReceiptDocument:
    """Parse a document strictly (``MalformedInput(reason="receipt_doc")`` otherwise); no checks of proofs."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    obj = _members(parse_json(raw, max_bytes=_MAX_DOC_BYTES), _TOP, "")
    if obj["format"] != DOC_FORMAT:
        raise _bad(f"unknown format {obj['format']!r} (want {DOC_FORMAT})", "format")
    digest = obj["receipt_digest"]
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise _bad("receipt_digest must be 64 lowercase hex digits", "receipt_digest")
    if not isinstance(obj["checkpoint"], str):
        raise _bad("checkpoint must be the signed note text", "checkpoint")
    entries, events = obj["registry"], obj["events"]
    if not isinstance(entries, list) or len(entries) > _MAX_EVENTS:
        raise _bad(f"registry must be a list of at most {_MAX_EVENTS} entries", "registry")
    if not isinstance(events, list) or not 1 <= len(events) <= _MAX_EVENTS:
        raise _bad(f"events must be a list of 1 to {_MAX_EVENTS} events", "events")
    registry = []
    for i, e in enumerate(entries):
        w = f"registry/{i}"
        m = _members(e, set(_ENTRY), w)
        registry.append(DocEntry(_bytes(m["leaf"], w + "/leaf"), _index(m, w),
                                 _proof(m["inclusion_proof"], w + "/inclusion_proof")))
    out = []
    for i, e in enumerate(events):
        w = f"events/{i}"
        m = _members(e, set(_EVENT), w)
        ref = m["registry_entry"]
        if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int)
                                or not 0 <= ref < len(registry)):
            raise _bad(f"{w}/registry_entry must be null or an index into registry", w + "/registry_entry")
        out.append(DocEvent(_bytes(m["leaf"], w + "/leaf"), _index(m, w),
                            _proof(m["inclusion_proof"], w + "/inclusion_proof"), ref))
    return ReceiptDocument(digest, obj["checkpoint"], tuple(out), tuple(registry))


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifiedDocument:
    document: ReceiptDocument
    transfer_id: str
    checkpoint: Checkpoint
    witnesses: tuple[tuple[VerifierKey, int], ...]
    #: The events, in log order, each checked: inclusion, publisher key and signature.
    envelopes: tuple[Envelope, ...]


def _about(env: Envelope) -> str | None:
    return transfer_of_leaf(env.leaf_bytes())


def verify_document(
    document: ReceiptDocument | bytes | str,
    log_key: VerifierKey,
    policy: WitnessPolicy,
    receipt_digest: str | None = None,
) -> VerifiedDocument:
    """Check a document fully; ``VerificationError`` / ``MalformedInput`` with one line otherwise.

    Checked: the log's signature and the witness policy on the checkpoint;
    each event's inclusion in it, its publisher's key by the registry entry
    in the same log (logged before it, valid from its time) and its
    signature (all by :func:`schemas.receipt.verify_receipt`); events in
    strictly increasing log order; every event about one transfer, whose
    ``transfer.sent`` carries ``receipt_digest`` (the document's own when
    None is given).
    """
    doc = document if isinstance(document, ReceiptDocument) else parse_document(document)
    want = doc.receipt_digest if receipt_digest is None else receipt_digest
    if doc.receipt_digest != want:
        raise VerificationError("the document is for another receipt code", reason="digest_mismatch",
                                expected=want, got=doc.receipt_digest)
    cp, _note = open_checkpoint(doc.checkpoint, log_key)
    envelopes: list[Envelope] = []
    witnesses: tuple[tuple[VerifierKey, int], ...] = ()
    last = -1
    for i, (ev, receipt) in enumerate(zip(doc.events, doc.receipts(cp.size), strict=True)):
        if ev.leaf_index <= last:
            raise VerificationError("the document's events are not in log order", reason="order",
                                    expected=f"> {last}", got=ev.leaf_index)
        last = ev.leaf_index
        if ev.registry_entry is None:
            raise VerificationError(
                f"event {i}: no registry entry proves its publisher's key", reason="publisher_proof")
        try:
            v = verify_receipt(receipt, log_key, policy=policy)
        except (VerificationError, MalformedInput) as e:
            e.args = (f"event {i}: {e}",)
            raise
        if v.receipt.leaf_bytes() != ev.leaf:
            # The receipt holds the parsed event: its canonical form must be the leaf itself.
            raise VerificationError(f"event {i}: the leaf is not in canonical form", reason="leaf")
        witnesses = v.witnesses
        envelopes.append(parse_envelope(ev.leaf, max_bytes=_MAX_LEAF_BYTES))
    about = {_about(e) for e in envelopes}
    sent = [e for e in envelopes if e.event_type == "transfer.sent"]
    if len(about) != 1 or None in about or not sent:
        raise VerificationError("the document's events are not all about one sent transfer",
                                reason="transfer_mismatch")
    if not any(e.payload.get("receipt_digest") == want for e in sent):
        raise VerificationError("the transfer's receipt digest is not the code's", reason="digest_mismatch",
                                expected=want, got=sent[0].payload.get("receipt_digest"))
    tid = about.pop()
    assert tid is not None
    return VerifiedDocument(doc, tid, cp, witnesses, tuple(envelopes))
