"""Cuentas Claras public dashboard: ``streamlit run dashboard/app.py``.

A multipage app (``st.navigation``); every page is a script in
``dashboard/views`` with its own address (``/overview``, ``/track``...).  This
entry point only sets the page, the language and the style, then runs the
page the visitor chose.  The root address ``/`` leads to ``/overview``, so
that every page, the first one too, has one address to share.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # `streamlit run dashboard/app.py` without an installed package
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard import i18n, style  # noqa: E402
from dashboard.i18n import t  # noqa: E402

st.set_page_config(page_title="Cuentas Claras", page_icon=":material/receipt_long:", layout="wide")
i18n.setup()
style.inject()

overview = st.Page("views/overview.py", title=t("nav.overview"), icon=":material/insights:", url_path="overview")


def home() -> None:
    """``/``: the overview, at its own address (query parameters such as ``lang`` kept)."""
    st.switch_page(overview, query_params=st.query_params.to_dict())


pages = [
    # Streamlit serves its default page at "/" and not at its url_path; a hidden
    # default page that forwards makes "/overview" an address like any other.
    st.Page(home, title=t("nav.overview"), url_path="home", default=True, visibility="hidden"),
    overview,
    st.Page("views/track.py", title=t("nav.track"), icon=":material/receipt_long:", url_path="track"),
    st.Page("views/projects.py", title=t("nav.projects"), icon=":material/handshake:", url_path="projects"),
    st.Page("views/watchdog.py", title=t("nav.watchdog"), icon=":material/policy:", url_path="watchdog"),
    st.Page("views/publishers.py", title=t("nav.publishers"), icon=":material/campaign:", url_path="publishers"),
    st.Page("views/audit.py", title=t("nav.audit"), icon=":material/verified:", url_path="audit"),
]
page = st.navigation(pages)
st.sidebar.caption(t("app.privacy_note"))
page.run()
