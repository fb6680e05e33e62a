"""A small log built with the pure core, and the static site of its receipt documents.

No broker, no database: the registry authority admits an operator and the
platform, the operator publishes three transfers (paid short with an open
discrepancy, paid in full, sent and waiting), the platform signs the
discrepancy's ``flag.changed``; the log's checkpoint is signed and cosigned
by one witness; each transfer's receipt document is built with
:func:`schemas.receipt_doc.build_document` from proofs of
:mod:`schemas.merkle`.  Shared by the unit tests of the documents and the
browser tests of the page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.envelope import Envelope, event_id_from, sign_event
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, format_verifier_key, public_key_bytes
from schemas.merkle import inclusion_proof, root_hash
from schemas.note import Checkpoint, add_signatures, cosign, format_checkpoint, sign_checkpoint
from schemas.privacy import receipt_code, receipt_digest
from schemas.receipt import admission_for
from schemas.receipt_doc import ReceiptDocument, build_document
from schemas.times import format_time
from tests.hostile.corpus import private_key

__all__ = ["Site", "build_site", "T0", "tamper_leaf", "transfer_payload"]

ORIGIN = "cuentasclaras.example/log"
AUTH, OP, PLATFORM = "registry.cuentasclaras", "op.remesas-sol", "cuentasclaras.platform"
SECRET = b"receipt-site-test-secret-0123456789"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@dataclass
class Site:
    log_key: VerifierKey
    witness_key: VerifierKey
    checkpoint: str  # signed and cosigned
    leaves: list[bytes]
    envelopes: list[Envelope]
    #: transfer id -> (receipt code, document)
    docs: dict[str, tuple[str, ReceiptDocument]] = field(default_factory=dict)
    other_witness: VerifierKey | None = None

    def write(self, root: Path, *, page: bool = True, min_witnesses: int | None = None) -> Path:
        """Write the documents (and the page, for the log and witness keys) under ``root``."""
        from infra.receipt_page import build_page, write_files

        files = {d.path: d.to_bytes() for _, d in self.docs.values()}
        if page:
            files.update(build_page(self.log_key, [self.witness_key], min_witnesses))
        files["checkpoint"] = self.checkpoint.encode()
        write_files(root, files)
        return root


def transfer_payload(n: int, *, send: int = 20000, promised: int = 340000, digest: str) -> dict[str, Any]:
    return {
        "transfer_id": f"tr-site-{n}", "operator": OP, "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": send, "currency": "USD"}, "fee": {"amount": 499, "currency": "USD"},
        "exchange_rate": "17.25", "receive_promised": {"amount": promised, "currency": "MXN"},
        "available_by": format_time(T0 + timedelta(hours=n, minutes=30)),
        "destination": {"kind": "beneficiary", "beneficiary": "ben_" + "a" * 26},
        "sender": "snd_" + "b" * 26, "receipt_digest": digest, "disclosed_cost_bps": 450,
    }


def build_site(*, witness_seed: str = "site-witness") -> Site:
    log_k, w_k = private_key("site-log"), private_key(witness_seed)
    auth_k, op_k, plat_k = private_key("site-authority"), private_key("site-op"), private_key("site-platform")
    seqs: dict[str, int] = {}

    def signed(key: Ed25519PrivateKey, who: str, kind: str, payload: dict[str, Any], when: datetime) -> Envelope:
        seqs[who] = seqs.get(who, 0) + 1
        return sign_event(key, publisher_id=who, event_type=kind, payload=payload, seq=seqs[who], event_time=when)

    def register(who: str, kind: str, key: Ed25519PrivateKey, roles: list[str]) -> Envelope:
        return signed(auth_k, AUTH, "publisher.registered", {
            "publisher_id": who, "kind": kind, "roles": roles,
            "public_key": format_verifier_key(who, public_key_bytes(key)),
            "valid_from": format_time(T0 - timedelta(days=1))}, T0 - timedelta(days=1))

    codes = {n: receipt_code(SECRET, f"tr-site-{n}") for n in (1, 2, 3)}
    evs = [
        register(OP, "operator", op_k, ["transfer.sent", "transfer.paid_out"]),
        register(PLATFORM, "platform", plat_k, ["flag.changed"]),
    ]
    for n in (1, 2, 3):
        evs.append(signed(op_k, OP, "transfer.sent", transfer_payload(n, digest=receipt_digest(codes[n])),
                          T0 + timedelta(minutes=n)))
    # transfer 1: paid 300.00 MXN short, late; transfer 2: paid in full, on time; transfer 3: waiting
    paid1 = T0 + timedelta(hours=3)
    evs.append(signed(op_k, OP, "transfer.paid_out", {"transfer_id": "tr-site-1", "paid": {
        "amount": 310000, "currency": "MXN"}, "paid_at": format_time(paid1), "payout_ref": "po-site-1"},
        paid1))
    paid2 = T0 + timedelta(minutes=50)
    evs.append(signed(op_k, OP, "transfer.paid_out", {"transfer_id": "tr-site-2", "paid": {
        "amount": 340000, "currency": "MXN"}, "paid_at": format_time(paid2), "payout_ref": "po-site-2"}, paid2))
    index_of = {e.event_id: i for i, e in enumerate(evs)}
    sent1, pay1 = evs[2], evs[5]
    flag_at = paid1 + timedelta(minutes=1)
    evs.append(sign_event(plat_k, publisher_id=PLATFORM, event_type="flag.changed", seq=1, event_time=flag_at,
                          event_id=event_id_from(b"flag-site-1|1"), payload={
        "flag_id": "fl-site-1", "flag_type": "short_payout", "status": "open", "previous_status": None,
        "subject": {"kind": "transfer", "id": "tr-site-1"}, "accountable": OP, "severity": "high",
        "amount_at_stake": {"amount": 30000, "currency": "MXN"},
        "evidence": [{"event_id": sent1.event_id, "log_index": index_of[sent1.event_id]},
                     {"event_id": pay1.event_id, "log_index": index_of[pay1.event_id]}],
        "actor": "system", "reason_code": "auto_detected", "changed_at": format_time(flag_at)}))
    # an unrelated publisher event after them, so the tree is not a power of two
    evs.append(register("op.otra", "operator", private_key("site-other-op"), ["transfer.sent"]))

    leaves = [e.leaf_bytes() for e in evs]
    size = len(leaves)
    cp_text = format_checkpoint(Checkpoint(ORIGIN, size, root_hash(leaves)))
    note = sign_checkpoint(Checkpoint(ORIGIN, size, root_hash(leaves)), log_k)
    note = add_signatures(note, [cosign(cp_text, "witness.site", w_k, 1_772_000_000)])
    site = Site(VerifierKey(ORIGIN, public_key_bytes(log_k)),
                VerifierKey("witness.site", public_key_bytes(w_k), ALG_COSIGNATURE_V1), note, leaves, evs)
    registry = [(i, e) for i, e in enumerate(evs) if e.event_type.startswith("publisher.")]
    for n in (1, 2, 3):
        tid = f"tr-site-{n}"
        mine = [(i, e) for i, e in enumerate(evs) if json.loads(e.leaf_bytes())["payload"].get("transfer_id") == tid
                or (e.event_type == "flag.changed" and e.payload["subject"]["id"] == tid)]
        items = []
        for i, e in mine:
            found = admission_for(e, i, registry)
            entry = None if found is None else (leaves[found[0]], found[0], inclusion_proof(found[0], leaves))
            items.append((leaves[i], i, inclusion_proof(i, leaves), entry))
        site.docs[tid] = (codes[n], build_document(receipt_digest(codes[n]), note, items))
    return site


def tamper_leaf(doc: ReceiptDocument, event: int, old: bytes, new: bytes) -> bytes:
    """The document's bytes with ``old`` replaced by ``new`` inside one event's leaf."""
    obj = json.loads(doc.to_bytes())
    leaf = base64.b64decode(obj["events"][event]["leaf"])
    assert old in leaf, (old, leaf)
    obj["events"][event]["leaf"] = base64.b64encode(leaf.replace(old, new, 1)).decode()
    return json.dumps(obj).encode()

