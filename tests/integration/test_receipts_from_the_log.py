"""Receipts built from a real log in PostgreSQL, from the CLI and the dashboard (issues 14.4 and 17.3).

A real log (no broker needed): the registry authority registers an operator,
which sends a transfer, rotates its key and pays out with the new key; a flag
about the transfer is raised through the flag workflow (signed flag.changed
events); a witness cosigns.  Receipts of every event verify with the log key
alone, from `cuentas receipt --code`, `--transfer`, an event id, and `cuentas
flags show`; the dashboard builds the same receipts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import log_store
from infra.identities import PlatformKeys
from infra.settings import Settings
from producers.registry import registration_payload
from schemas.envelope import Envelope, sign_event
from schemas.keys import format_verifier_key, public_key_bytes
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.receipt import RECEIPT_FORMAT, parse_receipts, verify_receipt
from schemas.times import format_time
from stream_processors.checkpointer import make_checkpoint
from stream_processors.flag_store import FlagWriter
from stream_processors.receipts import receipt_for, receipts_for
from stream_processors.rules.model import FlagSpec
from stream_processors.witness_runner import Witness, witness_verifier_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OP = "op.rotating"
TID = "tr-rcpt-1"
SECRET = b"operator-secret-for-receipts-0000"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
W_KEY = Ed25519PrivateKey.generate()
W_VK = witness_verifier_key("witness.receipts", W_KEY)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """No broker: the log is written directly, as the gate would."""
    return "unused:9092"


def _conn(s: Settings) -> Any:
    return psycopg2.connect(s.database_url, options=f"-c search_path={s.database_schema}")


def _append(cur: Any, envs: list[Envelope]) -> list[int]:
    return log_store.append(cur, [log_store.NewLeaf(e.event_id, e.event_type, e.publisher_id, e.seq, e.time(),
                                                      e.leaf_bytes()) for e in envs])


@pytest.fixture
def log(migrated: Settings, tmp_path: Path) -> dict[str, Any]:
    s = migrated
    keys = PlatformKeys.load(s)
    k1, k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    auth = keys.authority
    code = receipt_code(SECRET, TID)

    def reg(seq: int, event_type: str, payload: dict[str, Any]) -> Envelope:
        return sign_event(auth.private_key, publisher_id=auth.name, event_type=event_type, payload=payload,
                          seq=seq, event_time=T0)

    registered = reg(1, "publisher.registered", registration_payload(OP, "operator", public_key_bytes(k1),
                                                                     valid_from=T0 - timedelta(days=1)))
    platform = reg(2, "publisher.registered", registration_payload(keys.platform.name, "platform",
                                                                   public_key_bytes(keys.platform.private_key)))
    sent = sign_event(k1, publisher_id=OP, event_type="transfer.sent", seq=1, event_time=T0, payload={
        "transfer_id": TID, "operator": OP, "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 20000, "currency": "USD"}, "fee": {"amount": 500, "currency": "USD"},
        "exchange_rate": "17.25", "receive_promised": {"amount": 336375, "currency": "MXN"},
        "available_by": format_time(T0 + timedelta(hours=1)),
        "destination": {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", "b")},
        "sender": pseudonym(SECRET, "snd", "s"), "receipt_digest": receipt_digest(code), "disclosed_cost_bps": 400})
    rotated = reg(3, "publisher.key_rotated", {
        "publisher_id": OP, "new_public_key": format_verifier_key(OP, public_key_bytes(k2)),
        "valid_from": format_time(T0), "old_key_valid_until": format_time(T0 + timedelta(days=7))})
    paid = sign_event(k2, publisher_id=OP, event_type="transfer.paid_out", seq=2,
                      event_time=T0 + timedelta(minutes=30), payload={
                          "transfer_id": TID, "paid": {"amount": 330000, "currency": "MXN"},
                          "paid_at": format_time(T0 + timedelta(minutes=30)), "payout_ref": "po-rcpt-1"})
    conn = _conn(s)
    with conn, conn.cursor() as cur:
        idx = _append(cur, [registered, platform, sent, rotated, paid])
        cur.execute(
            "INSERT INTO transfers (transfer_id, status, operator, receipt_digest, sent_event_id, sent_log_index,"
            " sent_at, state) VALUES (%s, 'paid', %s, %s, %s, %s, %s, '{}')",
            (TID, OP, receipt_digest(code), sent.event_id, idx[2], T0))
        for e, i in ((sent, idx[2]), (paid, idx[4])):
            cur.execute(
                "INSERT INTO entity_events (kind, entity_id, event_id, event_type, event_time, log_index, payload)"
                " VALUES ('transfer', %s, %s, %s, %s, %s, %s)",
                (TID, e.event_id, e.event_type, e.time(), i, json.dumps(dict(e.payload))))
        fw = FlagWriter(cur, keys)
        spec = FlagSpec("short_payout", "", "transfer", TID, OP, "medium", 6375, "MXN",
                        (sent.event_id, paid.event_id), T0 + timedelta(minutes=31), None)
        fw.sync([("transfer", TID)], [spec], None)
        fw.finish()
        make_checkpoint(cur, keys.log)
        Witness("witness.receipts", W_KEY, keys.log.verifier, tmp_path / "w.json").step(cur)
    conn.close()
    return {"settings": s, "keys": keys, "code": code, "sent": sent, "paid": paid, "registered": registered,
            "rotated": rotated, "flag_id": spec.flag_id, "indices": idx}


def cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WITNESS_KEYS", "CUENTAS_CONFIG", "LOG_KEY_FILE")}
    env.update(DATABASE_URL=s.database_url, DATABASE_SCHEMA=s.database_schema, CUENTAS_DATA_DIR=s.data_dir,
               KAFKA_BOOTSTRAP_SERVERS="unused:9092", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "cuentas", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_regression_receipt_of_an_event_signed_before_a_rotation_verifies(log: dict[str, Any]) -> None:
    """Regression: receipts carried the publisher's newest key, so the receipt of an event signed
    before a key rotation failed with key_mismatch.  Now it carries the registry entry that admitted
    the key the event names, proven in the same checkpoint: the log key alone verifies it."""
    s, log_vk = log["settings"], log["keys"].log.verifier
    conn = _conn(s)
    with conn, conn.cursor() as cur:
        before = receipt_for(cur, log["sent"].event_id)
        after = receipt_for(cur, log["paid"].event_id)
    conn.close()
    v = verify_receipt(before.to_json(), log_vk, [W_VK])
    assert v.publisher_key_proven and before.publisher_proof is not None
    assert before.publisher_proof.leaf_index == log["indices"][0]  # the registration, not the rotation
    assert verify_receipt(after.to_json(), log_vk, [W_VK]).publisher_key_proven
    assert after.publisher_proof is not None and after.publisher_proof.leaf_index == log["indices"][3]
    assert json.loads(before.to_json())["format"] == RECEIPT_FORMAT


def test_registry_events_have_v1_receipts_publisher_key_not_proven(log: dict[str, Any]) -> None:
    conn = _conn(log["settings"])
    with conn, conn.cursor() as cur:
        r = receipt_for(cur, log["rotated"].event_id)
    conn.close()
    v = verify_receipt(r, log["keys"].log.verifier)
    assert r.publisher_proof is None and v.publisher_status == "publisher key not proven"


def test_receipt_by_code_gives_every_event_of_the_transfer_against_one_checkpoint(
    log: dict[str, Any], tmp_path: Path
) -> None:
    s, log_vk = log["settings"], log["keys"].log.verifier
    got = cli(s, "receipt", "--code", log["code"].lower().replace("-", " "))
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    assert doc["transfer_id"] == TID and log["code"] not in got.stdout
    rs = parse_receipts(got.stdout)
    assert [r.event["header"]["event_id"] for r in rs] == [log["sent"].event_id, log["paid"].event_id]
    assert len({r.checkpoint for r in rs}) == 1
    f = tmp_path / "receipts.json"
    f.write_text(got.stdout)
    ok = cli(s, "verify", str(f), "--log-key", str(log_vk), "--witness-key", str(W_VK))
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert len(lines) == 2 and all("admitted by registry entry" in line for line in lines)
    by_transfer = cli(s, "receipt", "--transfer", TID)
    assert by_transfer.returncode == 0 and json.loads(by_transfer.stdout) == doc
    one = cli(s, "receipt", log["paid"].event_id)
    assert one.returncode == 0 and json.loads(one.stdout) == doc["receipts"][1]


@pytest.mark.parametrize("args", [
    ["receipt", "--code", "CC-0000-0000-0000-0000"],
    ["receipt", "--code", "hello"],
    ["receipt", "--transfer", "tr-nobody"],
    ["receipt"],
    ["receipt", "abc", "--transfer", TID],
    ["receipt", "aaaaaaaaaaaaaaaaaaaaaaaaaa"],
    ["flags", "show", "flg_nothing"],
])
def test_receipt_errors_are_one_line(log: dict[str, Any], args: list[str]) -> None:
    got = cli(log["settings"], *args)
    assert got.returncode == 1 and "Traceback" not in got.stderr
    assert got.stderr.startswith("cuentas: ") and got.stderr.count("\n") == 1, got.stderr


def test_flags_list_json_has_evidence_with_log_indices(log: dict[str, Any]) -> None:
    got = cli(log["settings"], "flags", "list", "--json")
    assert got.returncode == 0, got.stderr
    (flag,) = json.loads(got.stdout)
    assert flag["flag_id"] == log["flag_id"]
    assert flag["evidence"] == [{"event_id": log["sent"].event_id, "log_index": log["indices"][2]},
                                {"event_id": log["paid"].event_id, "log_index": log["indices"][4]}]


def test_flags_show_prints_history_and_receipts_of_the_evidence(log: dict[str, Any], tmp_path: Path) -> None:
    s, log_vk = log["settings"], log["keys"].log.verifier
    got = cli(s, "flags", "show", log["flag_id"], "--json")
    assert got.returncode == 0, got.stderr
    doc = json.loads(got.stdout)
    (h,) = doc["history"]
    assert h["status"] == "open" and h["log_index"] is not None
    conn = _conn(s)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT event_type FROM log_entries WHERE idx = %s AND event_id = %s",
                    (h["log_index"], h["event_id"]))
        assert cur.fetchone() == ("flag.changed",)
        same = receipts_for(cur, [log["sent"].event_id, log["paid"].event_id])
    conn.close()
    assert doc["receipts"] == [r.to_obj() for r in same]
    bundle = tmp_path / "evidence.json"
    text = cli(s, "flags", "show", log["flag_id"], "--receipts", str(bundle))
    assert text.returncode == 0, text.stderr
    assert f"log index {h['log_index']}" in text.stdout and f"written to {bundle}" in text.stdout
    assert f"event {log['sent'].event_id}, log index {log['indices'][2]}" in text.stdout
    ok = cli(s, "verify", str(bundle), "--log-key", str(log_vk), "--witness-key", str(W_VK))
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 2, ok.stderr


def test_the_dashboard_builds_the_same_receipt(log: dict[str, Any]) -> None:
    from dashboard import proofs

    s = log["settings"]
    conn = _conn(s)
    with conn, conn.cursor() as cur:
        cli_receipt = receipt_for(cur, log["sent"].event_id)
    conn.close()
    check = proofs.check_receipt(s.database_url, s.database_schema, log["sent"].event_id,
                                 log["keys"].log.verifier, proofs.WitnessPolicy.of([W_VK]))
    assert check.state == "verified" and check.receipt_json == cli_receipt.to_json()
