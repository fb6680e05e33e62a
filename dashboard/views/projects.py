"""Projects: who paid their share, who is late, what was spent and verified, and the flags."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.i18n import current, fmt_bps, fmt_date, fmt_int, fmt_money, fmt_pct, t, t_code
from dashboard.style import GOOD, NEUTRAL, WARN
from schemas.money import to_major_float

tg = ui.target()
L = current()  # captured: widget labels may be formatted outside the script thread
st.title(t("projects.title"))
st.caption(t("projects.intro"))

ALL = "__all__"
opts: pd.DataFrame = ui.load(data.project_filters, tg.reader_url, tg.schema)


def choices(col: str, df: pd.DataFrame) -> list[str]:
    return [ALL, *sorted({str(x) for x in df[col] if x})] if len(df) else [ALL]


def label(prefix: str | None) -> Any:
    def f(v: str) -> str:
        if v == ALL:
            return t("common.all", L)
        return t_code(prefix, v, L) if prefix else v
    return f


with st.expander(t("projects.filters"), expanded=False, icon=":material/filter_list:"):
    state_code = st.selectbox(t("projects.f_state"), choices("state_code", opts), format_func=label(None),
                              key="pj_state")
    sub = opts[opts["state_code"] == state_code] if state_code != ALL and len(opts) else opts
    municipality = st.selectbox(t("projects.f_municipality"), choices("municipality", sub), format_func=label(None),
                                key="pj_muni")
    ptype = st.selectbox(t("projects.f_type"), choices("project_type", opts), format_func=label("ptype"),
                         key="pj_type")
    pstatus = st.selectbox(t("projects.f_status"), choices("status", opts), format_func=label("project_status"),
                           key="pj_status")
    flagged = st.checkbox(t("projects.f_flagged"), key="pj_flagged")
    if "pj_search" not in st.session_state:
        qp = st.query_params.get("project")
        st.session_state["pj_search"] = str(qp)[:64] if qp else ""
    search = st.text_input(t("projects.f_search"), key="pj_search", max_chars=64,
                           placeholder="mx-zac-agua-2025", help=t("projects.f_search_help"))

project_id: str | None = None
if search.strip():
    candidate = search.strip().lower()
    if data.ID_RE.match(candidate):
        project_id = candidate
    else:
        st.warning(t("projects.bad_search"), icon=":material/edit:")
        st.stop()


def opt(v: str) -> str | None:
    return None if v == ALL else v


rows: pd.DataFrame = ui.load(data.projects, tg.reader_url, tg.schema, opt(state_code), opt(municipality),
                             opt(ptype), opt(pstatus), project_id, bool(flagged))
if not len(rows):
    st.info(t("projects.none"), icon=":material/search_off:")
    st.stop()

st.caption(t("projects.count", n=len(rows)))
ui.table(pd.DataFrame({
    t("col.project"): rows["project_id"],
    t("col.type"): [t_code("ptype", x) for x in rows["project_type"]],
    t("col.place"): [f"{m or '—'}, {s or '—'}" for m, s in zip(rows["municipality"], rows["state_code"], strict=True)],
    t("col.budget"): [fmt_money(b, c) for b, c in zip(rows["budget"], rows["currency"], strict=True)],
    t("col.disbursed"): [fmt_money(b, c) for b, c in zip(rows["disbursed"], rows["currency"], strict=True)],
    t("col.spent"): [fmt_money(b, c) for b, c in zip(rows["spent"], rows["currency"], strict=True)],
    t("col.open_flags"): [fmt_int(x) for x in rows["open_flags"]],
}))
ui.downloads(rows, "projects", "pj_list")

ids = list(rows["project_id"])
chosen = st.selectbox(t("projects.choose"), ids, index=0, key="pj_choose")
d = ui.load(data.project_detail, tg.reader_url, tg.schema, str(chosen))
p = d["project"]
if p is None:
    st.info(t("projects.none"))
    st.stop()
ccy = p["currency"] or ""


def money(v: Any) -> str:
    return fmt_money(v, ccy)


def major(v: Any) -> float:
    return 0.0 if v is None or v != v else to_major_float(v, ccy)


st.header(str(p["project_id"]))
st.caption(t("projects.summary", type=t_code("ptype", p["project_type"]), place=f"{p['municipality'] or '—'}, "
             f"{p['state_code'] or '—'}", club=p["club_id"] or "—", status=t_code("project_status", p["status"])))
c1, c2 = st.columns(2)
with c1:
    st.metric(t("col.budget"), money(p["budget"]))
    st.metric(t("projects.club_received"), money(p["club_received"]))
with c2:
    st.metric(t("projects.gov_disbursed"), money(p["disbursed"]))
    st.metric(t("col.spent"), money(p["spent"]))
contrib = d["contributions"]
if len(contrib) and int(contrib.iloc[0]["n"]):
    st.caption(t("projects.contributions", n=int(contrib.iloc[0]["n"]),
                 amount=fmt_money(int(contrib.iloc[0]["amount"]), contrib.iloc[0]["currency"])))

# --- shares ---------------------------------------------------------------------------------------
st.subheader(t("projects.shares_title"))
parties: pd.DataFrame = d["parties"]
if not len(parties):
    st.info(t("projects.no_parties"))
else:
    shown = pd.DataFrame({
        t("col.level"): [t_code("level", x) for x in parties["level"]],
        t("col.party"): parties["party_id"],
        t("col.share"): [fmt_bps(x, 0) for x in parties["share_bps"]],
        t("col.owed"): [money(x) for x in parties["owed"]],
        t("col.pledged"): [money(x) for x in parties["pledged"]],
        t("col.disbursed"): [money(x) for x in parties["disbursed"]],
        t("col.due"): [fmt_date(x) for x in parties["latest_due"]],
        t("col.status"): [t_code("party_status", x) for x in parties["status"]],
    })
    long, spec = ui.owed_pledged_disbursed(parties, lambda x: t_code("level", x), ccy)
    ui.chart_block(lambda: ui.vega(long, spec, t("projects.shares_title")), shown, parties,
                   f"{p['project_id']}_shares", "pj_shares")

# --- milestones -----------------------------------------------------------------------------------
st.subheader(t("projects.milestones_title"))
ms: pd.DataFrame = d["milestones"]
if not len(ms):
    st.info(t("projects.no_milestones"))
else:
    def digests(ev: Any) -> str:
        if not isinstance(ev, list) or not ev:
            return "—"
        return ", ".join(str(x)[:12] + "…" for x in ev[:5]) + (f" (+{len(ev) - 5})" if len(ev) > 5 else "")

    shown = pd.DataFrame({
        t("col.milestone"): ms["milestone_id"],
        t("col.planned"): [t("common.yes") if x else t("common.no") for x in ms["planned"]],
        t("col.due"): [fmt_date(x) for x in ms["due"]],
        t("col.amount"): [money(x) for x in ms["amount"]],
        t("col.reported"): [fmt_date(x) for x in ms["reported_at"]],
        t("col.spent"): [money(x) for x in ms["spent"]],
        t("col.progress"): [fmt_pct(Fraction(int(x), 100), 0) if x == x and x is not None else "—"
                            for x in ms["progress_pct"]],
        t("col.verified"): [fmt_date(x) for x in ms["verified_at"]],
        t("col.outcome"): [t_code("outcome", x) if isinstance(x, str) else "—" for x in ms["outcome"]],
        t("col.status"): [t_code("milestone_status", x) for x in ms["status"]],
        t("col.evidence"): [digests(x) for x in ms["evidence"]],
    })
    points = []
    for _, r in ms.iterrows():
        for col, what in (("due", "ms_due"), ("reported_at", "ms_reported"), ("verified_at", "ms_verified")):
            v = r[col]
            if v is not None and v == v:
                points.append({"milestone": str(r["milestone_id"]), "what": t(f"projects.{what}"),
                               "when": pd.Timestamp(v).isoformat()})
    kinds = [t("projects.ms_due"), t("projects.ms_reported"), t("projects.ms_verified")]
    spec = {
        "height": {"step": 28},
        "mark": {"type": "point", "filled": True, "size": 120, "tooltip": True},
        "encoding": {
            "y": {"field": "milestone", "type": "nominal", "title": None},
            "x": {"field": "when", "type": "temporal", "title": None},
            "shape": {"field": "what", "type": "nominal", "title": None, "legend": ui.LEGEND,
                      "scale": {"domain": kinds}},
            "color": {"field": "what", "type": "nominal", "title": None, "legend": ui.LEGEND,
                      "scale": {"domain": kinds, "range": [NEUTRAL, WARN, GOOD]}},
        },
    }
    raw = ms.copy()
    raw["evidence"] = [",".join(x) if isinstance(x, list) else "" for x in raw["evidence"]]
    ui.chart_block(lambda: ui.vega(pd.DataFrame(points), spec, t("projects.milestones_title")), shown, raw,
                   f"{p['project_id']}_milestones", "pj_ms", caption=t("projects.milestones_caption"))

# --- flags ----------------------------------------------------------------------------------------
st.subheader(t("projects.flags_title"))
fl: pd.DataFrame = d["flags"]
if not len(fl):
    st.success(t("projects.no_flags"), icon=":material/check_circle:")
else:
    ui.table(pd.DataFrame({
        t("col.flag_type"): [t_code("flag", x) for x in fl["flag_type"]],
        t("col.status"): [t_code("flag_status", x) for x in fl["status"]],
        t("col.accountable"): fl["accountable"],
        t("col.severity"): [t_code("severity", x) for x in fl["severity"]],
        t("col.at_stake"): [fmt_money(a, c) for a, c in zip(fl["amount_at_stake"], fl["currency"], strict=True)],
        t("col.raised"): [fmt_date(x) for x in fl["raised_at"]],
    }))
    ui.flag_explanations(fl["flag_type"], "pj_flag_help")
    st.page_link(ui.PAGES["watchdog"], label=t("projects.to_watchdog"), icon=":material/policy:",
                 query_params={"accountable": str(fl.iloc[0]["accountable"])})
