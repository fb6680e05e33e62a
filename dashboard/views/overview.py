"""Overview (public): money sent, paid and matched; open flags; cost and speed per corridor; flows.

Reads only summary tables.  Groups (corridor, operator, currency) with fewer
than MIN_GROUP_SIZE transfers over the period are left out of EVERY figure on
this page, totals included, so that no total minus the shown groups reveals a
small group.  Transfers, not people: senders have a pseudonym per transfer
(issue 14.6), so the public record cannot count people, and a count it cannot
make honestly is not pretended (a group of five transfers may be one person;
the threat model says so).
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.i18n import (
    current,
    fmt_bps,
    fmt_datetime,
    fmt_int,
    fmt_money,
    fmt_pct,
    t,
    t_code,
    utc_text,
)
from dashboard.style import BAD, GOOD, NEUTRAL, OKABE_ITO, WARN
from schemas.money import to_major_float
from schemas.thresholds import SDG_CEILING_BPS, SDG_TARGET_BPS

G20_1H_TARGET = Fraction(3, 4)


def targets() -> dict[str, str]:
    """The UN cost target and ceiling (SDG 10.c) and the G20 speed target, as the visitor writes percentages."""
    return {"target": fmt_bps(SDG_TARGET_BPS, 0), "ceiling": fmt_bps(SDG_CEILING_BPS, 0), "g20": fmt_pct(G20_1H_TARGET, 0)}


def corridor_label(a: str, b: str) -> str:
    return f"{a} → {b}"


def dot_quote(s: str) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def flow_dot(edges: list[tuple[str, str, float, str]], colours: dict[str, str]) -> str:
    """A left-to-right flow diagram: edge width proportional to its value (a Sankey drawn with Graphviz)."""
    top = max((v for _, _, v, _ in edges), default=1) or 1
    lines = [
        "digraph flows {",
        '  rankdir=LR; bgcolor="transparent"; nodesep=0.25; ranksep=1.1;',
        '  node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=14, penwidth=0, margin="0.15,0.08"];',
        '  edge [fontname="sans-serif", fontsize=12, arrowsize=0.6];',
    ]
    nodes: dict[str, str] = {}
    for a, b, _, _ in edges:
        for n in (a, b):
            nodes.setdefault(n, colours.get(n, "#56B4E9"))
    for n, c in nodes.items():
        font = "#FFFFFF" if c in (NEUTRAL, BAD, "#000000", GOOD) else "#000000"
        lines.append(f"  {dot_quote(n)} [fillcolor={dot_quote(c)}, fontcolor={dot_quote(font)}];")
    for a, b, v, label in edges:
        width = 1 + 11 * (v / top)
        lines.append(
            f"  {dot_quote(a)} -> {dot_quote(b)} [penwidth={width:.2f}, label={dot_quote(label)},"
            f' color="#0072B288"];'
        )
    lines.append("}")
    return "\n".join(lines)


tg = ui.target()
L = current()  # captured: widget labels may be formatted outside the script thread
k = max(1, int(tg.settings.min_group_size))

st.title(t("overview.title"))
st.caption(t("overview.intro"))

PERIODS = [30, 90, 365, 0]
period = st.selectbox(
    t("overview.period"), PERIODS, index=1, key="ov_period",
    format_func=lambda d: t("overview.period_all", L) if d == 0 else t("overview.period_days", L, n=d),
)


@st.fragment(run_every=timedelta(seconds=30))
def live() -> None:
    d = ui.load(data.overview, tg.reader_url, tg.schema, int(period))
    groups: pd.DataFrame = d["groups"]
    visible = groups[groups["transfers"] >= k].copy() if len(groups) else groups
    hidden = len(groups) - len(visible)
    log_size = int(d["log"].iloc[0]["size"]) if len(d["log"]) else 0
    updated = d["log"].iloc[0]["updated_at"] if len(d["log"]) else None
    st.caption(t("overview.updated", n=log_size, when=fmt_datetime(updated)),
               help=t("common.utc_hover", utc=utc_text(updated)) if utc_text(updated) else None)

    headline(visible, hidden, d)
    flags_section(d["flags"])
    if len(visible):
        cost_section(visible)
        speed_section(visible)
    else:
        st.subheader(t("overview.cost_title"))
        st.info(t("overview.no_transfers", k=k))
    flows_section(visible, d)
    matched_section(d["levels"], d["projects"])


def headline(visible: pd.DataFrame, hidden: int, d: dict[str, Any]) -> None:
    st.subheader(t("overview.headline"))
    c1, c2 = st.columns(2)
    with c1:
        if len(visible):
            by_ccy = visible.groupby("currency", as_index=False)[["sent_amount", "transfers", "paid", "paid_value"]].sum()
            by_ccy = by_ccy.sort_values("sent_amount", ascending=False)
            main = by_ccy.iloc[0]
            st.metric(t("overview.sent"), fmt_money(int(main["sent_amount"]), str(main["currency"])),
                      help=t("overview.sent_help"))
            for _, r in by_ccy.iloc[1:].iterrows():
                st.caption(f"+ {fmt_money(int(r['sent_amount']), str(r['currency']))}")
            st.metric(t("overview.paid_value"), fmt_money(int(main["paid_value"]), str(main["currency"])),
                      help=t("overview.paid_value_help"))
            n = int(visible["transfers"].sum())
            paid = int(visible["paid"].sum())
            st.metric(t("overview.paid"), fmt_pct(Fraction(paid, n) if n else None),
                      help=t("overview.paid_help", paid=paid, n=n))
        else:
            st.metric(t("overview.sent"), "—")
            st.metric(t("overview.paid"), "—")
        if hidden:
            st.caption(t("overview.hidden_groups", n=hidden, k=k))
    with c2:
        lv: pd.DataFrame = d["levels"]
        pr: pd.DataFrame = d["projects"]
        if len(pr):
            main_p = pr.sort_values("budget", ascending=False).iloc[0]
            ccy = str(main_p["currency"])
            gov = lv[(lv["currency"] == ccy)]["disbursed"].sum() if len(lv) else 0
            st.metric(t("overview.matched"), fmt_money(int(gov), ccy),
                      help=t("overview.matched_help", club=fmt_money(int(main_p["club_received"]), ccy)))
        else:
            st.metric(t("overview.matched"), "—")
        fl: pd.DataFrame = d["flags"]
        open_n = int(fl["n"].sum()) if len(fl) else 0
        st.metric(t("overview.open_flags"), fmt_int(open_n), help=t("overview.open_flags_help"))
        if len(fl):
            at_stake = fl[fl["currency"] != ""].groupby("currency", as_index=False)["amount"].sum()
            for _, r in at_stake.sort_values("amount", ascending=False).iterrows():
                st.caption(t("overview.at_stake", amount=fmt_money(int(r["amount"]), str(r["currency"]))))


def flags_section(fl: pd.DataFrame) -> None:
    st.subheader(t("overview.flags_title"))
    if not len(fl):
        st.success(t("overview.no_flags"), icon=":material/check_circle:")
        return
    shown = pd.DataFrame({
        t("col.flag_type"): [t_code("flag", x) for x in fl["flag_type"]],
        t("col.status"): [t_code("flag_status", x) for x in fl["status"]],
        t("col.count"): [fmt_int(x) for x in fl["n"]],
        t("col.at_stake"): [fmt_money(int(a), c) if c else "—" for a, c in zip(fl["amount"], fl["currency"], strict=True)],
    })
    chart = fl.groupby(["flag_type", "status"], as_index=False)["n"].sum()
    chart["type_label"] = [t_code("flag", x) for x in chart["flag_type"]]
    chart["status_label"] = [t_code("flag_status", x) for x in chart["status"]]
    spec = {
        "height": {"step": 26},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "type_label", "type": "nominal", "sort": "-x", "title": None},
            "x": {"field": "n", "type": "quantitative", "title": t("col.count"),
                  "axis": {"format": "d", "tickMinStep": 1}},
            "color": {"field": "status_label", "type": "nominal", "title": None,
                      "scale": {"range": [WARN, NEUTRAL]}, "legend": ui.LEGEND},
        },
    }
    ui.chart_block(lambda: ui.vega(chart, spec, t("overview.flags_title")), shown, fl, "open_flags", "ov_flags")
    ui.flag_explanations(fl["flag_type"], "ov_flag_help")


def cost_section(visible: pd.DataFrame) -> None:
    st.subheader(t("overview.cost_title"))
    st.caption(t("overview.cost_intro", **targets()))
    per = visible.groupby(["corridor_from", "corridor_to", "operator"], as_index=False)[
        ["transfers", "cost_bps_sum", "paid", "paid_within_1h", "paid_within_1d"]].sum()
    cor = visible.groupby(["corridor_from", "corridor_to"], as_index=False)[["transfers", "cost_bps_sum"]].sum()
    cor["cost_bps"] = cor["cost_bps_sum"] / cor["transfers"].where(cor["transfers"] > 0)
    cor["corridor"] = [corridor_label(a, b) for a, b in zip(cor["corridor_from"], cor["corridor_to"], strict=True)]

    def band(bps: float) -> str:
        if bps != bps:  # NaN
            return t("overview.band_unknown")
        if bps <= SDG_TARGET_BPS:
            return t("overview.band_ok", **targets())
        if bps <= SDG_CEILING_BPS:
            return t("overview.band_mid", **targets())
        return t("overview.band_bad", **targets())

    cor["band"] = [band(x) for x in cor["cost_bps"]]
    cor["cost_pct"] = cor["cost_bps"] / 100
    spec = {
        "height": {"step": 30},
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {
                 "y": {"field": "corridor", "type": "nominal", "sort": "-x", "title": None},
                 "x": {"field": "cost_pct", "type": "quantitative", "title": t("overview.cost_axis")},
                 "color": {"field": "band", "type": "nominal", "title": None,
                           "scale": {"domain": [t("overview.band_ok", **targets()), t("overview.band_mid", **targets()),
                                                t("overview.band_bad", **targets())],
                                     "range": [GOOD, WARN, BAD]},
                           "legend": ui.LEGEND}}},
            {"mark": {"type": "rule", "strokeDash": [6, 4], "color": "#000000", "size": 2},
             "encoding": {"x": {"datum": SDG_TARGET_BPS / 100}}},
            {"mark": {"type": "rule", "color": BAD, "size": 2}, "encoding": {"x": {"datum": SDG_CEILING_BPS / 100}}},
        ],
    }
    per["cost_bps"] = per["cost_bps_sum"] / per["transfers"].where(per["transfers"] > 0)
    shown = pd.DataFrame({
        t("col.corridor"): [corridor_label(a, b) for a, b in zip(per["corridor_from"], per["corridor_to"], strict=True)],
        t("col.operator"): per["operator"],
        t("col.transfers"): [fmt_int(x) for x in per["transfers"]],
        t("col.avg_cost"): [fmt_bps(Fraction(int(s), int(n))) if n else "—"
                            for s, n in zip(per["cost_bps_sum"], per["transfers"], strict=True)],
        t("col.vs_target"): [band(x) for x in per["cost_bps"]],
    })
    raw = per[["corridor_from", "corridor_to", "operator", "transfers", "cost_bps_sum", "cost_bps"]]
    ui.chart_block(lambda: ui.vega(cor, spec, t("overview.cost_title")), shown, raw, "cost_per_corridor", "ov_cost",
                   caption=t("overview.cost_caption", **targets()))


def speed_section(visible: pd.DataFrame) -> None:
    st.subheader(t("overview.speed_title"))
    st.caption(t("overview.speed_intro", **targets()))
    cor = visible.groupby(["corridor_from", "corridor_to"], as_index=False)[
        ["paid", "paid_within_1h", "paid_within_1d"]].sum()
    cor = cor[cor["paid"] > 0]
    if not len(cor):
        st.info(t("overview.no_payouts"))
        return
    cor["corridor"] = [corridor_label(a, b) for a, b in zip(cor["corridor_from"], cor["corridor_to"], strict=True)]
    cor["share_1h"] = cor["paid_within_1h"] / cor["paid"]
    cor["share_1d"] = cor["paid_within_1d"] / cor["paid"]
    long = pd.concat([
        pd.DataFrame({"corridor": cor["corridor"], "measure": t("overview.within_1h"), "pct": cor["share_1h"] * 100}),
        pd.DataFrame({"corridor": cor["corridor"], "measure": t("overview.within_1d"), "pct": cor["share_1d"] * 100}),
    ])
    spec = {
        "height": {"step": 18},
        "layer": [
            {"mark": {"type": "bar", "tooltip": True},
             "encoding": {
                 "y": {"field": "corridor", "type": "nominal", "title": None},
                 "yOffset": {"field": "measure", "sort": [t("overview.within_1h"), t("overview.within_1d")]},
                 "x": {"field": "pct", "type": "quantitative", "title": t("overview.speed_axis"),
                       "scale": {"domain": [0, 100]}},
                 "color": {"field": "measure", "type": "nominal", "title": None,
                           "scale": {"domain": [t("overview.within_1h"), t("overview.within_1d")],
                                     "range": [OKABE_ITO[0], OKABE_ITO[1]]}, "legend": ui.LEGEND}}},
            {"mark": {"type": "rule", "strokeDash": [6, 4], "color": "#000000", "size": 2},
             "encoding": {"x": {"datum": float(G20_1H_TARGET * 100)}}},
        ],
    }
    shown = pd.DataFrame({
        t("col.corridor"): cor["corridor"],
        t("col.paid_transfers"): [fmt_int(x) for x in cor["paid"]],
        t("overview.within_1h"): [fmt_pct(Fraction(int(a), int(p))) for a, p in zip(cor["paid_within_1h"], cor["paid"],
                                                                                   strict=True)],
        t("overview.within_1d"): [fmt_pct(Fraction(int(a), int(p))) for a, p in zip(cor["paid_within_1d"], cor["paid"],
                                                                                   strict=True)],
        t("col.vs_target"): [t("overview.g20_met") if x >= G20_1H_TARGET else t("overview.g20_missed")
                             for x in cor["share_1h"]],
    })
    raw = cor[["corridor_from", "corridor_to", "paid", "paid_within_1h", "paid_within_1d", "share_1h", "share_1d"]]
    ui.chart_block(lambda: ui.vega(long, spec, t("overview.speed_title")), shown, raw, "payout_speed", "ov_speed",
                   caption=t("overview.speed_caption", **targets()))


def flows_section(visible: pd.DataFrame, d: dict[str, Any]) -> None:
    st.subheader(t("overview.flows_title"))
    st.caption(t("overview.flows_intro"))
    families, funds = t("overview.node_families"), t("overview.node_funds")
    colours: dict[str, str] = {families: GOOD, funds: WARN}
    if len(visible):
        edges: list[tuple[str, str, float, str]] = []
        rows = []
        g = visible.groupby(["corridor_from", "corridor_to", "operator"], as_index=False)[
            ["transfers", "to_projects"]].sum()
        for _, r in g.iterrows():
            cor = corridor_label(r["corridor_from"], r["corridor_to"])
            colours[cor] = NEUTRAL
            op = str(r["operator"])
            colours[op] = OKABE_ITO[4]
            n = int(r["transfers"])
            edges.append((cor, op, n, fmt_int(n)))
            rows.append((cor, op, n))
        ops = g.groupby("operator", as_index=False)[["transfers", "to_projects"]].sum()
        for _, r in ops.iterrows():
            fam = int(r["transfers"]) - int(r["to_projects"])
            if fam > 0:
                edges.append((str(r["operator"]), families, fam, fmt_int(fam)))
                rows.append((str(r["operator"]), families, fam))
            if int(r["to_projects"]) > 0:
                edges.append((str(r["operator"]), funds, int(r["to_projects"]), fmt_int(int(r["to_projects"]))))
                rows.append((str(r["operator"]), funds, int(r["to_projects"])))
        raw = pd.DataFrame(rows, columns=["from", "to", "transfers"])
        shown = pd.DataFrame({t("col.from"): raw["from"], t("col.to"): raw["to"],
                              t("col.transfers"): [fmt_int(x) for x in raw["transfers"]]})
        dot = flow_dot(edges, colours)
        ui.chart_block(lambda: st.graphviz_chart(dot, width="stretch"), shown, raw, "transfer_flows", "ov_flow_tr",
                       caption=t("overview.flows_caption"))
    else:
        st.info(t("overview.no_transfers", k=k))

    st.markdown(f"**{t('overview.gov_flows_title')}**")
    gov: pd.DataFrame = d["gov_flows"]
    clubs: pd.DataFrame = d["club_flows"]
    if not len(gov) and not len(clubs):
        st.info(t("overview.no_project_money"))
        return
    both = pd.concat([
        pd.DataFrame({"from": gov["party_id"], "level": gov["level"], "project_id": gov["project_id"],
                      "amount": gov["disbursed"], "currency": gov["currency"]}),
        pd.DataFrame({"from": clubs["club_id"], "level": "club", "project_id": clubs["project_id"],
                      "amount": clubs["amount"], "currency": clubs["currency"]}),
    ], ignore_index=True)
    currencies = list(both.groupby("currency")["amount"].sum().sort_values(ascending=False).index)
    ccy = currencies[0]
    if len(currencies) > 1:
        ccy = st.selectbox(t("common.currency"), currencies, key="ov_flow_ccy")
    sel = both[both["currency"] == ccy]
    colours2: dict[str, str] = {}
    edges2 = []
    for _, r in sel.iterrows():
        src = f"{t_code('level', r['level'])}: {r['from']}"
        colours2[src] = {"club": WARN, "federal": NEUTRAL, "state": OKABE_ITO[4], "municipal": OKABE_ITO[3]}.get(
            str(r["level"]), OKABE_ITO[4])
        colours2[str(r["project_id"])] = GOOD
        edges2.append((src, str(r["project_id"]), to_major_float(int(r["amount"]), ccy), fmt_money(int(r["amount"]), ccy)))
    shown = pd.DataFrame({
        t("col.from"): [f"{t_code('level', lv)}: {f}" for lv, f in zip(both["level"], both["from"], strict=True)],
        t("col.project"): both["project_id"],
        t("col.amount"): [fmt_money(int(a), c) for a, c in zip(both["amount"], both["currency"], strict=True)],
    })
    dot2 = flow_dot(edges2, colours2)
    ui.chart_block(lambda: st.graphviz_chart(dot2, width="stretch"), shown, both, "project_money_flows",
                   "ov_flow_gov", caption=t("overview.gov_flows_caption"))


def matched_section(levels: pd.DataFrame, projects: pd.DataFrame) -> None:
    st.subheader(t("overview.matched_title"))
    if not len(levels):
        st.info(t("overview.no_project_money"))
        return
    currencies = list(levels.groupby("currency")["owed"].sum().sort_values(ascending=False).index)
    ccy = currencies[0]
    if len(currencies) > 1:
        ccy = st.selectbox(t("common.currency"), currencies, key="ov_matched_ccy")
    lv = levels[levels["currency"] == ccy]
    long, spec = ui.owed_pledged_disbursed(lv, lambda x: t_code("level", x), ccy)
    shown = pd.DataFrame({
        t("col.level"): [t_code("level", x) for x in lv["level"]],
        t("col.projects"): [fmt_int(x) for x in lv["projects"]],
        t("col.owed"): [fmt_money(int(x), ccy) for x in lv["owed"]],
        t("col.pledged"): [fmt_money(int(x), ccy) for x in lv["pledged"]],
        t("col.disbursed"): [fmt_money(int(x), ccy) for x in lv["disbursed"]],
    })
    ui.chart_block(lambda: ui.vega(long, spec, t("overview.matched_title")), shown, levels, "matched_funds",
                   "ov_matched", caption=t("overview.matched_caption"))
    pr = projects[projects["currency"] == ccy]
    if len(pr):
        r = pr.iloc[0]
        st.caption(t("overview.club_line", n=int(r["projects"]), club=fmt_money(int(r["club_received"]), ccy),
                     spent=fmt_money(int(r["spent"]), ccy)))


live()
