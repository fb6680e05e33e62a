"""Publishers: what each operator, committee and government published, and what was refused.

A rejection is shown as its reason code and the schema path of the offending
part, never the gate's message: whoever writes to the topics chooses the
refused bytes, and a value (a phone number typed where a pseudonym belongs),
a property name (a person's name used as a key) or free text from them must
not reach a public page or download (issue 14.7; ``schemas.rejections``).
Only the public projection is readable by the dashboard's role at all.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.i18n import current, fmt_datetime, fmt_int, t, t_code
from schemas.flags import FLAG_TYPES, INTEGRITY_FLAG_TYPES

tg = ui.target()
L = current()  # captured: widget labels may be formatted outside the script thread
st.title(t("publishers.title"))
st.caption(t("publishers.intro"))

d = ui.load(data.publishers, tg.reader_url, tg.schema)
seqs: pd.DataFrame = d["sequences"]
rej: pd.DataFrame = d["rejected"]

merged = pd.merge(seqs, rej, on="publisher_id", how="outer") if len(seqs) or len(rej) else pd.DataFrame()
if not len(merged):
    st.info(t("publishers.none"), icon=":material/inbox:")
else:
    reg: pd.DataFrame = d["registry"]
    kinds = {str(r["publisher_id"]): str(r["kind"] or "") for _, r in reg.iterrows()}
    for col in ("max_seq", "accepted", "rejected", "deliveries"):
        merged[col] = merged[col].fillna(0).astype("int64")
    merged["gap"] = (merged["max_seq"] - merged["accepted"]).clip(lower=0)
    merged = merged.sort_values(["gap", "rejected", "publisher_id"], ascending=[False, False, True])
    shown = pd.DataFrame({
        t("col.publisher"): [p or t("publishers.unknown") for p in merged["publisher_id"]],
        t("col.kind"): [t_code("pkind", kinds.get(p)) if kinds.get(p) else "—" for p in merged["publisher_id"]],
        t("col.accepted"): [fmt_int(x) for x in merged["accepted"]],
        t("col.rejected"): [fmt_int(x) for x in merged["rejected"]],
        t("col.gap"): [fmt_int(x) for x in merged["gap"]],
        t("col.last_event"): [fmt_datetime(x) for x in merged["last_event_time"]],
        t("col.last_rejected"): [fmt_datetime(x) for x in merged["last_rejected_at"]],
    })
    ui.table(shown, times=[t("col.last_event"), t("col.last_rejected")])
    ui.downloads(merged, "publishers", "pub_list")
    gaps = merged[merged["gap"] > 0]
    if len(gaps):
        st.warning(t("publishers.gaps", n=len(gaps)), icon=":material/warning:")
    st.caption(t("publishers.gap_help"))
    # The flags raised about a publisher's conduct (gaps, forgeries, roles...), in plain words.
    ui.flag_explanations([x for x in FLAG_TYPES if x in INTEGRITY_FLAG_TYPES], "pub_flag_help")

    reasons: pd.DataFrame = d["reasons"]
    if len(reasons):
        st.subheader(t("publishers.reasons_title"))
        long = pd.DataFrame({"reason": [t_code("reject", r) for r in reasons["reason"]], "n": reasons["n"]})
        spec = {
            "height": {"step": 24},
            "mark": {"type": "bar", "tooltip": True, "color": "#D55E00"},
            "encoding": {
                "y": {"field": "reason", "type": "nominal", "sort": "-x", "title": None},
                "x": {"field": "n", "type": "quantitative", "title": t("col.count"),
                      "axis": {"format": "d", "tickMinStep": 1}},
            },
        }
        shown_r = pd.DataFrame({t("col.reason"): long["reason"], t("col.count"): [fmt_int(x) for x in long["n"]]})
        ui.chart_block(lambda: ui.vega(long, spec, t("publishers.reasons_title")), shown_r, reasons,
                       "rejection_reasons", "pub_reasons")

    st.subheader(t("publishers.latest_title"))
    names = [str(p) for p in merged["publisher_id"]]
    who = st.selectbox(t("publishers.choose"), names, key="pub_choose",
                       format_func=lambda p: p or t("publishers.unknown", L))
    latest: pd.DataFrame = ui.load(data.publisher_rejections, tg.reader_url, tg.schema, who or None)
    if not len(latest):
        st.success(t("publishers.no_rejections"), icon=":material/check_circle:")
    else:
        ui.table(pd.DataFrame({
            t("col.when"): [fmt_datetime(x) for x in latest["received_at"]],
            t("col.reason"): [t_code("reject", r) for r in latest["reason"]],
            t("col.event_type"): [x or "—" for x in latest["event_type"]],
            t("col.path"): [x or "—" for x in latest["path"]],
            t("col.deliveries"): [fmt_int(x) for x in latest["deliveries"]],
        }), times=[t("col.when")])
        ui.downloads(latest, f"rejections_{who or 'unknown'}", "pub_rej")

st.subheader(t("publishers.howto_title"))
st.markdown(t("publishers.howto_intro"))
st.markdown(t("publishers.howto_1"))
st.code("cuentas keys new", language="bash", wrap_lines=True)
st.markdown(t("publishers.howto_2"))
st.code("cuentas publishers register", language="bash", wrap_lines=True)
st.markdown(t("publishers.howto_3"))
st.code("cuentas publish events.jsonl --as op.example-remesas --key op.key", language="bash", wrap_lines=True)
st.caption(t("publishers.howto_note"))
