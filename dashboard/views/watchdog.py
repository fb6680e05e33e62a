"""Watchdog: the flag queue by amount at stake, its evidence, and reviewers' decisions.

Anyone can read the queue.  Only a signed-in reviewer can acknowledge,
resolve or dismiss a flag, as ``schemas.flag_workflow`` allows.  The page
holds no private key and no writer credential (issue 14.8): it records the
decision as a request with the reviewer-desk role (``auth.request_review``),
and the processors apply it with their own credential and key
(``stream_processors.review_requests``), so it becomes a ``flag.changed``
signed by the platform in the audit log under the reviewer's ``rev_``
pseudonym, like every other change.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth, data, ui
from dashboard.i18n import current, fmt_datetime, fmt_int, fmt_money, t, t_code, utc_text
from infra import db
from schemas.errors import CuentasError
from schemas.flag_workflow import FLAG_STATUSES, OPEN_STATUSES, REVIEW_ACTIONS, review_targets
from schemas.flags import FLAG_TYPES

_TOKEN = "_cc_reviewer_token"
_FLASH = "_cc_watchdog_flash"

tg = ui.target()
L = current()  # captured: widget labels may be formatted outside the script thread
st.title(t("watchdog.title"))
st.caption(t("watchdog.intro"))


# --- who is signed in -------------------------------------------------------------------------------


def review_conn() -> Any:
    """The reviewer desk (role cuentas_review): sign-in and requests, nothing else."""
    try:
        return db.connect(tg.review_url, tg.schema, timeout=5, application_name="cuentas-dashboard-review")
    except CuentasError as e:
        raise data.DataUnavailable(str(e)) from e


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:
        return False


def current_reviewer() -> auth.Reviewer | None:
    token = st.session_state.get(_TOKEN)
    oidc_user = None
    if oidc_configured():
        try:
            if st.user.is_logged_in:
                # Only an address the identity provider verified names a reviewer (issue 14.9).
                oidc_user = auth.oidc_username({k: st.user.get(k) for k in ("is_logged_in", "email", "email_verified")})
        except Exception:
            oidc_user = None
    if not token and not oidc_user:
        return None
    conn = review_conn()
    try:
        if token:
            rev = auth.reviewer_for_token(conn, token)
            if rev is None:
                st.session_state.pop(_TOKEN, None)
            return rev
        rev = auth.reviewer_by_username(conn, oidc_user or "")
        if rev is not None:  # a session of our own, which the processors check each request against
            st.session_state[_TOKEN] = auth.open_session(conn, rev)
        return rev
    except Exception as e:
        raise data.DataUnavailable(str(e)) from e
    finally:
        conn.close()


def sign_in_box() -> None:
    with st.expander(t("auth.title"), icon=":material/login:"):
        if oidc_configured():
            if st.button(t("auth.oidc"), key="oidc_login"):
                st.login()
            try:
                if st.user.is_logged_in:
                    st.warning(t("auth.oidc_not_reviewer"))
            except Exception:
                pass
        with st.form("reviewer_login", clear_on_submit=True):
            username = st.text_input(t("auth.username"), max_chars=64, key="rev_user", autocomplete="username")
            password = st.text_input(t("auth.password"), type="password", max_chars=1024, key="rev_pass",
                                     autocomplete="current-password")
            submitted = st.form_submit_button(t("auth.sign_in"), type="primary")
        if submitted:
            conn = review_conn()
            try:
                token, _rev = auth.login(conn, username or "", password or "",
                                         max_failures_per_minute=tg.settings.sign_in_max_failures_per_minute)
            except auth.AuthError as e:
                st.error(t(f"auth.{e.reason}") if e.reason in ("locked", "busy") else t("auth.bad"),
                         icon=":material/lock:")
                return
            except CuentasError:
                st.error(t("auth.bad"), icon=":material/lock:")
                return
            except Exception as e:
                raise data.DataUnavailable(str(e)) from e
            finally:
                conn.close()
            st.session_state[_TOKEN] = token
            st.rerun()


reviewer = ui.load(current_reviewer)
if reviewer is None:
    sign_in_box()
else:
    st.info(t("auth.signed_in", user=reviewer.username, rid=reviewer.reviewer_id), icon=":material/badge:")
    if st.button(t("auth.sign_out"), key="rev_logout"):
        conn = ui.load(review_conn)
        try:
            auth.logout(conn, st.session_state.get(_TOKEN))
        finally:
            conn.close()
        st.session_state.pop(_TOKEN, None)
        if oidc_configured():
            st.logout()
        st.rerun()

flash = st.session_state.pop(_FLASH, None)
if flash:
    st.success(flash, icon=":material/check_circle:")

# --- filters and queue ----------------------------------------------------------------------------
with st.expander(t("watchdog.filters"), expanded=False, icon=":material/filter_list:"):
    statuses = st.multiselect(t("watchdog.f_status"), FLAG_STATUSES, default=list(OPEN_STATUSES),
                              format_func=lambda s: t_code("flag_status", s, L), key="wd_status")
    types = st.multiselect(t("watchdog.f_type"), FLAG_TYPES, format_func=lambda s: t_code("flag", s, L), key="wd_type")
    if "wd_acc" not in st.session_state:
        qp = st.query_params.get("accountable")
        st.session_state["wd_acc"] = str(qp)[:64] if qp else ""
    acc_text = st.text_input(t("watchdog.f_accountable"), key="wd_acc", max_chars=64,
                             help=t("watchdog.f_accountable_help"))

accountable = None
if acc_text.strip():
    accountable = acc_text.strip().lower()
    if not data.ID_RE.match(accountable):
        st.warning(t("watchdog.bad_accountable"), icon=":material/edit:")
        st.stop()
if not statuses:
    st.info(t("watchdog.pick_status"))
    st.stop()

queue: pd.DataFrame = ui.load(data.flag_queue, tg.reader_url, tg.schema, tuple(statuses), tuple(types), accountable)
if not len(queue):
    st.success(t("watchdog.empty"), icon=":material/check_circle:")
    st.stop()

st.caption(t("watchdog.count", n=len(queue)))
ui.table(pd.DataFrame({
    t("col.at_stake"): [fmt_money(a, c) for a, c in zip(queue["amount_at_stake"], queue["currency"], strict=True)],
    t("col.flag_type"): [t_code("flag", x) for x in queue["flag_type"]],
    t("col.status"): [t_code("flag_status", x) for x in queue["status"]],
    t("col.severity"): [t_code("severity", x) for x in queue["severity"]],
    t("col.accountable"): queue["accountable"],
    t("col.subject"): [f"{t_code('subject', k)}: {i}" for k, i in zip(queue["subject_kind"], queue["subject_id"],
                                                                     strict=True)],
    t("col.raised"): [fmt_datetime(x) for x in queue["raised_at"]],
}), times=[t("col.raised")])
ui.downloads(queue, "flags", "wd_queue")
ui.flag_explanations(queue["flag_type"], "wd_flag_help")

# --- one flag -----------------------------------------------------------------------------------------
ids = list(queue["flag_id"])
by_id = {r["flag_id"]: r for _, r in queue.iterrows()}


def flag_label(fid: str) -> str:
    r = by_id[fid]
    return f"{t_code('flag', r['flag_type'], L)} · {r['subject_id']} · {fmt_money(r['amount_at_stake'], r['currency'], L)}"


fid = st.selectbox(t("watchdog.choose"), ids, format_func=flag_label, key="wd_flag")
detail = ui.load(data.flag_detail, tg.reader_url, tg.schema, str(fid))
flag = detail["flag"]
if flag is None:
    st.info(t("watchdog.gone"))
    st.stop()

st.subheader(t_code("flag", flag["flag_type"]))
if explanation := ui.flag_text(flag["flag_type"]):
    st.markdown(explanation)
st.markdown(t("watchdog.flag_line", status=t_code("flag_status", flag["status"]),
              severity=t_code("severity", flag["severity"]), accountable=flag["accountable"],
              subject=f"{t_code('subject', flag['subject_kind'])} {flag['subject_id']}",
              amount=fmt_money(flag["amount_at_stake"], flag["currency"]), raised=fmt_datetime(flag["raised_at"])),
            help=t("common.utc_hover", utc=utc_text(flag["raised_at"])) if utc_text(flag["raised_at"]) else None)
if flag["subject_kind"] == "project":
    st.page_link(ui.PAGES["projects"], label=t("watchdog.open_project", project=flag["subject_id"]),
                 icon=":material/handshake:", query_params={"project": str(flag["subject_id"])})

st.markdown(f"**{t('watchdog.evidence')}**")
evidence = flag["evidence"] if isinstance(flag["evidence"], list) else []
if not evidence:
    st.caption(t("watchdog.no_evidence"))
for ev in evidence[:20]:
    eid = str(ev.get("event_id", "")) if isinstance(ev, dict) else ""
    if not data.EVENT_ID_RE.match(eid):
        continue
    idx = ev.get("log_index")
    st.page_link(ui.PAGES["audit"], label=t("watchdog.evidence_item", event=eid,
                                            index=fmt_int(idx) if idx is not None else "—"),
                 icon=":material/link:", query_params={"event": eid})
if len(evidence) > 20:
    st.caption(t("watchdog.more_evidence", n=len(evidence) - 20))

hist: pd.DataFrame = detail["history"]
if len(hist):
    with st.expander(t("watchdog.history"), icon=":material/history:"):
        ui.table(pd.DataFrame({
            "#": hist["n"],
            t("col.status"): [t_code("flag_status", x) for x in hist["status"]],
            t("col.actor"): hist["actor"],
            t("col.reason"): [t_code("reason", x) for x in hist["reason_code"]],
            t("col.when"): [fmt_datetime(x) for x in hist["changed_at"]],
            t("col.log_index"): [fmt_int(x) for x in hist["log_index"]],
        }), times=[t("col.when")])

# --- actions ------------------------------------------------------------------------------------------


#: How long the page waits for the processors to apply a request before saying it is queued.
WAIT_FOR_PROCESSORS_S = 6.0


def act(flag_id: str, new_status: str, reason_code: str, token: str | None) -> str:
    """Record a reviewer decision as a request and wait briefly for the processors; a result code."""
    if not token:
        return "signed_out"
    conn = review_conn()
    try:
        rid = auth.request_review(conn, token, flag_id, new_status, reason_code)
        deadline = time.monotonic() + WAIT_FOR_PROCESSORS_S
        outcome = auth.request_outcome(conn, rid)
        while outcome is None and time.monotonic() < deadline:
            time.sleep(0.25)
            outcome = auth.request_outcome(conn, rid)
    except Exception:
        conn.rollback()
        raise
    finally:
        conn.close()
    return {None: "queued", "applied": "ok"}.get(outcome, outcome or "error")


def do(new_status: str, reason_code: str) -> None:
    try:
        result = act(str(flag["flag_id"]), new_status, reason_code, st.session_state.get(_TOKEN))
    except Exception:
        logging.getLogger("dashboard.watchdog").exception("reviewer action on %s failed", flag["flag_id"])
        result = "error"
    if result in ("ok", "queued"):
        for fn in (data.flag_queue, data.flag_detail, data.overview, data.project_detail, data.projects,
                   data.transfer_flags):
            fn.clear()
        st.session_state[_FLASH] = (t("watchdog.done", status=t_code("flag_status", new_status)) if result == "ok"
                                    else t("watchdog.queued", status=t_code("flag_status", new_status)))
        st.rerun()
    st.error(t(f"watchdog.result_{result}"), icon=":material/error:")


st.markdown(f"**{t('watchdog.actions')}**")
if reviewer is None:
    st.caption(t("watchdog.sign_in_to_act"))
else:
    status = str(flag["status"])
    targets = review_targets(status)
    if not targets:
        st.caption(t("watchdog.closed", status=t_code("flag_status", status)))
    else:
        if "acknowledged" in targets and st.button(t("watchdog.acknowledge"), key="wd_ack",
                                                   icon=":material/visibility:"):
            do("acknowledged", REVIEW_ACTIONS["acknowledged"].reasons[0])
        if "resolved" in targets and st.button(t("watchdog.resolve"), key="wd_resolve", icon=":material/task_alt:"):
            do("resolved", REVIEW_ACTIONS["resolved"].reasons[0])
        if "dismissed" in targets:
            reason = st.selectbox(t("watchdog.dismiss_reason"), REVIEW_ACTIONS["dismissed"].reasons,
                                  format_func=lambda r: t_code("reason", r, L), key="wd_reason")
            if st.button(t("watchdog.dismiss"), key="wd_dismiss", icon=":material/block:"):
                do("dismissed", str(reason))
        st.caption(t("watchdog.public_note", rid=reviewer.reviewer_id))
