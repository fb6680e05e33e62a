"""Reconcilers: apply accepted events to the reconciled state, in batches, exactly once.

Each batch runs in one PostgreSQL transaction that (1) stores the events per
entity (primary key = event id, so redelivery is a no-op), (2) recomputes
every touched entity from ALL its events with the pure rules (so arrival
order never matters), (3) writes state, summary deltas, deadlines and flag
changes (each a signed event in the log), (4) confirms the events
(``pending_reconcile``) and (5) records the consumer's progress and the
event-time clock.  Only after the commit are flag changes and re-keyed club
contributions (the Faust repartition to ``contributions.by_project``)
produced.  A timer re-evaluates entities whose deadlines the clock passed.

These are the transactions; the Faust agents that run them are
:mod:`stream_processors.agents.reconcile_transfers`,
:mod:`~stream_processors.agents.reconcile_projects` and
:mod:`~stream_processors.agents.deadlines`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from psycopg2.extras import execute_values

from infra.db import copy_rows
from infra.identities import PlatformKeys
from infra.settings import Settings
from schemas.routing import entity_of
from schemas.thresholds import Thresholds
from schemas.times import format_time, parse_time
from stream_processors import clock
from stream_processors.flag_store import FlagWriter, recount_open_flags
from stream_processors.rules.model import Contribution, Evt, FlagSpec
from stream_processors.rules.projects import ProjectResult, reconcile_project
from stream_processors.rules.transfers import TransferResult, reconcile_transfer

__all__ = ["thresholds", "apply_transfer_events", "apply_project_events", "run_deadlines", "visible_flags",
           "parse_forwarded", "evt_of", "contribution_from_json", "contribution_to_json"]

log = logging.getLogger(__name__)


def thresholds(s: Settings) -> Thresholds:
    return Thresholds(
        payout_tolerance_bps=s.payout_tolerance_bps,
        corridor_cost_ceiling_bps=s.corridor_cost_ceiling_bps,
        payout_grace=timedelta(hours=s.payout_grace_hours),
        no_milestone_period=timedelta(days=s.no_milestone_days),
        unverified_period=timedelta(days=s.unverified_days),
        cancellation_window=timedelta(minutes=s.cancellation_window_minutes),
        refund_period_business_days=s.refund_period_business_days,
        funds_return_period=timedelta(days=s.funds_return_days),
    )


def _flat(obj: Any) -> dict[str, Any]:
    """A shallow field dict: ``dataclasses.asdict`` deep-copies every field, which showed in profiles."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _json(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    return str(o)


def _entity_of(e: Evt) -> tuple[str, str]:
    entity = entity_of(e.event_type, e.payload)
    if entity is None:  # only accepted.* topics reach the reconcilers
        raise ValueError(f"event {e.event_id}: {e.event_type} changes no transfer or project")
    return entity


def parse_forwarded(value: bytes, log_index: int | None) -> Evt:
    # orjson: the envelope was logged in canonical form (plain JSON, integers within 2^53).
    return evt_of(orjson.loads(value), log_index)


def evt_of(obj: dict[str, Any], log_index: int | None) -> Evt:
    """The rules' view of a forwarded envelope (JSON object): its header's id, type, time and publisher."""
    h = obj["header"]
    return Evt(h["event_id"], h["type"], parse_time(h["event_time"]), log_index, obj["payload"], h["publisher_id"])


_EE_COLS = ("kind", "entity_id", "event_id", "event_type", "event_time", "log_index", "payload", "publisher_id")


def _store_events(cur: Any, evts: Sequence[Evt]) -> None:
    rows = []
    for e in evts:
        kind, eid = _entity_of(e)
        rows.append((kind, eid, e.event_id, e.event_type, e.event_time, e.log_index, orjson.dumps(e.payload).decode(),  # a jsonb column: spelling is free
                     e.publisher_id))
    if rows:
        # COPY into a per-connection staging table, then one INSERT ... ON
        # CONFLICT: redelivered events stay no-ops, without quoting every
        # payload into SQL text.
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS entity_events_in (LIKE entity_events) ON COMMIT DELETE ROWS")
        copy_rows(cur, "entity_events_in", _EE_COLS, rows)
        cur.execute(f"INSERT INTO entity_events ({', '.join(_EE_COLS)}) SELECT {', '.join(_EE_COLS)}"
                    " FROM entity_events_in ON CONFLICT DO NOTHING")
        cur.execute("DELETE FROM entity_events_in")
        cur.execute("DELETE FROM pending_reconcile WHERE event_id = ANY(%s)", ([e.event_id for e in evts],))


def _lock(cur: Any, kind: str, ids: Iterable[str]) -> list[str]:
    ordered = sorted(set(ids))
    if ordered:
        # Serialise work on one entity across workers and the deadline timer;
        # sorted order prevents deadlocks.
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s || x)) FROM unnest(%s::text[]) AS x ORDER BY x",
            (kind + ":", ordered),
        )
    return ordered


def _load_events(cur: Any, kind: str, ids: list[str], have: Sequence[Evt] = ()) -> dict[str, list[Evt]]:
    """All stored events of the entities ``ids``.

    ``have`` are events of this batch, just stored: they are taken as they are
    instead of read back and decoded again (the same id, time, log index and
    payload that were written), and only the entities' other events are read.
    """
    out: dict[str, list[Evt]] = {i: [] for i in ids}
    known: set[str] = set()
    for e in have:
        _kind, ent = _entity_of(e)
        if ent in out and e.event_id not in known:
            known.add(e.event_id)
            out[ent].append(e)
    cur.execute(
        "SELECT entity_id, event_id, event_type, event_time, log_index, payload, publisher_id FROM entity_events"
        " WHERE kind = %s AND entity_id = ANY(%s) AND NOT (event_id = ANY(%s))",
        (kind, ids, sorted(known)),
    )
    for eid, ev, et, t, li, payload, pub in cur.fetchall():
        out[eid].append(Evt(ev, et, t.astimezone(UTC), li, payload, pub))
    return out


def visible_flags(flags: Sequence[FlagSpec], now: datetime | None,
                  next_deadline: datetime | None) -> tuple[list[FlagSpec], datetime | None]:
    """Flags the clock has reached, and the next deadline including those it has not.

    A flag becomes public only once the shared event-time clock (which lags
    the newest events by CLOCK_LATENESS_S) has passed the moment its
    condition became true: evidence still in flight within that allowance
    (a payout in another partition, a contribution on its way through the
    repartition) then prevents it, instead of it being raised and withdrawn.
    """
    if now is None:
        shown: list[FlagSpec] = []
        waiting = list(flags)
    else:
        shown = [f for f in flags if f.raised_at <= now]
        waiting = [f for f in flags if f.raised_at > now]
    due = [d for d in (next_deadline, *(f.raised_at for f in waiting)) if d is not None]
    return shown, (min(due) if due else None)


def _set_deadlines(cur: Any, kind: str, deadlines: dict[str, datetime | None]) -> None:
    keep = [(kind, k, d) for k, d in deadlines.items() if d is not None]
    drop = [k for k, d in deadlines.items() if d is None]
    if keep:
        execute_values(
            cur,
            "INSERT INTO deadlines (kind, entity_id, due_at) VALUES %s"
            " ON CONFLICT (kind, entity_id) DO UPDATE SET due_at = EXCLUDED.due_at",
            keep,
        )
    if drop:
        cur.execute("DELETE FROM deadlines WHERE kind = %s AND entity_id = ANY(%s)", (kind, drop))


# --- transfers --------------------------------------------------------------------------


def _summary_key(row: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if not row or row.get("sent_at") is None or row.get("status") == "pending_sent":
        return None
    return (row["sent_at"].astimezone(UTC).date(), row["corridor_from"], row["corridor_to"], row["operator"], row["send_currency"])


_SUMMARY_LEN = 9


def _summary_vec(row: dict[str, Any] | None) -> list[int]:
    if not row or _summary_key(row) is None:
        return [0] * _SUMMARY_LEN
    paid = 1 if row["payout_count"] else 0
    ds = row.get("delivery_seconds")
    send, promised, got = int(row["send_amount"] or 0), int(row["promised_amount"] or 0), int(row["paid_amount"] or 0)
    # money paid, valued in the send currency: send x paid / promised, capped at the send amount
    paid_value = min(send, send * got // promised) if paid and promised > 0 else 0
    return [1, send, int(row["fee_amount"] or 0), int(row["disclosed_cost_bps"] or 0), paid,
            1 if paid and ds is not None and ds <= 3600 else 0, 1 if paid and ds is not None and ds <= 86400 else 0,
            1 if row.get("destination_kind") == "project_fund" else 0, paid_value]


_TCOLS = ["transfer_id", "status", "operator", "corridor_from", "corridor_to", "destination_kind", "project_id",
          "send_amount", "send_currency", "fee_amount", "promised_amount", "promised_currency", "paid_amount",
          "payout_count", "available_by", "sent_at", "first_paid_at", "delivery_seconds", "disclosed_cost_bps",
          "effective_cost_bps", "receipt_digest", "sent_event_id", "sent_log_index", "event_count"]


_INT32 = 2**31 - 1
_INT_COLS = {"disclosed_cost_bps", "effective_cost_bps", "payout_count", "event_count"}


def _clamp_int(v: Any) -> Any:
    # A hostile but schema-valid event (a rate of 1e-10) can give figures
    # beyond an integer column: store the bound rather than fail the batch.
    return max(-_INT32, min(_INT32, v)) if isinstance(v, int) else v


def _transfer_row(r: TransferResult) -> dict[str, Any]:
    st = r.state
    return {c: _clamp_int(getattr(st, c)) if c in _INT_COLS else getattr(st, c) for c in _TCOLS}


def _drop_deadlines(cur: Any, kind: str, ids: list[str]) -> None:
    if ids:
        cur.execute("DELETE FROM deadlines WHERE kind = %s AND entity_id = ANY(%s)", (kind, ids))


def _isolated(kind: str, ids: Sequence[str], compute: Callable[[str], Any]) -> dict[str, Any]:
    """Run the rules per entity; one entity whose events break the arithmetic
    (dates near year 9999, absurd rates) is logged and skipped, so it cannot
    stop every other entity in the batch from being reconciled, forever."""
    out: dict[str, Any] = {}
    for eid in ids:
        try:
            out[eid] = compute(eid)
        except Exception as e:
            log.error("%s %s cannot be reconciled (%s: %s); its events are kept, its state is not updated",
                      kind, eid, type(e).__name__, e)
    return out


def apply_transfer_events(cur: Any, evts: Sequence[Evt], now_fn: Callable[[], datetime | None], th: Thresholds,
                          keys: PlatformKeys, *, ids: Iterable[str] = ()) -> tuple[list[Any], list[Contribution]]:
    """Store ``evts`` and recompute their transfers (and ``ids``); return flag envelopes and contributions."""
    _store_events(cur, evts)
    touched = _lock(cur, "transfer", [*(_entity_of(e)[1] for e in evts), *ids])
    if not touched:
        return [], []
    now = now_fn()
    cur.execute(f"SELECT {', '.join(_TCOLS)} FROM transfers WHERE transfer_id = ANY(%s)", (touched,))
    old = {r[0]: dict(zip(_TCOLS, r, strict=True)) for r in cur.fetchall()}
    by_id = _load_events(cur, "transfer", touched, evts)
    results = _isolated("transfer", touched, lambda tid: reconcile_transfer(tid, by_id[tid], now, th))
    _drop_deadlines(cur, "transfer", [t for t in touched if t not in results])
    touched = [t for t in touched if t in results]
    if not touched:
        return [], []
    rows = []
    deltas: dict[tuple[Any, ...], list[int]] = {}
    for tid, r in results.items():
        row = _transfer_row(r)
        rows.append((*[row[c] for c in _TCOLS], json.dumps(_flat(r.state), default=_json)))
        for sign, rr in ((-1, old.get(tid)), (1, row)):
            k = _summary_key(rr)
            if k is not None:
                acc = deltas.setdefault(k, [0] * _SUMMARY_LEN)
                for i, v in enumerate(_summary_vec(rr)):
                    acc[i] += sign * v
    # COPY into a per-connection staging table, then one upsert: the rows are
    # wide (24 columns and the state document) and quoting them into SQL text
    # was the largest single cost in the reconciler's profile.
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS transfers_in (LIKE transfers INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    copy_rows(cur, "transfers_in", (*_TCOLS, "state"), rows)
    cur.execute(
        f"INSERT INTO transfers ({', '.join(_TCOLS)}, state) SELECT {', '.join(_TCOLS)}, state FROM transfers_in"
        " ON CONFLICT (transfer_id) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in _TCOLS[1:]) + ", state = EXCLUDED.state, updated_at = now()",
    )
    cur.execute("DELETE FROM transfers_in")
    # No count of people: pseudonyms are per transfer (issue 14.6), so the record cannot tell
    # how many people a group holds; small-group suppression counts transfers (dashboard overview).
    summary = [(*k, *v) for k, v in deltas.items() if any(v)]
    if summary:
        execute_values(
            cur,
            "INSERT INTO summary_corridor_day (day, corridor_from, corridor_to, operator, currency, transfers,"
            " sent_amount, fee_amount, cost_bps_sum, paid, paid_within_1h, paid_within_1d, to_projects, paid_value)"
            " VALUES %s ON CONFLICT (day, corridor_from, corridor_to, operator, currency) DO UPDATE SET"
            " transfers = summary_corridor_day.transfers + EXCLUDED.transfers,"
            " sent_amount = summary_corridor_day.sent_amount + EXCLUDED.sent_amount,"
            " fee_amount = summary_corridor_day.fee_amount + EXCLUDED.fee_amount,"
            " cost_bps_sum = summary_corridor_day.cost_bps_sum + EXCLUDED.cost_bps_sum,"
            " paid = summary_corridor_day.paid + EXCLUDED.paid,"
            " paid_within_1h = summary_corridor_day.paid_within_1h + EXCLUDED.paid_within_1h,"
            " paid_within_1d = summary_corridor_day.paid_within_1d + EXCLUDED.paid_within_1d,"
            " to_projects = summary_corridor_day.to_projects + EXCLUDED.to_projects,"
            " paid_value = summary_corridor_day.paid_value + EXCLUDED.paid_value",
            sorted(summary, key=lambda r: tuple(str(x) for x in r[:5])),
        )
    shown = {tid: visible_flags(r.flags, now, r.next_deadline) for tid, r in results.items()}
    _set_deadlines(cur, "transfer", {tid: d for tid, (_, d) in shown.items()})
    contributions = [r.contribution for r in results.values() if r.contribution is not None]
    if contributions:
        _store_contributions(cur, contributions)
    fw = FlagWriter(cur, keys)
    fw.sync([("transfer", tid) for tid in touched], [f for fl, _ in shown.values() for f in fl], now)
    return fw.finish(), contributions


def _store_contributions(cur: Any, cs: Sequence[Contribution]) -> None:
    execute_values(
        cur,
        "INSERT INTO project_contributions (project_id, transfer_id, club_id, amount, currency, received_at, evidence,"
        " version, operator)"
        " VALUES %s ON CONFLICT (project_id, transfer_id) DO UPDATE SET amount = EXCLUDED.amount,"
        " currency = EXCLUDED.currency, received_at = EXCLUDED.received_at, evidence = EXCLUDED.evidence,"
        " version = EXCLUDED.version, operator = EXCLUDED.operator WHERE project_contributions.version <= EXCLUDED.version",
        [(c.project_id, c.transfer_id, c.club_id, c.amount, c.currency, c.received_at, json.dumps(list(c.evidence)),
          c.version, c.operator) for c in cs],
    )
    execute_values(
        cur, "INSERT INTO dirty_projects (project_id) VALUES %s ON CONFLICT DO NOTHING",
        sorted({(c.project_id,) for c in cs}),
    )


# --- projects ---------------------------------------------------------------------------


def contribution_from_json(obj: dict[str, Any]) -> Contribution:
    return Contribution(obj["project_id"], obj["club_id"], obj["transfer_id"], int(obj["amount"]), obj["currency"],
                        parse_time(obj["received_at"]), tuple(obj["evidence"]), int(obj["version"]),
                        obj.get("operator"))


def contribution_to_json(c: Contribution) -> bytes:
    return json.dumps({**asdict(c), "received_at": format_time(c.received_at, full_fraction=True),
                       "evidence": list(c.evidence)}).encode()


def apply_project_events(cur: Any, evts: Sequence[Evt], contributions: Sequence[Contribution],
                         now_fn: Callable[[], datetime | None], th: Thresholds, keys: PlatformKeys,
                         *, ids: Iterable[str] = ()) -> list[Any]:
    _store_events(cur, evts)
    if contributions:
        _store_contributions(cur, contributions)
    touched = _lock(cur, "project", [*(_entity_of(e)[1] for e in evts),
                                     *(c.project_id for c in contributions), *ids])
    if not touched:
        return []
    now = now_fn()
    by_id = _load_events(cur, "project", touched, evts)
    cur.execute(
        "SELECT project_id, club_id, transfer_id, amount, currency, received_at, evidence, version, operator"
        " FROM project_contributions WHERE project_id = ANY(%s)", (touched,),
    )
    contribs: dict[str, list[Contribution]] = {p: [] for p in touched}
    for p, club, tr, amt, cur_, at, ev, ver, op in cur.fetchall():
        contribs[p].append(Contribution(p, club, tr, int(amt), cur_, at.astimezone(UTC), tuple(ev), int(ver), op))
    results = _isolated("project", touched, lambda p: reconcile_project(p, by_id[p], contribs[p], now, th))
    _drop_deadlines(cur, "project", [p for p in touched if p not in results])
    if not results:
        cur.execute("DELETE FROM dirty_projects WHERE project_id = ANY(%s)", (touched,))
        return []
    _write_projects(cur, results)
    cur.execute("DELETE FROM dirty_projects WHERE project_id = ANY(%s)", (touched,))
    shown = {p: visible_flags(r.flags, now, r.next_deadline) for p, r in results.items()}
    _set_deadlines(cur, "project", {p: d for p, (_, d) in shown.items()})
    fw = FlagWriter(cur, keys)
    fw.sync([("project", p) for p in touched], [f for fl, _ in shown.values() for f in fl], now)
    envs = fw.finish()
    recount_open_flags(cur, touched)
    return envs


def _write_projects(cur: Any, results: dict[str, ProjectResult]) -> None:
    rows, parties, miles = [], [], []
    for p, r in results.items():
        s = r.state
        rows.append((p, s.status, s.club_id, s.federation_id, s.country, s.state, s.municipality, s.project_type,
                     s.currency, s.budget, s.club_received, s.disbursed, s.spent, s.funds_received,
                     json.dumps(_flat(s), default=_json)))
        # latest_due holds the party's deadline: the agreement's since issue 15 (pledges no longer move it)
        parties += [(p, x.level, x.party_id, x.share_bps, x.owed, x.pledged, x.disbursed, x.deadline or x.latest_due,
                     x.status) for x in r.parties]
        miles += [(p, m.milestone_id, m.planned, m.due, m.amount, m.reported_at, m.spent, m.progress_pct,
                   json.dumps(list(m.evidence)), m.verified_at, m.outcome, m.status) for m in r.milestones]
    execute_values(
        cur,
        "INSERT INTO projects (project_id, status, club_id, federation_id, country, state_code, municipality,"
        " project_type, currency, budget, club_received, disbursed, spent, funds_received, state) VALUES %s"
        " ON CONFLICT (project_id) DO UPDATE SET status = EXCLUDED.status, club_id = EXCLUDED.club_id,"
        " federation_id = EXCLUDED.federation_id, country = EXCLUDED.country, state_code = EXCLUDED.state_code,"
        " municipality = EXCLUDED.municipality, project_type = EXCLUDED.project_type, currency = EXCLUDED.currency,"
        " budget = EXCLUDED.budget, club_received = EXCLUDED.club_received, disbursed = EXCLUDED.disbursed,"
        " spent = EXCLUDED.spent, funds_received = EXCLUDED.funds_received, state = EXCLUDED.state, updated_at = now()",
        rows,
    )
    ids = list(results)
    cur.execute("DELETE FROM project_parties WHERE project_id = ANY(%s)", (ids,))
    cur.execute("DELETE FROM milestones WHERE project_id = ANY(%s)", (ids,))
    if parties:
        execute_values(cur, "INSERT INTO project_parties (project_id, level, party_id, share_bps, owed, pledged,"
                       " disbursed, latest_due, status) VALUES %s", parties)
    if miles:
        execute_values(cur, "INSERT INTO milestones (project_id, milestone_id, planned, due, amount, reported_at,"
                       " spent, progress_pct, evidence, verified_at, outcome, status) VALUES %s", miles)


# --- deadlines ----------------------------------------------------------------------------


def run_deadlines(cur: Any, th: Thresholds, keys: PlatformKeys, lateness: timedelta, limit: int = 2000,
                  idle_s: float = 10.0, writer: str | None = None) -> tuple[list[Any], list[Contribution]]:
    """Re-evaluate entities whose next deadline the clock has passed, and dirty projects.

    ``writer`` records the clock readings acted on (see :mod:`stream_processors.clock`).
    """
    now = clock.now(cur, lateness, idle_s, writer=writer)
    envs: list[Any] = []
    contributions: list[Contribution] = []
    if now is not None:
        cur.execute("SELECT kind, entity_id FROM deadlines WHERE due_at <= %s ORDER BY due_at LIMIT %s", (now, limit))
        due = cur.fetchall()
        t_ids = [e for k, e in due if k == "transfer"]
        p_ids = [e for k, e in due if k == "project"]
        if t_ids:
            e1, contributions = apply_transfer_events(cur, [], lambda: now, th, keys, ids=t_ids)
            envs += e1
        if p_ids:
            envs += apply_project_events(cur, [], [], lambda: now, th, keys, ids=p_ids)
    cur.execute("SELECT project_id FROM dirty_projects WHERE since < now() - interval '2 seconds' LIMIT %s", (limit,))
    dirty = [r[0] for r in cur.fetchall()]
    if dirty:
        envs += apply_project_events(cur, [], [], lambda: clock.now(cur, lateness, idle_s, writer=writer), th, keys,
                                     ids=dirty)
    return envs, contributions
