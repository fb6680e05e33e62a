"""Receipts v2 prove the publisher's key from the log itself (issue 14, item 4).

A small log is built in memory: the registry authority registers a publisher,
which publishes, then rotates its key and publishes with both keys during the
overlap.  Receipts carry the registry entry that admitted the key each event
names, with its inclusion proof in the same checkpoint, so the log key is all
a verifier needs; every way of lying about that entry is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.envelope import Envelope, sign_event
from schemas.errors import CuentasError, MalformedInput
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, format_verifier_key, public_key_bytes
from schemas.merkle import inclusion_proof, root_hash
from schemas.note import Checkpoint, add_signatures, cosign, format_checkpoint, sign_checkpoint
from schemas.receipt import (
    BUNDLE_FORMAT,
    RECEIPT_FORMAT,
    RECEIPT_FORMAT_V1,
    PublisherProof,
    Receipt,
    admission_for,
    build_receipt,
    bundle_json,
    parse_receipts,
    verify_receipt,
)
from schemas.times import format_time
from schemas.witness_policy import WitnessPolicy
from tests.hostile.corpus import private_key

ROOT = Path(__file__).resolve().parents[2]
LOG = "cuentasclaras.example/log"
LOG_KEY, W_KEY = private_key("v2-log"), private_key("v2-witness")
LOG_VK = VerifierKey(LOG, public_key_bytes(LOG_KEY))
W_VK = VerifierKey("witness.v2", public_key_bytes(W_KEY), ALG_COSIGNATURE_V1)
AUTH = "registry.cuentasclaras"
AUTH_KEY = private_key("v2-authority")
OP = "op.rotating"
K1, K2 = private_key("v2-op-1"), private_key("v2-op-2")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

_seq = {"auth": 0, "op": 0}


def _registry(event_type: str, payload: dict[str, Any]) -> Envelope:
    _seq["auth"] += 1
    return sign_event(AUTH_KEY, publisher_id=AUTH, event_type=event_type, payload=payload, seq=_seq["auth"],
                      event_time=T0)


def _paid(key: Any, n: int, when: datetime) -> Envelope:
    _seq["op"] += 1
    return sign_event(key, publisher_id=OP, event_type="transfer.paid_out", seq=_seq["op"], event_time=when,
                      payload={"transfer_id": f"tr-v2-{n}", "paid": {"amount": 1000 + n, "currency": "MXN"},
                               "paid_at": format_time(when), "payout_ref": f"po-{n}"})


REGISTERED = _registry("publisher.registered", {
    "publisher_id": OP, "kind": "operator", "roles": ["transfer.paid_out"],
    "public_key": format_verifier_key(OP, public_key_bytes(K1)), "valid_from": format_time(T0)})
OTHER = _registry("publisher.registered", {
    "publisher_id": "op.other", "kind": "operator", "roles": ["transfer.paid_out"],
    "public_key": format_verifier_key("op.other", public_key_bytes(private_key("v2-other"))),
    "valid_from": format_time(T0)})
BEFORE = _paid(K1, 1, T0 + timedelta(hours=1))  # signed before the rotation
ROTATED = _registry("publisher.key_rotated", {
    "publisher_id": OP, "new_public_key": format_verifier_key(OP, public_key_bytes(K2)),
    "valid_from": format_time(T0 + timedelta(days=1)),
    "old_key_valid_until": format_time(T0 + timedelta(days=8))})
AFTER = _paid(K2, 2, T0 + timedelta(days=2))  # the new key
OVERLAP = _paid(K1, 3, T0 + timedelta(days=3))  # the old key, still valid during the overlap
REVOKED = _registry("publisher.revoked", {"publisher_id": "op.other", "key_id": None,
                                          "revoked_at": format_time(T0 + timedelta(days=4)),
                                          "reason_code": "retired"})
EARLY = _paid(K2, 4, T0 + timedelta(hours=2))  # signed with the new key before its valid_from
LOG_ENVS = [REGISTERED, OTHER, BEFORE, ROTATED, AFTER, OVERLAP, REVOKED, EARLY]
LEAVES = [e.leaf_bytes() for e in LOG_ENVS]
INDEX = {e.event_id: i for i, e in enumerate(LOG_ENVS)}
CP = Checkpoint(LOG, len(LEAVES), root_hash(LEAVES))
NOTE = add_signatures(sign_checkpoint(CP, LOG_KEY), [cosign(format_checkpoint(CP), W_VK.name, W_KEY, 1_767_225_600)])


def proof_of(index: int) -> PublisherProof:
    return PublisherProof(json.loads(LEAVES[index]), index, tuple(inclusion_proof(index, LEAVES)))


def receipt(env: Envelope, proof: PublisherProof | None = None) -> Receipt:
    i = INDEX[env.event_id]
    if proof is None:
        found = admission_for(env, i, list(enumerate(LOG_ENVS)))
        assert found is not None
        proof = proof_of(found[0])
    return build_receipt(LEAVES[i], i, len(LEAVES), inclusion_proof(i, LEAVES), NOTE, publisher_proof=proof)


def refused(r: Receipt | bytes, reason: str) -> str:
    with pytest.raises(CuentasError) as e:
        verify_receipt(r, LOG_VK, [W_VK])
    assert getattr(e.value, "reason", None) == reason, (getattr(e.value, "reason", None), str(e.value))
    return str(e.value)


# --- choosing the registry entry ----------------------------------------------------------------


def test_regression_the_key_is_chosen_by_key_id_not_the_newest() -> None:
    """Regression: receipts carried the publisher's newest key, so a receipt of an event signed before
    a rotation failed with key_mismatch; the registry entry admitting the event's key id is chosen."""
    entries = list(enumerate(LOG_ENVS))
    assert admission_for(BEFORE, INDEX[BEFORE.event_id], entries) == (0, REGISTERED)
    assert admission_for(AFTER, INDEX[AFTER.event_id], entries) == (3, ROTATED)
    assert admission_for(OVERLAP, INDEX[OVERLAP.event_id], entries) == (0, REGISTERED)
    # a key admitted only after the event was logged did not admit it
    assert admission_for(AFTER, 3, entries) is None
    # the registry authority's own events: no registry entry admits its key
    assert admission_for(ROTATED, INDEX[ROTATED.event_id], entries) is None


@pytest.mark.parametrize("env", [BEFORE, AFTER, OVERLAP], ids=["before-rotation", "after", "overlap"])
def test_v2_receipts_verify_with_the_log_key_alone(env: Envelope) -> None:
    r = receipt(env)
    data = r.to_json().encode()
    assert json.loads(data)["format"] == RECEIPT_FORMAT
    v = verify_receipt(data, LOG_VK)
    assert v.publisher_key_proven and v.publisher_signature_checked
    assert "admitted by registry entry" in v.publisher_status
    assert verify_receipt(data, LOG_VK, [W_VK]).witnesses[0][0] == W_VK


def test_v1_receipts_still_verify_but_say_the_key_is_not_proven() -> None:
    i = INDEX[BEFORE.event_id]
    bare = build_receipt(LEAVES[i], i, len(LEAVES), inclusion_proof(i, LEAVES), NOTE)
    assert json.loads(bare.to_json())["format"] == RECEIPT_FORMAT_V1
    v = verify_receipt(bare.to_json(), LOG_VK, [W_VK])
    assert not v.publisher_key_proven and v.publisher_status == "publisher key not proven"
    keyed = build_receipt(LEAVES[i], i, len(LEAVES), inclusion_proof(i, LEAVES), NOTE,
                          format_verifier_key(OP, public_key_bytes(K1)))
    v = verify_receipt(keyed.to_json(), LOG_VK)
    assert v.publisher_signature_checked and not v.publisher_key_proven
    assert v.publisher_status.endswith("publisher key not proven")


# --- lying about the publisher's key ------------------------------------------------------------


def test_the_registry_entry_of_the_other_key_is_refused() -> None:
    # the rotation is in the log, but it admitted K2, not the K1 that signed BEFORE... and was logged later
    assert refused(receipt(BEFORE, proof_of(3)), "admitted_later")
    # the registration admitted K1, not the K2 that signed AFTER
    refused(receipt(AFTER, proof_of(0)), "key_mismatch")


def test_another_publishers_registration_is_refused() -> None:
    assert "admits a key of op.other" in refused(receipt(BEFORE, proof_of(1)), "key_mismatch")


def test_a_registry_entry_that_admits_no_key_is_refused() -> None:
    r = receipt(EARLY, proof_of(6))  # a revocation, logged before EARLY
    refused(r, "not_an_admission")


def test_a_key_used_before_its_valid_from_is_refused() -> None:
    assert "is valid from" in refused(receipt(EARLY), "key_not_yet_valid")


def test_a_registry_entry_not_in_the_log_is_refused() -> None:
    forged = _registry("publisher.registered", {
        "publisher_id": OP, "kind": "operator", "roles": ["transfer.paid_out"],
        "public_key": format_verifier_key(OP, public_key_bytes(K2)), "valid_from": format_time(T0)})
    p = proof_of(0)
    refused(receipt(AFTER, PublisherProof(json.loads(forged.leaf_bytes()), 0, p.inclusion_proof)),
            "publisher_proof")
    refused(receipt(BEFORE, PublisherProof(p.entry, 1, p.inclusion_proof)), "publisher_proof")
    refused(receipt(BEFORE, PublisherProof(p.entry, 0, p.inclusion_proof[:-1])), "publisher_proof")


def test_a_forged_event_signature_is_refused_even_with_its_registry_entry() -> None:
    forged = _paid(private_key("intruder"), 9, T0 + timedelta(hours=3))
    envs = [*LOG_ENVS, forged]
    leaves = [e.leaf_bytes() for e in envs]
    cp = Checkpoint(LOG, len(leaves), root_hash(leaves))
    note = sign_checkpoint(cp, LOG_KEY)
    i = len(leaves) - 1
    proof = PublisherProof(json.loads(leaves[0]), 0, tuple(inclusion_proof(0, leaves)))
    r = build_receipt(leaves[i], i, len(leaves), inclusion_proof(i, leaves), note, publisher_proof=proof)
    with pytest.raises(CuentasError) as e:
        verify_receipt(r, LOG_VK)
    assert e.value.reason == "key_mismatch"  # type: ignore[attr-defined]


@pytest.mark.parametrize("change", [
    {"format": RECEIPT_FORMAT_V1},  # a v1 has no publisher_proof
    {"publisher_key": "x"},  # a v2 has no publisher_key
    {"publisher_proof": None},
    {"publisher_proof": {"entry": {}, "leaf_index": 0}},
    {"publisher_proof": {"entry": [], "leaf_index": 0, "inclusion_proof": []}},
    {"publisher_proof": {"entry": {}, "leaf_index": -1, "inclusion_proof": []}},
    {"publisher_proof": {"entry": {}, "leaf_index": 0, "inclusion_proof": ["AAAA"]}},
])
def test_malformed_v2_receipts(change: dict[str, Any]) -> None:
    obj = receipt(BEFORE).to_obj()
    obj.update(change)
    with pytest.raises(MalformedInput):
        verify_receipt(json.dumps(obj).encode(), LOG_VK)
    obj = receipt(BEFORE).to_obj()
    del obj["publisher_proof"]
    with pytest.raises(MalformedInput):
        verify_receipt(json.dumps(obj).encode(), LOG_VK)


# --- witness policy -----------------------------------------------------------------------------


def test_witness_policy_is_strict_by_default() -> None:
    i = INDEX[BEFORE.event_id]
    bare_note = sign_checkpoint(CP, LOG_KEY)
    r = build_receipt(LEAVES[i], i, len(LEAVES), inclusion_proof(i, LEAVES), bare_note, publisher_proof=proof_of(0))
    assert verify_receipt(r, LOG_VK).witnesses == ()  # no witness key: nothing required
    assert "missing: witness.v2" in refused(r, "not_enough_witnesses")
    assert verify_receipt(r, LOG_VK, [W_VK], 0).witnesses == ()
    with pytest.raises(MalformedInput):
        WitnessPolicy.of([W_VK], 2)
    with pytest.raises(MalformedInput):
        WitnessPolicy.of([LOG_VK])  # a log key is no witness key


# --- bundles --------------------------------------------------------------------------------------


def test_bundles() -> None:
    rs = [receipt(e) for e in (BEFORE, AFTER, OVERLAP)]
    data = bundle_json(rs, transfer_id="tr-v2")
    assert json.loads(data)["format"] == BUNDLE_FORMAT
    assert [r.leaf_index for r in parse_receipts(data)] == [2, 4, 5]
    assert len(parse_receipts(rs[0].to_json())) == 1
    for bad in ({"format": BUNDLE_FORMAT}, {"format": BUNDLE_FORMAT, "receipts": []},
                {"format": BUNDLE_FORMAT, "receipts": [{"format": "x"}]}):
        with pytest.raises(MalformedInput):
            parse_receipts(json.dumps(bad))


def _cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cuentas", "verify", str(path), "--log-key", str(LOG_VK), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_cli_verifies_a_bundle_and_names_the_bad_receipt(tmp_path: Path) -> None:
    rs = [receipt(e) for e in (BEFORE, AFTER, OVERLAP)]
    f = tmp_path / "bundle.json"
    f.write_text(bundle_json(rs))
    ok = _cli(f, "--witness-key", str(W_VK))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("OK: event ") for line in lines)
    assert "cosigned by 1 of 1 trusted witness(es) (1 required)" in lines[0]
    assert "publisher signature checked with the key admitted by registry entry 0" in lines[0]
    assert "registry entry 3" in lines[1]
    rs[1] = receipt(AFTER, proof_of(0))
    f.write_text(bundle_json(rs))
    bad = _cli(f)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("cuentas: receipt 2 of 3: event ")


@pytest.mark.parametrize("fmt", [[RECEIPT_FORMAT_V1], {"v": 2}, None, 2])
def test_regression_a_format_that_is_no_string_is_malformed_input(fmt: object) -> None:
    """Regression (found by test_fuzz_parsing): ``"format": [...]`` raised TypeError (unhashable), not
    MalformedInput, so `cuentas verify` would have shown a traceback."""
    with pytest.raises(MalformedInput) as e:
        parse_receipts(json.dumps({"format": fmt, "event": {}}))
    assert e.value.reason == "receipt"
