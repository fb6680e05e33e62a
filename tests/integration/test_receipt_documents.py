"""Receipt documents written from a real log in PostgreSQL as a transfer changes (issue 18.2).

No broker: the log is written directly, as the gate would.  The operator is
registered, sends a transfer, rotates its key and pays out with the new
one; the flag workflow raises a discrepancy (a signed flag.changed); a
witness cosigns.  The timer's work (:func:`infra.receipt_docs.refresh`)
writes the transfer's document, keyed by its receipt digest, which verifies
with the log and witness keys alone; a later flag change rewrites it; a
payout logged before its transfer.sent waits for it; ``cuentas log export``
writes the page and every document beside the tiles.
"""

from __future__ import annotations

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
from infra.public_keys import publish_witness_key
from infra.receipt_docs import refresh
from infra.settings import Settings
from producers.registry import registration_payload
from schemas.envelope import Envelope, sign_event
from schemas.keys import format_verifier_key, public_key_bytes
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.receipt_doc import doc_path, parse_document, verify_document
from schemas.times import format_time
from schemas.witness_policy import WitnessPolicy
from stream_processors.checkpointer import make_checkpoint
from stream_processors.flag_store import FlagWriter
from stream_processors.rules.model import FlagSpec
from stream_processors.witness_runner import Witness, witness_verifier_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OP = "op.docs"
SECRET = b"operator-secret-for-receipt-docs-0"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
W_KEY = Ed25519PrivateKey.generate()
W_VK = witness_verifier_key("witness.docs", W_KEY)
POLICY = WitnessPolicy.of([W_VK])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """No broker: the log is written directly, as the gate would."""
    return "unused:9092"


def _conn(s: Settings) -> Any:
    return psycopg2.connect(s.database_url, options=f"-c search_path={s.database_schema}")


def _append(cur: Any, envs: list[Envelope]) -> list[int]:
    return log_store.append(cur, [log_store.NewLeaf(e.event_id, e.event_type, e.publisher_id, e.seq, e.time(),
                                                      e.leaf_bytes()) for e in envs])


def _sent(key: Any, tid: str, seq: int) -> Envelope:
    return sign_event(key, publisher_id=OP, event_type="transfer.sent", seq=seq, event_time=T0, payload={
        "transfer_id": tid, "operator": OP, "corridor": {"from": "US", "to": "GT"},
        "send": {"amount": 30000, "currency": "USD"}, "fee": {"amount": 600, "currency": "USD"},
        "exchange_rate": "7.7", "receive_promised": {"amount": 226380, "currency": "GTQ"},
        "available_by": format_time(T0 + timedelta(hours=1)),
        "destination": {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", tid)},
        "sender": pseudonym(SECRET, "snd", tid), "receipt_digest": receipt_digest(receipt_code(SECRET, tid)),
        "disclosed_cost_bps": 400})


def _paid(key: Any, tid: str, seq: int, amount: int) -> Envelope:
    at = T0 + timedelta(minutes=40)
    return sign_event(key, publisher_id=OP, event_type="transfer.paid_out", seq=seq, event_time=at, payload={
        "transfer_id": tid, "paid": {"amount": amount, "currency": "GTQ"}, "paid_at": format_time(at),
        "payout_ref": f"po-{tid}"})


class Log:
    def __init__(self, s: Settings, tmp: Path) -> None:
        self.s, self.keys = s, PlatformKeys.load(s)
        self.k1, self.k2 = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        self.witness = Witness("witness.docs", W_KEY, self.keys.log.verifier, tmp / "w.json")
        self.public = tmp / "public"
        auth = self.keys.authority

        def reg(seq: int, event_type: str, payload: dict[str, Any]) -> Envelope:
            return sign_event(auth.private_key, publisher_id=auth.name, event_type=event_type, payload=payload,
                              seq=seq, event_time=T0 - timedelta(hours=1))

        self.registry = [
            reg(1, "publisher.registered", registration_payload(OP, "operator", public_key_bytes(self.k1),
                                                                valid_from=T0 - timedelta(days=1))),
            reg(2, "publisher.registered", registration_payload(
                self.keys.platform.name, "platform", public_key_bytes(self.keys.platform.private_key))),
            reg(3, "publisher.key_rotated", {
                "publisher_id": OP, "new_public_key": format_verifier_key(OP, public_key_bytes(self.k2)),
                "valid_from": format_time(T0), "old_key_valid_until": format_time(T0 + timedelta(days=7))}),
        ]

    def run(self, work: Any) -> Any:
        conn = _conn(self.s)
        try:
            with conn, conn.cursor() as cur:
                return work(cur)
        finally:
            conn.close()

    def publish(self, envs: list[Envelope], flags: list[FlagSpec] | None = None, *, cosign: bool = True) -> None:
        def work(cur: Any) -> None:
            _append(cur, envs)
            if flags is not None:
                fw = FlagWriter(cur, self.keys)
                fw.sync([("transfer", f.subject_id) for f in flags] or [("transfer", "tr-docs-1")], flags, None)
                fw.finish()
            make_checkpoint(cur, self.keys.log)
            if cosign:
                self.witness.step(cur)
        self.run(work)

    def refresh(self) -> Any:
        return self.run(lambda cur: refresh(cur, self.public))

    def document(self, tid: str) -> bytes:
        return (self.public / doc_path(receipt_digest(receipt_code(SECRET, tid)))).read_bytes()


@pytest.fixture
def log(migrated: Settings, tmp_path: Path) -> Log:
    return Log(migrated, tmp_path)


def _short(tid: str, sent: Envelope, paid: Envelope) -> FlagSpec:
    return FlagSpec("short_payout", "", "transfer", tid, OP, "medium", 6380, "GTQ",
                    (sent.event_id, paid.event_id), T0 + timedelta(minutes=41), None)


def test_documents_are_written_as_the_transfer_changes_and_verify(log: Log) -> None:
    # nothing before a witness has cosigned
    sent = _sent(log.k1, "tr-docs-1", 1)
    log.publish([*log.registry, sent], cosign=False)
    assert log.refresh().documents == 0 and not log.public.exists()

    paid = _paid(log.k2, "tr-docs-1", 2, 220000)  # signed with the rotated key
    log.publish([paid], [_short("tr-docs-1", sent, paid)])
    done = log.refresh()
    assert (done.documents, done.pending) == (1, 0)
    v = verify_document(log.document("tr-docs-1"), log.keys.log.verifier, POLICY,
                        receipt_digest(receipt_code(SECRET, "tr-docs-1")))
    assert v.transfer_id == "tr-docs-1"
    assert [e.event_type for e in v.envelopes] == ["transfer.sent", "transfer.paid_out", "flag.changed"]
    doc = parse_document(log.document("tr-docs-1"))
    # the registration admitted the key of the sent, the rotation that of the payout, and the platform's the flag
    assert [doc.registry[e.registry_entry].leaf_index for e in doc.events if e.registry_entry is not None] == [0, 2, 1]
    assert (log.public / "checkpoint").read_text() == doc.checkpoint
    assert log.refresh().documents == 0  # nothing changed: nothing written

    # the payout is made whole and the system withdraws the flag (its condition is gone): rewritten
    top_up = _paid(log.k2, "tr-docs-1", 3, 6380)
    log.publish([top_up], [])
    assert log.refresh().documents == 1
    v = verify_document(log.document("tr-docs-1"), log.keys.log.verifier, POLICY)
    assert [e.event_type for e in v.envelopes] == ["transfer.sent", "transfer.paid_out", "flag.changed",
                                                   "transfer.paid_out", "flag.changed"]
    assert v.envelopes[-1].payload["status"] == "withdrawn"
    # no listing, no index: the only files are the document, the checkpoint
    assert sorted(p.relative_to(log.public).as_posix() for p in log.public.rglob("*") if p.is_file()) == [
        "checkpoint", doc_path(receipt_digest(receipt_code(SECRET, "tr-docs-1")))]


def test_a_payout_logged_before_its_sent_waits_for_it(log: Log) -> None:
    log.publish([*log.registry, _paid(log.k2, "tr-docs-2", 1, 226380)])
    assert log.refresh().documents == 0
    log.publish([_sent(log.k2, "tr-docs-2", 2)])
    assert log.refresh().documents == 1
    v = verify_document(log.document("tr-docs-2"), log.keys.log.verifier, POLICY)
    assert [e.event_type for e in v.envelopes] == ["transfer.paid_out", "transfer.sent"]


def cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WITNESS_KEYS", "CUENTAS_CONFIG", "LOG_KEY_FILE")}
    env.update(DATABASE_URL=s.database_url, DATABASE_SCHEMA=s.database_schema, CUENTAS_DATA_DIR=s.data_dir,
               KAFKA_BOOTSTRAP_SERVERS="unused:9092", PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "cuentas", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_log_export_writes_the_page_and_every_document(log: Log, tmp_path: Path) -> None:
    sent = _sent(log.k1, "tr-docs-1", 1)
    log.publish([*log.registry, sent, _sent(log.k1, "tr-docs-3", 2)])
    publish_witness_key(log.s, W_VK)
    out = tmp_path / "export"
    got = cli(log.s, "log", "export", str(out), "--cosigned")
    assert got.returncode == 0, got.stderr
    assert "receipt check page" in got.stdout
    assert (out / "index.html").is_file() and (out / "tile").is_dir() and (out / "checkpoint").is_file()
    assert str(log.keys.log.verifier) in (out / "index.html").read_text()
    assert str(W_VK) in (out / "index.html").read_text()
    for tid in ("tr-docs-1", "tr-docs-3"):
        digest = receipt_digest(receipt_code(SECRET, tid))
        v = verify_document((out / doc_path(digest)).read_bytes(), log.keys.log.verifier, POLICY, digest)
        assert v.transfer_id == tid and v.checkpoint.size == 5
    ok = cli(log.s, "verify", "--export", str(out), "--log-key", str(log.keys.log.verifier), "--witness-key",
             str(W_VK))
    assert ok.returncode == 0, ok.stderr
