"""Flags as a workflow, stored: the PostgreSQL and log side of ``schemas.flag_workflow``.

The rules (:mod:`stream_processors.rules`) say which flags a subject has
now; :class:`FlagWriter` turns the difference with the stored flags into the
state changes the workflow prescribes (``system_steps``), and
:func:`apply_review` records a reviewer's decision after checking it against
the workflow.  Every change is a signed ``flag.changed`` event appended to
the audit log (so reviewers are audited too), a ``flag_history`` row and an
update of the incrementally maintained ``summary_flags`` table, all in the
caller's transaction.  :func:`recount_open_flags` is the one count of a
project's open flags.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg2.extras import execute_values

from infra import log_store
from infra.identities import PlatformKeys
from schemas.envelope import Envelope, event_id_from, sign_event
from schemas.errors import MalformedInput
from schemas.flag_workflow import (
    OPEN_STATUSES,
    SYSTEM_ACTOR,
    Condition,
    check_review_reason,
    may_review,
    system_steps,
)
from schemas.money import MAX_AMOUNT
from schemas.times import format_time
from stream_processors.rules.model import FlagSpec

__all__ = ["GATE_RAISED", "FlagWriter", "FlagChange", "apply_review", "recount_open_flags"]

#: ``detail`` member of a flag about a transfer or project that the gate raised
#: (an ``authority_violation`` for an event it refused): the rules never see the
#: refused event, so :meth:`FlagWriter.sync` must not withdraw that flag.
GATE_RAISED: tuple[str, str] = ("raised_by", "gate")


@dataclass
class FlagChange:
    flag_id: str
    n: int
    status: str
    previous: str | None
    actor: str
    reason_code: str
    changed_at: datetime
    row: dict[str, Any]


def _stake(v: int | None) -> int | None:
    return None if v is None else max(-MAX_AMOUNT, min(MAX_AMOUNT, int(v)))


class FlagWriter:
    def __init__(self, cur: Any, keys: PlatformKeys) -> None:
        self.cur = cur
        self.keys = keys
        self.changes: list[FlagChange] = []
        self._summary: dict[tuple[str, str, str], list[int]] = {}

    # -- reading ------------------------------------------------------------------
    def _existing(self, where: str, params: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
        self.cur.execute(
            "SELECT flag_id, flag_type, key, subject_kind, subject_id, accountable, severity, amount_at_stake,"
            " currency, status, auto_status, raised_at, resolved_at, evidence, detail, history_len"
            f" FROM flags WHERE {where} FOR UPDATE",
            params,
        )
        cols = [d[0] for d in self.cur.description]
        out = {r[0]: dict(zip(cols, r, strict=True)) for r in self.cur.fetchall()}
        for row in out.values():
            row["_stored_status"] = row["status"]
        return out

    def _log_indices(self, event_ids: Iterable[str]) -> dict[str, int]:
        return log_store.indices_of(self.cur, event_ids)

    # -- syncing with the rules --------------------------------------------------------
    def sync(self, subjects: Sequence[tuple[str, str]], specs: Sequence[FlagSpec], now: datetime | None) -> None:
        """Make the stored flags of ``subjects`` match ``specs`` (the rules' current view)."""
        if not subjects:
            return
        existing = self._existing(
            "(subject_kind, subject_id) IN (SELECT unnest(%s::text[]), unnest(%s::text[]))"
            " AND (detail ->> %s) IS DISTINCT FROM %s",
            ([k for k, _ in subjects], [i for _, i in subjects], *GATE_RAISED),
        )
        idx = self._log_indices(e for s in specs for e in s.evidence)
        wanted = {s.flag_id: s for s in specs}
        for fid, spec in sorted(wanted.items()):
            row = existing.get(fid)
            evidence = [{"event_id": e, "log_index": idx.get(e)} for e in spec.evidence[:100]]
            condition: Condition = "resolved" if spec.resolved_at else "open"
            fields = {
                "flag_id": fid, "flag_type": spec.flag_type, "key": spec.key, "subject_kind": spec.subject_kind,
                "subject_id": spec.subject_id, "accountable": spec.accountable, "severity": spec.severity,
                "amount_at_stake": _stake(spec.amount_at_stake), "currency": spec.currency, "auto_status": condition,
                "raised_at": spec.raised_at, "resolved_at": spec.resolved_at, "evidence": evidence,
                "detail": dict(spec.detail),
            }
            if row is None:
                row = {**fields, "status": "open", "history_len": 0}
                self._insert(row)
                self._system(row, system_steps(None, condition), spec.raised_at, spec.resolved_at)
                self._update(row, row["amount_at_stake"])
                continue
            old_amount = row["amount_at_stake"]
            row.update(fields)
            status = row["status"]
            # A flag withdrawn while the clock stood below its moment (a worker's
            # partition came back with an older watermark) reopens from when it
            # was raised, and if it is back already resolved it ends raised and
            # resolved, as a run without the interruption has it.  (Regression:
            # it stayed "withdrawn" for good; seen in the kill -9 fault run.)
            # A resolved flag whose condition holds again reopens now.
            reopened_at = (now or spec.raised_at) if status == "resolved" else spec.raised_at
            self._system(row, system_steps(status, condition), reopened_at, spec.resolved_at)
            self._update(row, old_amount)
        for fid, row in sorted(existing.items()):
            steps = () if fid in wanted else system_steps(row["status"], "absent")
            if steps:
                self._system(row, steps, None, None, withdrawn_at=now or row["raised_at"])
                row["auto_status"] = "withdrawn"
                self._update(row, row["amount_at_stake"])

    def raise_integrity(self, spec: FlagSpec) -> None:
        """Open (or extend) an integrity flag raised by the gate or the witness."""
        existing = self._existing("flag_id = %s", (spec.flag_id,))
        idx = self._log_indices(spec.evidence)
        if spec.flag_id in existing:
            row = existing[spec.flag_id]
            old = row["amount_at_stake"]
            ev = list(row["evidence"])
            known = {e["event_id"] for e in ev}
            ev.extend({"event_id": e, "log_index": idx.get(e)} for e in spec.evidence if e not in known)
            row["evidence"] = ev[:100]
            detail = dict(row["detail"])
            detail["count"] = int(detail.get("count", 1)) + 1
            row["detail"] = detail
            self._system(row, system_steps(row["status"], "open"), spec.raised_at, None)
            self._update(row, old)
            return
        row = {
            "flag_id": spec.flag_id, "flag_type": spec.flag_type, "key": spec.key, "subject_kind": spec.subject_kind,
            "subject_id": spec.subject_id, "accountable": spec.accountable, "severity": spec.severity,
            "amount_at_stake": spec.amount_at_stake, "currency": spec.currency, "auto_status": "open",
            "raised_at": spec.raised_at, "resolved_at": None,
            "evidence": [{"event_id": e, "log_index": idx.get(e)} for e in spec.evidence[:100]],
            "detail": {"count": 1, **dict(spec.detail)}, "status": "open", "history_len": 0,
        }
        self._insert(row)
        self._system(row, system_steps(None, "open"), spec.raised_at, None)
        self._update(row, row["amount_at_stake"])

    def auto_resolve(self, flag_id: str, at: datetime) -> None:
        """The evidence now says ``flag_id``'s condition is over (e.g. a sequence gap closed)."""
        existing = self._existing("flag_id = %s", (flag_id,))
        if flag_id not in existing:
            raise MalformedInput(f"no flag {flag_id}", reason="unknown_flag")
        row = existing[flag_id]
        self._system(row, system_steps(row["status"], "resolved"), None, at)
        self._update(row, row["amount_at_stake"])

    # -- writing ------------------------------------------------------------------------
    def _insert(self, row: dict[str, Any]) -> None:
        self.cur.execute(
            "INSERT INTO flags (flag_id, flag_type, key, subject_kind, subject_id, accountable, severity,"
            " amount_at_stake, currency, status, auto_status, raised_at, resolved_at, evidence, detail)"
            " VALUES (%(flag_id)s, %(flag_type)s, %(key)s, %(subject_kind)s, %(subject_id)s, %(accountable)s,"
            " %(severity)s, %(amount_at_stake)s, %(currency)s, 'open', %(auto_status)s, %(raised_at)s,"
            " %(resolved_at)s, %(evidence_json)s, %(detail_json)s)",
            {**row, "evidence_json": json.dumps(row["evidence"]), "detail_json": json.dumps(row["detail"], default=str)},
        )
        self._bump(row["flag_type"], "open", row.get("currency") or "", 1, row.get("amount_at_stake") or 0)
        row["_stored_status"] = "open"

    def _update(self, row: dict[str, Any], old_amount: int | None) -> None:
        stored = row.get("_stored_status", row["status"])
        self.cur.execute(
            "UPDATE flags SET severity = %s, amount_at_stake = %s, currency = %s, status = %s, auto_status = %s,"
            " raised_at = %s, resolved_at = %s, evidence = %s, detail = %s, history_len = %s, updated_at = now()"
            " WHERE flag_id = %s",
            (row["severity"], row["amount_at_stake"], row["currency"], row["status"], row["auto_status"],
             row["raised_at"], row["resolved_at"], json.dumps(row["evidence"]), json.dumps(row["detail"], default=str),
             row["history_len"], row["flag_id"]),
        )
        cur = row.get("currency") or ""
        if stored != row["status"] or old_amount != row["amount_at_stake"]:
            self._bump(row["flag_type"], stored, cur, -1, -(old_amount or 0))
            self._bump(row["flag_type"], row["status"], cur, 1, row["amount_at_stake"] or 0)
        row["_stored_status"] = row["status"]

    def _system(self, row: dict[str, Any], steps: Sequence[tuple[str, str]], opened_at: datetime | None,
                resolved_at: datetime | None, *, withdrawn_at: datetime | None = None) -> None:
        """Apply the workflow's ``steps``, each at the time its new status took effect."""
        at = {"open": opened_at, "resolved": resolved_at, "withdrawn": withdrawn_at}
        for status, reason in steps:
            when = at[status]
            assert when is not None, (status, reason)
            self._change(row, status, SYSTEM_ACTOR, reason, when)

    def _change(self, row: dict[str, Any], status: str, actor: str, reason: str, at: datetime) -> None:
        prev = row["status"] if row["history_len"] else None
        n = row["history_len"] + 1
        row["history_len"] = n
        row["status"] = status
        self.changes.append(FlagChange(row["flag_id"], n, status, prev, actor, reason, at, dict(row)))

    def _bump(self, flag_type: str, status: str, currency: str, n: int, amount: int) -> None:
        k = (flag_type, status, currency)
        acc = self._summary.setdefault(k, [0, 0])
        acc[0] += n
        acc[1] += amount

    def finish(self) -> list[Envelope]:
        """Sign the changes, append them to the log, record history and summaries."""
        envs: list[Envelope] = []
        if self.changes:
            pub = self.keys.platform.name
            self.cur.execute(
                "INSERT INTO platform_seq (publisher_id, seq) VALUES (%s, %s)"
                " ON CONFLICT (publisher_id) DO UPDATE SET seq = platform_seq.seq + EXCLUDED.seq RETURNING seq",
                (pub, len(self.changes)),
            )
            last = int(self.cur.fetchone()[0])
            first = last - len(self.changes) + 1
            for i, ch in enumerate(self.changes):
                r = ch.row
                payload: dict[str, Any] = {
                    "flag_id": ch.flag_id, "flag_type": r["flag_type"], "status": ch.status,
                    "previous_status": ch.previous, "subject": {"kind": r["subject_kind"], "id": r["subject_id"]},
                    "accountable": r["accountable"], "severity": r["severity"],
                    "evidence": r["evidence"][:100], "actor": ch.actor, "reason_code": ch.reason_code,
                    "changed_at": format_time(ch.changed_at),
                }
                stake = r.get("amount_at_stake")
                if stake and stake > 0 and r.get("currency"):
                    # the contract's money is 1..10^15 minor units (schemas/money.py)
                    payload["amount_at_stake"] = {"amount": min(int(stake), MAX_AMOUNT), "currency": r["currency"]}
                envs.append(sign_event(
                    self.keys.platform.private_key, publisher_id=pub, event_type="flag.changed", payload=payload,
                    seq=first + i, event_time=ch.changed_at.astimezone(UTC),
                    event_id=event_id_from(f"{ch.flag_id}|{ch.n}".encode()),
                ))
            leaves = [log_store.NewLeaf(e.event_id, e.event_type, e.publisher_id, e.seq, e.time(), e.leaf_bytes()) for e in envs]
            indices = log_store.append(self.cur, leaves)
            execute_values(
                self.cur,
                "INSERT INTO flag_history (flag_id, n, status, previous_status, actor, reason_code, changed_at, event_id, log_index)"
                " VALUES %s",
                [(c.flag_id, c.n, c.status, c.previous, c.actor, c.reason_code, c.changed_at, e.event_id, i)
                 for c, e, i in zip(self.changes, envs, indices, strict=True)],
            )
        rows = [(t, s, c, n, a) for (t, s, c), (n, a) in self._summary.items() if n or a]
        if rows:
            execute_values(
                self.cur,
                "INSERT INTO summary_flags (flag_type, status, currency, n, amount) VALUES %s"
                " ON CONFLICT (flag_type, status, currency) DO UPDATE SET n = summary_flags.n + EXCLUDED.n,"
                " amount = summary_flags.amount + EXCLUDED.amount",
                sorted(rows),
            )
        self.changes, self._summary = [], {}
        return envs


def recount_open_flags(cur: Any, project_ids: Sequence[str]) -> None:
    """Set ``projects.open_flags`` of ``project_ids`` to their number of open flags (``OPEN_STATUSES``)."""
    cur.execute(
        "UPDATE projects p SET open_flags = (SELECT count(*) FROM flags f WHERE f.subject_kind = 'project'"
        " AND f.subject_id = p.project_id AND f.status = ANY(%s)) WHERE p.project_id = ANY(%s)",
        (list(OPEN_STATUSES), list(project_ids)),
    )


def apply_review(cur: Any, keys: PlatformKeys, flag_id: str, new_status: str, reviewer_id: str,
                 reason_code: str) -> str | None:
    """A signed-in reviewer's decision on one flag, in the caller's transaction; the logged event's id.

    The one entry point for reviewer actions (the review-requests timer,
    :mod:`stream_processors.review_requests`, applying what the dashboard recorded).
    Locks the flag and checks the move against ``schemas.flag_workflow``: None,
    with nothing written, when the flag is gone or its status no longer allows
    the move (someone else moved it first).  Otherwise the change becomes a
    signed ``flag.changed`` event under ``reviewer_id`` and the open-flag count
    of its project is recounted.  A move that is no reviewer action at all
    raises ``MalformedInput(reason="flag_reason")``.
    """
    check_review_reason(new_status, reason_code)
    fw = FlagWriter(cur, keys)
    row = fw._existing("flag_id = %s", (flag_id,)).get(flag_id)
    if row is None or not may_review(row["status"], new_status):
        return None
    fw._change(row, new_status, reviewer_id, reason_code, datetime.now(UTC))
    fw._update(row, row["amount_at_stake"])
    envs = fw.finish()
    if row["subject_kind"] == "project":
        recount_open_flags(cur, [row["subject_id"]])
    return envs[0].event_id if envs else None
