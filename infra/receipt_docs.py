"""Receipt documents from the log in PostgreSQL: which transfers changed, their proofs, the files.

The documents (:mod:`schemas.receipt_doc`) are static files under
``receipts/`` of the public site (``PUBLIC_DIR``).  :func:`refresh` is what
the processors' timer runs: against the newest witness-cosigned checkpoint,
it indexes the leaves it has not seen yet (which transfer each is about,
and each transfer's receipt digest from its ``transfer.sent``), then
rewrites the documents of the transfers that changed, each file atomically.
It reads the log itself, in order, so it depends on no reconciler and sees
the flag changes the moment they are logged.  :func:`export_documents`
writes every transfer's document against one checkpoint, for ``cuentas log
export``; :func:`write_page` writes the page itself for the trusted keys.

A transfer whose ``transfer.sent`` is not logged yet has no digest, so no
document: its leaves are indexed and it is written once the sent arrives.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg2.extras import execute_values

from infra import log_store
from infra.public_keys import trusted_keys
from infra.receipt_page import build_page, write_files
from infra.settings import Settings
from schemas.envelope import parse_envelope
from schemas.errors import ConfigurationError, MalformedInput
from schemas.receipt import admission_for
from schemas.receipt_doc import ReceiptDocument, build_document, group_by_transfer
from schemas.witness_policy import WitnessPolicy

__all__ = ["Written", "refresh", "export_documents", "documents_for", "write_page", "scan"]

log = logging.getLogger(__name__)

#: Leaves read per query while indexing.
_CHUNK = 5000
#: Logged events are re-read with a generous limit (as infra.receipts does).
_MAX_LOGGED_BYTES = 1 << 20
_TYPES = "(event_type LIKE 'transfer.%%' OR event_type = 'flag.changed')"


@dataclass(frozen=True)
class Written:
    checkpoint_size: int
    documents: int
    pending: int


def _sent(leaf: bytes) -> tuple[str, str] | None:
    """(transfer id, receipt digest) of a ``transfer.sent`` leaf; None for any other leaf."""
    try:
        obj = json.loads(leaf)
        if obj["header"]["type"] == "transfer.sent":
            tid, d = obj["payload"]["transfer_id"], obj["payload"]["receipt_digest"]
            return (tid, d) if isinstance(tid, str) and isinstance(d, str) else None
    except (ValueError, TypeError, KeyError):
        pass
    return None


def _index(cur: Any, rows: Sequence[tuple[int, bytes]]) -> int:
    """Record which transfer each leaf is about and mark those transfers dirty; return how many."""
    grouped = group_by_transfer(rows)
    if not grouped:
        return 0
    digests: dict[str, str] = {}
    for sent in (_sent(leaf) for _, leaf in rows):
        if sent is not None:
            digests.setdefault(*sent)
    execute_values(cur, "INSERT INTO receipt_doc_leaves (transfer_id, idx) VALUES %s ON CONFLICT DO NOTHING",
                   [(t, i) for t, idxs in grouped.items() for i in idxs], page_size=1000)
    # The first transfer.sent in log order gives the digest (a later one never replaces it).
    execute_values(
        cur,
        "INSERT INTO receipt_doc_transfers (transfer_id, receipt_digest, dirty) VALUES %s"
        " ON CONFLICT (transfer_id) DO UPDATE SET dirty = true,"
        " receipt_digest = coalesce(receipt_doc_transfers.receipt_digest, EXCLUDED.receipt_digest)",
        [(t, digests.get(t), True) for t in sorted(grouped)], page_size=1000,
    )
    return len(grouped)


def scan(cur: Any, upto: int) -> int:
    """Index the leaves below ``upto`` not indexed yet (under the state row's lock); return transfers touched."""
    cur.execute("SELECT scanned FROM receipt_doc_state WHERE id = 1 FOR UPDATE")
    scanned = int(cur.fetchone()[0])
    touched = 0
    for lo in range(scanned, upto, _CHUNK):
        hi = min(upto, lo + _CHUNK)
        cur.execute(f"SELECT idx, leaf FROM log_entries WHERE idx >= %s AND idx < %s AND {_TYPES} ORDER BY idx",
                    (lo, hi))
        touched += _index(cur, [(int(i), bytes(leaf)) for i, leaf in cur.fetchall()])
    if upto > scanned:
        cur.execute("UPDATE receipt_doc_state SET scanned = %s WHERE id = 1", (upto,))
    return touched


class _Admissions:
    """The registry entry that admitted each event's key, with its proof at ``size`` (cached per run)."""

    def __init__(self, cur: Any, size: int) -> None:
        self.cur, self.size = cur, size
        self.by_publisher: dict[str, list[tuple[int, Any]]] = {}
        self.leaves: dict[int, bytes] = {}
        self.proofs: dict[int, list[bytes]] = {}

    def find(self, leaf: bytes, index: int) -> int | None:
        env = parse_envelope(leaf, max_bytes=_MAX_LOGGED_BYTES)
        if env.publisher_id not in self.by_publisher:
            found = log_store.registry_entries(self.cur, env.publisher_id)
            self.by_publisher[env.publisher_id] = [
                (e.index, parse_envelope(e.leaf, max_bytes=_MAX_LOGGED_BYTES)) for e in found if e.index < self.size]
            self.leaves.update({e.index: e.leaf for e in found})
        hit = admission_for(env, index, self.by_publisher[env.publisher_id])
        return None if hit is None else hit[0]

    def entry(self, at: int | None) -> tuple[bytes, int, Sequence[bytes]] | None:
        return None if at is None else (self.leaves[at], at, self.proofs[at])


def documents_for(cur: Any, wanted: dict[str, tuple[str, list[int]]], size: int, note: str) -> list[ReceiptDocument]:
    """Documents of ``{transfer id: (receipt digest, its log indices)}`` against the checkpoint ``(size, note)``."""
    indices = sorted({i for _, idxs in wanted.values() for i in idxs if i < size})
    if not indices:
        return []
    cur.execute("SELECT idx, leaf FROM log_entries WHERE idx = ANY(%s)", (indices,))
    leaves = {int(i): bytes(leaf) for i, leaf in cur.fetchall()}
    adm = _Admissions(cur, size)
    admitted = {i: adm.find(leaves[i], i) for i in indices}
    entries = {a for a in admitted.values() if a is not None}
    proofs = log_store.inclusions(cur, [*indices, *entries], size)
    adm.proofs = proofs
    docs = []
    for tid in sorted(wanted):
        digest, idxs = wanted[tid]
        mine = [i for i in sorted(set(idxs)) if i < size]
        if not mine:
            continue
        try:
            docs.append(build_document(digest, note, [
                (leaves[i], i, proofs[i], adm.entry(admitted[i])) for i in mine]))
        except ValueError as e:  # a malformed digest in a logged event: nothing to key a file by
            log.warning("no receipt document for transfer %s: %s", tid, e)
    return docs


def refresh(cur: Any, public: Path, *, limit: int = 1000) -> Written:
    """Index new leaves and rewrite up to ``limit`` changed transfers' documents under ``public``.

    Against the newest witness-cosigned checkpoint only (the page requires
    the witnesses' cosignatures); nothing happens before there is one.
    """
    row = log_store.latest_checkpoint_row(cur, cosigned=True)
    if row is None:
        return Written(0, 0, 0)
    size, _root, note = row
    scan(cur, size)
    cur.execute(
        "SELECT transfer_id, receipt_digest FROM receipt_doc_transfers"
        " WHERE dirty AND receipt_digest IS NOT NULL ORDER BY transfer_id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    due = {str(t): str(d) for t, d in cur.fetchall()}
    if due:
        cur.execute("SELECT transfer_id, idx FROM receipt_doc_leaves WHERE transfer_id = ANY(%s)", (list(due),))
        idxs: dict[str, list[int]] = {}
        for t, i in cur.fetchall():
            idxs.setdefault(str(t), []).append(int(i))
        docs = documents_for(cur, {t: (d, idxs.get(t, [])) for t, d in due.items()}, size, note)
        # Files first, then the rows: if the commit is lost, the files are simply written again.
        write_files(public, {d.path: d.to_bytes() for d in docs})
        cur.execute("UPDATE receipt_doc_transfers SET dirty = false, written_size = %s WHERE transfer_id = ANY(%s)",
                    (size, list(due)))
    write_files(public, {"checkpoint": note.encode("utf-8")})
    cur.execute("SELECT count(*) FROM receipt_doc_transfers WHERE dirty AND receipt_digest IS NOT NULL")
    return Written(size, len(due), int(cur.fetchone()[0]))


def export_documents(cur: Any, out: Path, size: int, note: str, *, batch: int = 2000) -> int:
    """Every transfer's document against the checkpoint ``(size, note)``, under ``out/receipts``; how many."""
    wanted: dict[str, tuple[str | None, list[int]]] = {}
    for lo in range(0, size, _CHUNK):
        cur.execute(f"SELECT idx, leaf FROM log_entries WHERE idx >= %s AND idx < %s AND {_TYPES} ORDER BY idx",
                    (lo, min(size, lo + _CHUNK)))
        rows = [(int(i), bytes(leaf)) for i, leaf in cur.fetchall()]
        for tid, idxs in group_by_transfer(rows).items():
            wanted.setdefault(tid, (None, []))[1].extend(idxs)
        for sent in (_sent(leaf) for _, leaf in rows):
            if sent is not None and wanted[sent[0]][0] is None:
                wanted[sent[0]] = (sent[1], wanted[sent[0]][1])
    keyed = {t: (d, idxs) for t, (d, idxs) in wanted.items() if d is not None}
    n = 0
    names = sorted(keyed)
    for start in range(0, len(names), batch):
        docs = documents_for(cur, {t: keyed[t] for t in names[start:start + batch]}, size, note)
        write_files(out, {d.path: d.to_bytes() for d in docs})
        n += len(docs)
    return n


def write_page(settings: Settings, out: Path | None = None) -> int:
    """Write the receipt check page for the trusted keys (``cuentas log keys``) under ``out`` (the public site).

    Witnesses and ``MIN_WITNESSES`` as the dashboard's green check has them
    (:class:`schemas.witness_policy.WitnessPolicy`); a setting that is not a
    number from 0 to the number of witnesses falls back to the strict default.
    """
    keys = trusted_keys(settings, derive=True)
    if keys.log is None:
        raise ConfigurationError("no log key yet: the receipt check page cannot be written (start `cuentas up`)")
    raw = settings.min_witnesses.strip()
    try:
        policy = WitnessPolicy.of(keys.witnesses, int(raw) if raw else None)
    except (ValueError, MalformedInput):
        policy = WitnessPolicy.of(keys.witnesses)
    return write_files(settings.public_path if out is None else out,
                       build_page(keys.log, policy.keys, policy.min_required, help_numbers={
                           # the thresholds the processors run with, named by the flag explanations
                           "tolerance_bps": settings.payout_tolerance_bps,
                           "ceiling_bps": settings.corridor_cost_ceiling_bps,
                           "grace_hours": settings.payout_grace_hours,
                           "window_minutes": settings.cancellation_window_minutes,
                           "refund_days": settings.refund_period_business_days,
                       }))
