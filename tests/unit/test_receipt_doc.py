"""Receipt documents (issue 18): one transfer's events, proven against one cosigned checkpoint."""

from __future__ import annotations

import base64
import json

import pytest

from schemas.errors import MalformedInput, VerificationError
from schemas.note import parse_note
from schemas.privacy import receipt_digest
from schemas.receipt_doc import (
    DOC_FORMAT,
    build_document,
    doc_path,
    group_by_transfer,
    parse_document,
    transfer_of_leaf,
    verify_document,
)
from schemas.witness_policy import WitnessPolicy
from tests.receipt_site import build_site, tamper_leaf

SITE = build_site()
POLICY = WitnessPolicy.of([SITE.witness_key])


def doc(n: int):
    return SITE.docs[f"tr-site-{n}"]


def test_path_is_keyed_by_the_digest_only() -> None:
    d = receipt_digest("CC-0000-0000-0000-0000")
    assert doc_path(d) == f"receipts/{d[:2]}/{d}.json"
    for bad in ("", d.upper(), d[:-1], "../" + d[3:], d + "0"):
        with pytest.raises(MalformedInput):
            doc_path(bad)


def test_which_transfer_a_leaf_is_about() -> None:
    about = [transfer_of_leaf(leaf) for leaf in SITE.leaves]
    assert about == [None, None, "tr-site-1", "tr-site-2", "tr-site-3", "tr-site-1", "tr-site-2", "tr-site-1", None]
    assert transfer_of_leaf(b"not json") is None
    assert transfer_of_leaf(b'{"header": {"type": "flag.changed"}, "payload": {"subject": {"kind": "project",'
                            b' "id": "p-1"}}}') is None
    grouped = group_by_transfer(enumerate(SITE.leaves))
    assert grouped == {"tr-site-1": [2, 5, 7], "tr-site-2": [3, 6], "tr-site-3": [4]}


def test_a_document_holds_the_events_and_each_registry_entry_once() -> None:
    code, d = doc(1)
    obj = json.loads(d.to_bytes())
    assert set(obj) == {"format", "receipt_digest", "checkpoint", "events", "registry"}
    assert obj["format"] == DOC_FORMAT and obj["receipt_digest"] == receipt_digest(code)
    assert [e["leaf_index"] for e in obj["events"]] == [2, 5, 7]
    # the operator's registration (for sent and paid out) and the platform's (for the flag)
    assert [e["leaf_index"] for e in obj["registry"]] == [0, 1]
    assert [e["registry_entry"] for e in obj["events"]] == [0, 0, 1]
    # the leaves are the exact logged bytes
    assert [base64.b64decode(e["leaf"]) for e in obj["events"]] == [SITE.leaves[i] for i in (2, 5, 7)]
    assert parse_document(d.to_bytes()) == d


def test_nothing_about_persons_outside_the_signed_events() -> None:
    """The pseudonyms are inside the transfer.sent leaf (needed to verify it), nowhere else."""
    text = doc(1)[1].to_bytes().decode()
    assert "snd_" not in text and "ben_" not in text and "tr-site-1" not in text


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_document_verifies(n: int) -> None:
    code, d = doc(n)
    v = verify_document(d.to_bytes(), SITE.log_key, POLICY, receipt_digest(code))
    assert v.transfer_id == f"tr-site-{n}"
    assert v.envelopes[0].event_type == "transfer.sent"
    assert [k.name for k, _ in v.witnesses] == ["witness.site"]


def _refused(data: bytes | object, reason: str | None = None, digest: str | None = None) -> str:
    with pytest.raises((VerificationError, MalformedInput)) as e:
        verify_document(data, SITE.log_key, POLICY, digest)  # type: ignore[arg-type]
    if reason is not None:
        assert e.value.reason == reason, str(e.value)
    return str(e.value)


def test_a_changed_amount_is_refused() -> None:
    _, d = doc(1)
    _refused(tamper_leaf(d, 0, b'"amount":20000', b'"amount":2000'))


def test_a_changed_proof_hash_is_refused() -> None:
    _, d = doc(1)
    obj = json.loads(d.to_bytes())
    h = bytearray(base64.b64decode(obj["events"][1]["inclusion_proof"][0]))
    h[0] ^= 1
    obj["events"][1]["inclusion_proof"][0] = base64.b64encode(bytes(h)).decode()
    _refused(json.dumps(obj).encode(), "root_mismatch")


def test_a_checkpoint_without_its_cosignature_is_refused() -> None:
    _, d = doc(2)
    obj = json.loads(d.to_bytes())
    note = parse_note(obj["checkpoint"])
    obj["checkpoint"] = note.text + "\n" + note.signatures[0].line() + "\n"
    _refused(json.dumps(obj).encode(), "not_enough_witnesses")
    # ...which a verifier that trusts no witness would accept: the policy decides
    assert verify_document(json.dumps(obj).encode(), SITE.log_key, WitnessPolicy()).transfer_id == "tr-site-2"


def test_another_codes_document_is_refused() -> None:
    code1, _ = doc(1)
    _, d2 = doc(2)
    _refused(d2.to_bytes(), "digest_mismatch", receipt_digest(code1))
    # the same events relabelled with code 1's digest: its transfer.sent does not carry it
    obj = json.loads(d2.to_bytes())
    obj["receipt_digest"] = receipt_digest(code1)
    _refused(json.dumps(obj).encode(), "digest_mismatch", receipt_digest(code1))


def test_events_of_two_transfers_are_refused() -> None:
    _, d = doc(1)
    _, d2 = doc(2)
    mixed = type(d)(d.receipt_digest, d.checkpoint, (*d.events[:1], d2.events[1]), d.registry)
    _refused(mixed, "transfer_mismatch")


def test_events_out_of_log_order_are_refused() -> None:
    _, d = doc(1)
    swapped = type(d)(d.receipt_digest, d.checkpoint, (d.events[1], d.events[0], d.events[2]), d.registry)
    _refused(swapped, "order")


def test_an_event_without_its_registry_entry_is_refused() -> None:
    _, d = doc(2)
    obj = json.loads(d.to_bytes())
    obj["events"][1]["registry_entry"] = None
    _refused(json.dumps(obj).encode(), "publisher_proof")
    # a registry entry of another publisher does not prove the key either
    code, d3 = doc(3)
    items = [(e.leaf, e.leaf_index, e.inclusion_proof, (SITE.leaves[1], 1, [])) for e in d3.events]
    _refused(build_document(receipt_digest(code), d3.checkpoint, items))


@pytest.mark.parametrize("change", [
    lambda o: o.update(extra=1),
    lambda o: o.update(format="cuentas-claras/receipt-doc/v9"),
    lambda o: o.update(receipt_digest="AB" * 32),
    lambda o: o.update(events=[]),
    lambda o: o["events"][0].update(leaf="not base64!"),
    lambda o: o["events"][0].update(leaf_index=-1),
    lambda o: o["events"][0].update(registry_entry=5),
    lambda o: o["events"][0].update(inclusion_proof=["AAAA"]),
    lambda o: o["registry"][0].pop("leaf"),
])
def test_malformed_documents_are_refused(change) -> None:
    obj = json.loads(doc(1)[1].to_bytes())
    change(obj)
    with pytest.raises(MalformedInput) as e:
        parse_document(json.dumps(obj).encode())
    assert e.value.reason == "receipt_doc"
