"""Pieces every page uses: the data target, friendly errors, charts with a table and downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.i18n import current_locale, flag_help, flag_help_values, t, t_code, zone_label
from dashboard.style import OKABE_ITO
from schemas import l10n
from schemas.money import to_major_float
from schemas.times import format_time

__all__ = ["LEGEND", "PAGES", "chart_block", "downloads", "flag_explanations", "flag_text", "load", "show_db_error",
           "table", "target", "utc_frame", "vega"]

T = TypeVar("T")

#: Legends under a chart, one entry per line, so that none is cut off on a phone.
LEGEND: dict[str, Any] = {"orient": "bottom", "direction": "vertical", "labelLimit": 280}

#: Page files, relative to app.py (for st.page_link).
PAGES = {
    "overview": "views/overview.py",
    "track": "views/track.py",
    "projects": "views/projects.py",
    "watchdog": "views/watchdog.py",
    "publishers": "views/publishers.py",
    "audit": "views/audit.py",
}


def show_db_error() -> None:
    """One friendly message instead of a traceback (details stay in the server's log)."""
    st.error(t("error.db"), icon=":material/cloud_off:")
    st.caption(t("error.db_hint"))


def target() -> data.Target:
    try:
        return data.target()
    except data.DataUnavailable:
        show_db_error()
        st.stop()
        raise  # unreachable: st.stop raises


def load(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Call a data function; on a database problem show the message and stop the page."""
    try:
        return fn(*args, **kw)
    except data.DataUnavailable:
        show_db_error()
        st.stop()
        raise


def flag_text(code: Any) -> str:
    """The plain-words explanation of a flag type, with this deployment's thresholds ("" if none)."""
    return flag_help(str(code) if code else None, flag_help_values(target().settings))


def flag_explanations(types: Iterable[Any], key: str) -> None:
    """An expander explaining each flag type listed on the page (in order of first appearance)."""
    shown = [str(x) for x in dict.fromkeys(types) if x and flag_text(x)]
    if not shown:
        return
    with st.expander(t("common.flag_help_title"), icon=":material/help:", key=key):
        for code in shown:
            st.markdown(f"**{t_code('flag', code)}**  \n{flag_text(code)}")


def _utc_cell(x: Any) -> Any:
    if isinstance(x, datetime):  # pandas Timestamps, and NaT (a datetime for isinstance)
        if pd.isna(x):
            return None
        return format_time(x if x.utcoffset() is not None else x.replace(tzinfo=UTC))
    if isinstance(x, date):
        return x.isoformat()
    return x


def utc_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every date and time as RFC 3339 text in UTC (``2025-05-01T20:05:00Z``).

    Downloads are for machines and for people in other zones: they carry UTC,
    whatever zone the database session or the visitor's browser is in.
    """
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series) or (
                series.dtype == object and any(isinstance(x, date) for x in series)):
            out[col] = [_utc_cell(x) for x in series]
    return out


def _csv(df: pd.DataFrame) -> bytes:
    return str(utc_frame(df).to_csv(index=False)).encode("utf-8")


def _json(df: pd.DataFrame) -> bytes:
    return str(utc_frame(df).to_json(orient="records", force_ascii=False, indent=1)).encode("utf-8")


def downloads(df: pd.DataFrame, name: str, key: str) -> None:
    """CSV and JSON of the raw numbers (amounts in minor units, with their currency)."""
    st.download_button(
        t("common.download_csv"), _csv(df), file_name=f"{name}.csv", mime="text/csv",
        key=f"{key}_csv", on_click="ignore", icon=":material/download:",
    )
    st.download_button(
        t("common.download_json"), _json(df), file_name=f"{name}.json", mime="application/json",
        key=f"{key}_json", on_click="ignore", icon=":material/download:",
    )


def table(df: pd.DataFrame, times: Sequence[str] = (), **kw: Any) -> None:
    """A table; the ``times`` columns (shown in the visitor's zone) say which zone in their help."""
    if times:
        help_text = t("common.times_help", zone=zone_label())
        config = dict(kw.pop("column_config", None) or {})
        for col in times:
            config.setdefault(col, st.column_config.TextColumn(help=help_text))
        kw["column_config"] = config
    st.dataframe(df, hide_index=True, width="stretch", **kw)


def chart_block(draw: Callable[[], object], shown: pd.DataFrame, raw: pd.DataFrame, name: str, key: str,
                caption: str | None = None) -> None:
    """A chart, then the same numbers as a table (expander) and as CSV / JSON downloads."""
    draw()
    if caption:
        st.caption(caption)
    with st.expander(t("common.table_alternative")):
        table(shown)
        downloads(raw, name, key)


def vega(df: pd.DataFrame, spec: dict[str, Any], alt: str) -> None:
    """A Vega-Lite chart whose axes and tooltips write numbers the visitor's way (d3's number locale)."""
    config = dict(spec.get("config") or {})
    config.setdefault("locale", {"number": l10n.d3_number_locale(current_locale())})
    st.vega_lite_chart(df, {**spec, "config": config}, width="stretch", alt=alt)


def owed_pledged_disbursed(rows: pd.DataFrame, label: Callable[[Any], str], currency: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Long data and a Vega-Lite spec of owed / pledged / disbursed bars per party level.

    ``rows`` has ``level``, ``owed``, ``pledged`` and ``disbursed`` (integer minor
    units of ``currency``); ``label`` names a level.  The overview (per level, all
    projects) and a project's page (its parties) draw the same chart.
    """
    measures = ("owed", "pledged", "disbursed")
    long = pd.DataFrame([
        {"level": label(r["level"]), "measure": t(f"col.{m}"), "amount": to_major_float(int(r[m]), currency)}
        for _, r in rows.iterrows() for m in measures
    ])
    order = [t(f"col.{m}") for m in measures]
    spec = {
        "height": {"step": 16},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "level", "type": "nominal", "title": None},
            "yOffset": {"field": "measure", "sort": order},
            "x": {"field": "amount", "type": "quantitative", "title": t("overview.amount_axis", code=currency)},
            "color": {"field": "measure", "type": "nominal", "title": None,
                      "scale": {"domain": order, "range": [OKABE_ITO[7], OKABE_ITO[1], OKABE_ITO[2]]},
                      "legend": LEGEND},
        },
    }
    return long, spec

