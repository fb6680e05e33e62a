"""`cuentas witness run`: an independent witness that cosigns checkpoints it can check.

It keeps its own state (the last checkpoint it cosigned) in a file of its own,
fetches each new checkpoint, asks the log for a consistency proof from the
one it last cosigned, and cosigns only if the pure core (:mod:`schemas.witness`)
accepts it (C2SP tlog-cosignature).  A fork or a rollback is refused and
raised as a critical integrity flag; the witness never cosigns past it.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.log_store import consistency, latest_checkpoint, store_cosignature
from schemas.errors import VerificationError
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, public_key_bytes
from schemas.note import cosign, open_checkpoint
from schemas.witness import WitnessState, decide

__all__ = ["Witness", "witness_verifier_key"]

log = logging.getLogger(__name__)


def witness_verifier_key(name: str, key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey(name, public_key_bytes(key), ALG_COSIGNATURE_V1)


@dataclass
class Witness:
    name: str
    key: Ed25519PrivateKey
    log_key: VerifierKey
    state_file: Path

    def load_state(self) -> WitnessState | None:
        if not self.state_file.exists():
            return None
        d = json.loads(self.state_file.read_text())
        return WitnessState(d["origin"], int(d["size"]), base64.b64decode(d["root"]))

    def save_state(self, st: WitnessState) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"origin": st.origin, "size": st.size, "root": base64.b64encode(st.root).decode()}))
        tmp.replace(self.state_file)

    def step(self, cur: Any) -> int | None:
        """Cosign the newest checkpoint if it is consistent with the last one cosigned."""
        latest = latest_checkpoint(cur)
        if latest is None:
            return None
        size, _root, note_text = latest
        cp, note = open_checkpoint(note_text, self.log_key)
        old = self.load_state()
        if old is not None and old.size == cp.size and old.root == cp.root:
            return None
        proof = consistency(cur, old.size, cp.size) if old is not None and 0 < old.size < cp.size else []
        new_state = decide(old, cp, proof)  # raises ForkDetected / RollbackDetected
        ts = int(datetime.now(UTC).timestamp())
        sig = cosign(note.text, self.name, self.key, ts)
        line = sig.line() if hasattr(sig, "line") else f"— {sig.name} {base64.b64encode(sig.key_id + sig.signature).decode()}"
        store_cosignature(cur, size, self.name, sig.key_id, ts, line)
        self.save_state(new_state)
        return size

    def record_alarm(self, cur: Any, e: VerificationError) -> None:
        """Store a refusal in ``witness_alarms`` (once per offered checkpoint)."""
        old = self.load_state()
        latest = latest_checkpoint(cur)
        offered_size, offered_root = (latest[0], latest[1]) if latest else (None, None)
        cur.execute(
            "SELECT 1 FROM witness_alarms WHERE witness = %s AND offered_size IS NOT DISTINCT FROM %s"
            " AND offered_root IS NOT DISTINCT FROM %s",
            (self.name, offered_size, offered_root),
        )
        if cur.fetchone():
            return
        cur.execute(
            "INSERT INTO witness_alarms (witness, reason, message, cosigned_size, cosigned_root, offered_size,"
            " offered_root) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.name, e.reason, str(e)[:2000], old.size if old else None, old.root if old else None,
             offered_size, offered_root),
        )

    def run(self, db_url: str, schema: str, *, interval: float = 1.0, once: bool = False) -> None:
        from stream_processors.pg import PgWorker

        pg = PgWorker(db_url, schema, f"witness-{self.name}")
        while True:
            try:
                size = pg.run_sync(self.step)
                if size:
                    log.info("cosigned checkpoint of size %d", size)
            except VerificationError as e:
                # Refuse, never cosign past it, and raise the alarm where
                # people look (the witness's own log, and the platform's table).
                log.error("REFUSED to cosign: %s (%s)", e, e.reason)
                pg.run_sync(functools.partial(self.record_alarm, e=e))
                if once:
                    raise
            if once:
                return
            time.sleep(interval)
