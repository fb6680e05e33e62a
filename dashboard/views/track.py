"""Track my transfer: a receipt code finds one's own transfer, and nothing about anyone else.

The code is normalised (schemas.privacy) and only its digest is looked up
(index ``transfers_receipt``).  The page shows the transfer's own facts, never
a sender or beneficiary pseudonym, and builds and verifies the transfer's
receipt itself before showing the green check.
"""

from __future__ import annotations

import contextlib
import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard import data, proofs, ui
from dashboard.i18n import (
    current,
    fmt_bps,
    fmt_duration,
    fmt_money,
    t,
    t_code,
    time_html,
)
from schemas.errors import MalformedInput
from schemas.flag_workflow import OPEN_STATUSES
from schemas.privacy import normalize_receipt_code, receipt_digest
from schemas.thresholds import SDG_CEILING_BPS, SDG_TARGET_BPS

tg = ui.target()
st.title(t("track.title"))
st.caption(t("track.intro"))

_KEY = "track_code"
if _KEY not in st.session_state:
    qp = st.query_params.get("code")
    st.session_state[_KEY] = str(qp)[:64] if qp else ""
    st.session_state["track_submitted"] = bool(qp)

with st.form("track_form", border=False):
    st.text_input(t("track.code_label"), key=_KEY, max_chars=64, placeholder="CC-XXXX-XXXX-XXXX-XXXX",
                  help=t("track.code_help"), autocomplete="off")
    if st.form_submit_button(t("track.submit"), type="primary", icon=":material/search:"):
        st.session_state["track_submitted"] = True

code_text = str(st.session_state.get(_KEY) or "")


def light_page_url(text: str) -> str | None:
    """The light receipt check page (issue 18), with the code when it is a valid one; None when not served."""
    s = tg.settings
    if not s.receipt_check_url.strip() and not s.receipt_check_port:
        return None
    query = {"lang": current()}
    with contextlib.suppress(MalformedInput):
        query["code"] = normalize_receipt_code(text)
    return s.receipt_check_address + "?" + urlencode(query)


if (light := light_page_url(code_text)) is not None:
    st.markdown(f":material/bolt: [{t('track.open_light')}]({light})")
if not st.session_state.get("track_submitted") or not code_text.strip():
    st.info(t("track.enter_code"), icon=":material/info:")
    st.stop()

try:
    code = normalize_receipt_code(code_text)
except MalformedInput:
    st.warning(t("track.bad_code"), icon=":material/edit:")
    st.stop()

tr: dict[str, Any] | None = ui.load(data.transfer_by_digest, tg.reader_url, tg.schema, receipt_digest(code))
if tr is None:
    st.warning(t("track.not_found"), icon=":material/search_off:")
    st.caption(t("track.not_found_hint"))
    st.stop()

flags: pd.DataFrame = ui.load(data.transfer_flags, tg.reader_url, tg.schema, str(tr["transfer_id"]))

# --- status and the promise -------------------------------------------------------------------
status = str(tr["status"])
st.subheader(t("track.status_title", status=t_code("transfer_status", status)))
open_flags = flags[flags["status"].isin(OPEN_STATUSES)] if len(flags) else flags
if status == "paid" and not len(open_flags):
    st.success(t("track.paid_ok"), icon=":material/task_alt:")
elif len(open_flags):
    st.warning(t("track.has_flags", n=len(open_flags)), icon=":material/flag:")

c1, c2 = st.columns(2)
with c1:
    st.metric(t("track.sent"), fmt_money(tr["send_amount"], tr["send_currency"]))
    st.metric(t("track.promised"), fmt_money(tr["promised_amount"], tr["promised_currency"]))
    st.metric(t("track.paid"), fmt_money(int(tr["paid_amount"] or 0), tr["promised_currency"])
              if tr["payout_count"] else t("track.not_paid_yet"))
with c2:
    st.metric(t("track.fee"), fmt_money(tr["fee_amount"], tr["send_currency"]))
    cost = tr["effective_cost_bps"] if tr["effective_cost_bps"] is not None else tr["disclosed_cost_bps"]
    st.metric(t("track.cost"), fmt_bps(cost),
              help=t("track.cost_help", disclosed=fmt_bps(tr["disclosed_cost_bps"]),
                     effective=fmt_bps(tr["effective_cost_bps"])))
    st.metric(t("track.delivery"), fmt_duration(tr["delivery_seconds"]) if tr["delivery_seconds"] is not None
              else t("track.not_paid_yet"), help=t("track.delivery_help"))
if cost is not None:
    goals = {"target": fmt_bps(SDG_TARGET_BPS, 0), "ceiling": fmt_bps(SDG_CEILING_BPS, 0)}
    if cost <= SDG_TARGET_BPS:
        st.caption(t("track.cost_below_target", **goals))
    elif cost <= SDG_CEILING_BPS:
        st.caption(t("track.cost_between", **goals))
    else:
        st.caption(t("track.cost_above_ceiling", **goals))
st.caption(t("track.route", operator=tr["operator"] or "—", a=tr["corridor_from"] or "—", b=tr["corridor_to"] or "—"))
if tr["destination_kind"] == "project_fund" and tr["project_id"]:
    st.page_link(ui.PAGES["projects"], label=t("track.to_project", project=tr["project_id"]),
                 icon=":material/handshake:", query_params={"project": str(tr["project_id"])})

# --- timeline ---------------------------------------------------------------------------------
# Every line: its time (in the visitor's zone, named; UTC on hover), what happened, the
# amounts, and how it stands (the promise met or missed, paid in full or short, a flag's status).
st.subheader(t("track.timeline"))


def promise_status(tr: dict[str, Any]) -> str:
    due, paid_at = tr["available_by"], tr["first_paid_at"]
    if status in ("cancelled", "refunded"):
        return t_code("transfer_status", status)
    if paid_at is not None:
        if paid_at <= due:
            return t("track.promise_met")
        return t("track.promise_missed", late=fmt_duration((paid_at - due).total_seconds()))
    return t("track.promise_overdue") if datetime.now(UTC) > due else t("track.promise_pending")


def paid_status(tr: dict[str, Any]) -> str:
    paid, promised = int(tr["paid_amount"] or 0), tr["promised_amount"]
    ccy = tr["promised_currency"]
    if promised is None or paid == int(promised):
        return t("track.paid_full")
    if paid < int(promised):
        return t("track.paid_short", missing=fmt_money(int(promised) - paid, ccy))
    return t("track.paid_more", extra=fmt_money(paid - int(promised), ccy))


events: list[tuple[datetime, str]] = []
if tr["sent_at"] is not None:
    events.append((tr["sent_at"], t("track.ev_sent", amount=fmt_money(tr["send_amount"], tr["send_currency"]),
                                    fee=fmt_money(tr["fee_amount"], tr["send_currency"]))))
if tr["available_by"] is not None:
    events.append((tr["available_by"], t("track.ev_promised_by",
                                         amount=fmt_money(tr["promised_amount"], tr["promised_currency"]),
                                         status=promise_status(tr))))
if tr["first_paid_at"] is not None:
    events.append((tr["first_paid_at"], t("track.ev_paid", amount=fmt_money(int(tr["paid_amount"] or 0),
                                                                           tr["promised_currency"]),
                                          status=paid_status(tr))))
for _, f in flags.iterrows():
    what = t_code("flag", f["flag_type"])
    line = t("track.ev_flag", what=what, status=t_code("flag_status", f["status"]))
    if f["currency"] and not pd.isna(f["amount_at_stake"]):
        line += " · " + t("track.at_stake", amount=fmt_money(f["amount_at_stake"], f["currency"]))
    events.append((f["raised_at"], line))
    if f["resolved_at"] is not None and not pd.isna(f["resolved_at"]):
        events.append((f["resolved_at"], t("track.ev_flag_closed", what=what,
                                           status=t_code("flag_status", f["status"]))))
events.sort(key=lambda e: e[0])
if tr["first_paid_at"] is None and status in ("sent", "pending_sent"):
    st.caption(t("track.waiting_payout"))
if events:
    items = "".join(f'<li><strong>{time_html(when)}</strong> — {html.escape(what)}</li>' for when, what in events)
    st.markdown(f'<ul class="cc-timeline">{items}</ul>', unsafe_allow_html=True)
else:
    st.markdown(t("track.no_events"))

if len(flags):
    # One block per flag, its explanation under its label (issue 15): on a phone a table of
    # codes says nothing; the words say what happened, by when it was due, who answers for it
    # and what closes it.
    st.markdown(f"**{t('track.flags_title')}**")
    for _, f in flags.iterrows():
        with st.container(border=True):
            st.markdown(f"**{t_code('flag', f['flag_type'])}** · {t_code('flag_status', f['status'])}")
            explanation = ui.flag_text(f["flag_type"])
            if explanation:
                st.markdown(explanation)
            facts = [f"{html.escape(t('col.accountable'))}: {html.escape(str(f['accountable']))}"]
            if f["currency"] and not pd.isna(f["amount_at_stake"]):
                facts.append(f"{html.escape(t('col.at_stake'))}: "
                             f"{html.escape(fmt_money(f['amount_at_stake'], f['currency']))}")
            facts.append(f"{html.escape(t('col.raised'))}: {time_html(f['raised_at'])}")
            st.markdown('<p class="cc-flag-facts">' + " · ".join(facts) + "</p>", unsafe_allow_html=True)

# --- the receipt ------------------------------------------------------------------------------
st.subheader(t("track.receipt_title"))
log_key = proofs.log_verifier(tg.settings)
event_id = tr["sent_event_id"]
if not event_id:
    st.warning(t("track.receipt_pending"), icon=":material/hourglass_top:")
    st.stop()
check = ui.load(proofs.check_receipt, tg.reader_url, tg.schema, str(event_id), log_key,
                proofs.witness_policy(tg.settings))
if check.state == "verified":
    st.success(t("track.verified", n=check.witnesses, index=check.leaf_index, size=check.tree_size),
               icon=":material/verified:")
elif check.state == "unwitnessed":
    st.warning(t("track.unwitnessed", index=check.leaf_index, size=check.tree_size), icon=":material/pending:")
elif check.state in ("no_checkpoint", "not_in_log"):
    st.warning(t("track.receipt_pending"), icon=":material/hourglass_top:")
elif check.state == "no_key":
    st.warning(t("track.no_log_key"), icon=":material/key_off:")
else:
    st.error(t("track.verify_failed", reason=check.error or "?"), icon=":material/gpp_bad:")

if check.receipt_json:
    st.download_button(t("track.download_receipt"), check.receipt_json.encode("utf-8"),
                       file_name="receipt.json", mime="application/json", on_click="ignore",
                       icon=":material/download:", key="receipt_dl")
    st.markdown(t("track.verify_offline"))
    st.code(proofs.verify_command(proofs.trusted_keys(tg.settings)), language="bash", wrap_lines=True)
    st.caption(t("track.receipt_privacy"))
