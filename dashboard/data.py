"""Read-only queries of the public dashboard.

Everything here connects as the read-only reader role
(``infra.db.reader_url``), is parameterised, and is cached with
``st.cache_data(ttl=...)``: a page view never runs a query that a recent view
already ran.  Queries read the summary tables (``summary_corridor_day``,
``summary_flags``, ``publisher_sequences``) or go through an index
(``transfers_receipt``, ``flags_subject``, ``flags_queue``, primary keys);
the exceptions are the small per-project tables, aggregated once per TTL.

Any failure to reach the database (or a schema that is not migrated yet) is
:class:`DataUnavailable`, which pages turn into one friendly message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import pandas as pd
import psycopg2
import streamlit as st

from infra import db, log_store
from infra.runtime import resolve
from infra.settings import Settings, load_settings
from schemas.errors import CuentasError
from schemas.flag_workflow import OPEN_STATUSES

__all__ = [
    "DataUnavailable",
    "Target",
    "ID_RE",
    "EVENT_ID_RE",
    "target",
    "cursor",
    "overview",
    "transfer_by_digest",
    "transfer_flags",
    "project_filters",
    "projects",
    "project_detail",
    "flag_queue",
    "flag_detail",
    "accountables",
    "publishers",
    "publisher_rejections",
    "checkpoints",
    "clear_all",
]

#: Identifiers of the public record (common.v1.json#/$defs/id).
ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.:-]{2,63}$")
#: Event ids (common.v1.json#/$defs/event_id).
EVENT_ID_RE: Final = re.compile(r"^[a-z2-7]{26}$")

_TTL_LIVE: Final = 15
_TTL_SLOW: Final = 60


class DataUnavailable(Exception):
    """The database cannot be read now (unreachable, not migrated, too slow)."""


@dataclass(frozen=True)
class Target:
    """Where to read (reader role) and where reviewers sign in and record requests (review role).

    Never the writer's URL: the dashboard holds no writer credential (issue 14.8).
    """

    reader_url: str
    review_url: str
    schema: str
    settings: Settings


def target() -> Target:
    """The database of the running platform: DASHBOARD_DATABASE_URL and REVIEW_DATABASE_URL (what
    `cuentas up` gives the dashboard), else the platform's server (settings or what `cuentas up`
    recorded) as the reader and review roles, with no password."""
    try:
        settings = load_settings()
        reader, review = settings.dashboard_database_url, settings.review_database_url
        if not (reader and review):
            server = resolve(settings, need_kafka=False).database_url
            reader, review = db.reader_url(settings, server), db.review_url(settings, server)
        return Target(reader, review, settings.database_schema, settings)
    except CuentasError as e:
        raise DataUnavailable(str(e)) from e


@contextmanager
def cursor(url: str, schema: str, *, readonly: bool = True) -> Iterator[Any]:
    """A cursor on a fresh connection, read-only and autocommit unless ``readonly=False``."""
    try:
        conn = db.connect(url, schema, timeout=5, application_name="cuentas-dashboard")
    except CuentasError as e:
        raise DataUnavailable(str(e)) from e
    try:
        if readonly:
            conn.set_session(readonly=True, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 10000")
            yield cur
        if not readonly:
            conn.commit()
    except psycopg2.Error as e:
        with suppress(psycopg2.Error):
            conn.rollback()
        raise DataUnavailable(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from e
    finally:
        conn.close()


def _frame(cur: Any, rows: Sequence[Sequence[Any]] | None = None) -> pd.DataFrame:
    cols = [d[0] for d in cur.description]
    data = rows if rows is not None else cur.fetchall()
    return pd.DataFrame([list(r) for r in data], columns=cols)


def _since(period_days: int) -> date:
    if period_days <= 0:
        return date(1970, 1, 1)
    return (datetime.now(UTC) - timedelta(days=period_days)).date()


# --- overview -------------------------------------------------------------------------------


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=64)
def overview(url: str, schema: str, period_days: int) -> dict[str, pd.DataFrame]:
    """Everything the overview shows, from the summary tables, in one connection.

    ``groups``: one row per (corridor, operator, currency) over the period.
    There is no count of people: senders have a pseudonym per transfer (issue
    14.6), so the page suppresses small groups by their number of transfers.
    """
    out: dict[str, pd.DataFrame] = {}
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT corridor_from, corridor_to, operator, currency, sum(transfers)::bigint AS transfers,"
            " sum(sent_amount)::bigint AS sent_amount,"
            " sum(fee_amount)::bigint AS fee_amount, sum(cost_bps_sum)::bigint AS cost_bps_sum,"
            " sum(paid)::bigint AS paid, sum(paid_value)::bigint AS paid_value,"
            " sum(paid_within_1h)::bigint AS paid_within_1h,"
            " sum(paid_within_1d)::bigint AS paid_within_1d, sum(to_projects)::bigint AS to_projects,"
            " max(day) AS last_day"
            " FROM summary_corridor_day WHERE day >= %s"
            " GROUP BY corridor_from, corridor_to, operator, currency"
            " ORDER BY corridor_from, corridor_to, operator, currency",
            (_since(period_days),),
        )
        out["groups"] = _frame(cur)
        cur.execute(
            "SELECT flag_type, status, currency, n, amount FROM summary_flags"
            " WHERE status = ANY(%s) AND n > 0 ORDER BY flag_type, status, currency",
            (list(OPEN_STATUSES),),
        )
        out["flags"] = _frame(cur)
        cur.execute(
            "SELECT coalesce(currency, '') AS currency, count(*)::bigint AS projects,"
            " coalesce(sum(budget), 0)::bigint AS budget, sum(club_received)::bigint AS club_received,"
            " sum(disbursed)::bigint AS disbursed, sum(spent)::bigint AS spent,"
            " sum(funds_received)::bigint AS funds_received"
            " FROM projects WHERE status = 'registered' GROUP BY 1 ORDER BY 1"
        )
        out["projects"] = _frame(cur)
        cur.execute(
            "SELECT coalesce(p.currency, '') AS currency, pp.level, count(*)::bigint AS projects,"
            " sum(pp.owed)::bigint AS owed, sum(pp.pledged)::bigint AS pledged,"
            " sum(pp.disbursed)::bigint AS disbursed"
            " FROM project_parties pp JOIN projects p ON p.project_id = pp.project_id"
            " WHERE pp.level <> 'club'"  # the governments; the club's money is club_flows
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        out["levels"] = _frame(cur)
        cur.execute(
            "SELECT pp.party_id, pp.level, pp.project_id, pp.disbursed, coalesce(p.currency, '') AS currency"
            " FROM project_parties pp JOIN projects p ON p.project_id = pp.project_id"
            " WHERE pp.disbursed > 0 AND pp.level <> 'club'"
            " ORDER BY pp.disbursed DESC, pp.project_id, pp.level LIMIT 60"
        )
        out["gov_flows"] = _frame(cur)
        cur.execute(
            "SELECT club_id, project_id, club_received AS amount, coalesce(currency, '') AS currency"
            " FROM projects WHERE club_received > 0 AND club_id IS NOT NULL"
            " ORDER BY club_received DESC, project_id LIMIT 30"
        )
        out["club_flows"] = _frame(cur)
        out["log"] = pd.DataFrame([log_store.log_updated(cur)], columns=["size", "updated_at"])
    return out


# --- track my transfer ----------------------------------------------------------------------

_TRANSFER_COLS: Final = (
    "transfer_id, status, operator, corridor_from, corridor_to, destination_kind, project_id, send_amount,"
    " send_currency, fee_amount, promised_amount, promised_currency, paid_amount, payout_count, available_by,"
    " sent_at, first_paid_at, delivery_seconds, disclosed_cost_bps, effective_cost_bps, sent_event_id,"
    " sent_log_index"
)


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=256)
def transfer_by_digest(url: str, schema: str, digest: str) -> dict[str, Any] | None:
    """The one transfer whose receipt digest is ``digest`` (index ``transfers_receipt``).

    Only the columns about the transfer itself: never the ``state`` document,
    and no sender or beneficiary pseudonym.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    with cursor(url, schema) as cur:
        cur.execute(
            f"SELECT {_TRANSFER_COLS} FROM transfers WHERE receipt_digest = %s"
            " ORDER BY sent_at NULLS LAST, transfer_id LIMIT 1",
            (digest,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=256)
def transfer_flags(url: str, schema: str, transfer_id: str) -> pd.DataFrame:
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT flag_id, flag_type, status, accountable, severity, amount_at_stake, currency, raised_at,"
            " resolved_at FROM flags WHERE subject_kind = 'transfer' AND subject_id = %s"
            " ORDER BY raised_at, flag_id",
            (transfer_id,),
        )
        return _frame(cur)


# --- projects ---------------------------------------------------------------------------------


@st.cache_data(ttl=_TTL_SLOW, show_spinner=False, max_entries=16)
def project_filters(url: str, schema: str) -> pd.DataFrame:
    """Distinct (state, municipality, type, status) combinations, for the filter lists."""
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT DISTINCT coalesce(state_code, '') AS state_code, coalesce(municipality, '') AS municipality,"
            " coalesce(project_type, '') AS project_type, status FROM projects ORDER BY 1, 2, 3, 4 LIMIT 5000"
        )
        return _frame(cur)


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=128)
def projects(url: str, schema: str, state_code: str | None, municipality: str | None,
             project_type: str | None, status: str | None, project_id: str | None,
             flagged_only: bool, limit: int = 200) -> pd.DataFrame:
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT project_id, project_type, state_code, municipality, status, club_id, currency, budget,"
            " club_received, disbursed, funds_received, spent, open_flags FROM projects"
            " WHERE (%(st)s::text IS NULL OR state_code = %(st)s)"
            " AND (%(mu)s::text IS NULL OR municipality = %(mu)s)"
            " AND (%(ty)s::text IS NULL OR project_type = %(ty)s)"
            " AND (%(ss)s::text IS NULL OR status = %(ss)s)"
            " AND (%(id)s::text IS NULL OR project_id = %(id)s)"
            " AND (NOT %(fl)s OR open_flags > 0)"
            " ORDER BY open_flags DESC, project_id LIMIT %(lim)s",
            {"st": state_code, "mu": municipality, "ty": project_type, "ss": status, "id": project_id,
             "fl": flagged_only, "lim": max(1, min(int(limit), 1000))},
        )
        return _frame(cur)


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=128)
def project_detail(url: str, schema: str, project_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT project_id, status, club_id, federation_id, country, state_code, municipality, project_type,"
            " currency, budget, club_received, disbursed, spent, funds_received, open_flags, updated_at"
            " FROM projects WHERE project_id = %s",
            (project_id,),
        )
        row = cur.fetchone()
        out["project"] = dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None
        cur.execute(
            "SELECT level, party_id, share_bps, owed, pledged, disbursed, latest_due, status"
            " FROM project_parties WHERE project_id = %s ORDER BY level",
            (project_id,),
        )
        out["parties"] = _frame(cur)
        cur.execute(
            "SELECT milestone_id, planned, due, amount, reported_at, spent, progress_pct, evidence, verified_at,"
            " outcome, status FROM milestones WHERE project_id = %s ORDER BY due NULLS LAST, milestone_id",
            (project_id,),
        )
        out["milestones"] = _frame(cur)
        cur.execute(
            "SELECT flag_id, flag_type, status, accountable, severity, amount_at_stake, currency, raised_at,"
            " resolved_at FROM flags WHERE subject_kind = 'project' AND subject_id = %s"
            " ORDER BY raised_at, flag_id",
            (project_id,),
        )
        out["flags"] = _frame(cur)
        cur.execute(
            "SELECT count(*)::bigint AS n, coalesce(sum(amount), 0)::bigint AS amount, max(currency) AS currency"
            " FROM project_contributions WHERE project_id = %s",
            (project_id,),
        )
        out["contributions"] = _frame(cur)
    return out


# --- watchdog -----------------------------------------------------------------------------------


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=128)
def flag_queue(url: str, schema: str, statuses: tuple[str, ...], types: tuple[str, ...],
               accountable: str | None, limit: int = 200) -> pd.DataFrame:
    """Flags by amount at stake (index ``flags_queue``)."""
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT flag_id, flag_type, status, severity, amount_at_stake, currency, accountable, subject_kind,"
            " subject_id, raised_at, resolved_at, history_len FROM flags"
            " WHERE status = ANY(%(ss)s)"
            " AND (cardinality(%(ty)s::text[]) = 0 OR flag_type = ANY(%(ty)s))"
            " AND (%(ac)s::text IS NULL OR accountable = %(ac)s)"
            " ORDER BY amount_at_stake DESC NULLS LAST, raised_at, flag_id LIMIT %(lim)s",
            {"ss": list(statuses), "ty": list(types), "ac": accountable, "lim": max(1, min(int(limit), 1000))},
        )
        return _frame(cur)


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=128)
def flag_detail(url: str, schema: str, flag_id: str) -> dict[str, Any]:
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT flag_id, flag_type, status, severity, amount_at_stake, currency, accountable, subject_kind,"
            " subject_id, raised_at, resolved_at, evidence FROM flags WHERE flag_id = %s",
            (flag_id,),
        )
        row = cur.fetchone()
        flag = dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None
        cur.execute(
            "SELECT n, status, previous_status, actor, reason_code, changed_at, event_id, log_index"
            " FROM flag_history WHERE flag_id = %s ORDER BY n",
            (flag_id,),
        )
        history = _frame(cur)
    return {"flag": flag, "history": history}


@st.cache_data(ttl=_TTL_SLOW, show_spinner=False, max_entries=16)
def accountables(url: str, schema: str) -> list[str]:
    """Parties named accountable by open flags (for the filter list)."""
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT DISTINCT accountable FROM flags WHERE status = ANY(%s) ORDER BY 1 LIMIT 500",
            (list(OPEN_STATUSES),),
        )
        return [r[0] for r in cur.fetchall()]


# --- publishers ---------------------------------------------------------------------------------


@st.cache_data(ttl=_TTL_SLOW, show_spinner=False, max_entries=16)
def publishers(url: str, schema: str) -> dict[str, pd.DataFrame]:
    """Accepted counts and gaps (``publisher_sequences``) and rejections per publisher.

    Rejections are counted from ``quarantine``'s public projection (the only
    columns granted to the reader role: reason code, schema path, a catalog
    event type, a registered publisher; issue 14.7), grouped once per TTL.
    """
    with cursor(url, schema) as cur:
        cur.execute(
            "SELECT publisher_id, max_seq, accepted, last_event_time, last_accepted_at"
            " FROM publisher_sequences ORDER BY publisher_id"
        )
        seqs = _frame(cur)
        cur.execute(
            "SELECT coalesce(public_publisher, '') AS publisher_id, count(*)::bigint AS rejected,"
            " sum(deliveries)::bigint AS deliveries, max(received_at) AS last_rejected_at"
            " FROM quarantine GROUP BY 1 ORDER BY 1"
        )
        rejected = _frame(cur)
        cur.execute(
            "SELECT reason, count(*)::bigint AS n FROM quarantine GROUP BY reason ORDER BY 2 DESC, 1 LIMIT 50"
        )
        reasons = _frame(cur)
        # Who each publisher is, from the registry's own signed events.
        registry = pd.DataFrame(log_store.registered_publishers(cur), columns=["publisher_id", "kind"])
    return {"sequences": seqs, "rejected": rejected, "reasons": reasons, "registry": registry}


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=64)
def publisher_rejections(url: str, schema: str, publisher_id: str | None, limit: int = 20) -> pd.DataFrame:
    """The latest rejections of one registered publisher, or of unknown senders (``publisher_id`` None).

    Only the public projection (index ``quarantine_public_publisher``): the
    reason code, the schema path with unknown names as ``*``, a catalog event
    type; never the gate's message, a value or a name from the refused input.
    """
    cols = ("id, reason, coalesce(public_path, '') AS path, public_event_type AS event_type, deliveries,"
            " received_at")
    with cursor(url, schema) as cur:
        if publisher_id:
            cur.execute(
                f"SELECT {cols} FROM quarantine WHERE public_publisher = %s ORDER BY received_at DESC LIMIT %s",
                (publisher_id, limit),
            )
        else:
            cur.execute(
                f"SELECT {cols} FROM quarantine WHERE public_publisher IS NULL ORDER BY id DESC LIMIT %s",
                (limit,),
            )
        return _frame(cur)


# --- audit log --------------------------------------------------------------------------------


@st.cache_data(ttl=_TTL_LIVE, show_spinner=False, max_entries=16)
def checkpoints(url: str, schema: str, limit: int = 50) -> dict[str, Any]:
    """The newest checkpoints with their cosignature counts, the latest one's cosignatures."""
    with cursor(url, schema) as cur:
        log_size = log_store.log_size(cur)
        history = pd.DataFrame(log_store.checkpoint_history(cur, limit),
                               columns=["size", "root", "created_at", "cosignatures"])
        cosig_cols = ["witness", "key_id", "cosigned_at", "received_at"]
        cosigs = pd.DataFrame(columns=cosig_cols)
        if len(history):
            cosigs = pd.DataFrame(log_store.cosignatures_of(cur, int(history.iloc[0]["size"])), columns=cosig_cols)
        latest = log_store.latest_checkpoint_row(cur)
    return {"log_size": log_size, "history": history, "cosignatures": cosigs,
            "latest_note": latest[2] if latest else None}


def clear_all() -> None:
    """Forget every cached query of this module."""
    for fn in (overview, transfer_by_digest, transfer_flags, project_filters, projects, project_detail,
               flag_queue, flag_detail, accountables, publishers, publisher_rejections, checkpoints):
        fn.clear()

