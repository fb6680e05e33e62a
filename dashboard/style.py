"""A little CSS for phones (360 px wide) and a colour-blind-safe palette.

Touch targets are at least 44 px high (WCAG 2.2 asks for 24 px), text does
not overflow narrow screens, and charts use the Okabe-Ito palette, which
stays distinguishable with every common colour-vision deficiency.
"""

from __future__ import annotations

from typing import Final

import streamlit as st

__all__ = ["OKABE_ITO", "GOOD", "WARN", "BAD", "NEUTRAL", "inject"]

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO: Final[tuple[str, ...]] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
GOOD: Final = "#009E73"
WARN: Final = "#E69F00"
BAD: Final = "#D55E00"
NEUTRAL: Final = "#0072B2"

_CSS: Final = """
<style>
/* touch targets: at least 44 px (WCAG 2.5.8 minimum is 24 px) */
.stButton button, .stDownloadButton button, .stFormSubmitButton button,
.stLinkButton a, [data-testid="stPageLink"] a, [data-baseweb="select"] > div,
.stTextInput input, .stNumberInput input {
  min-height: 44px;
}
[data-testid="stPageLink"] a, [data-testid="stSidebarNav"] a { padding-top: 6px; padding-bottom: 6px; }
[data-testid="stExpander"] summary { min-height: 44px; }
/* long ids and hashes wrap instead of widening the page */
code, .stCode, .stMarkdown p { overflow-wrap: anywhere; word-break: break-word; }
/* a flag's facts under its explanation (track page) */
.cc-flag-facts { font-size: 0.9rem; opacity: 0.8; margin: 0; }
/* phones: use the whole width, stack columns */
@media (max-width: 640px) {
  .block-container, [data-testid="stMainBlockContainer"] { padding-left: 0.75rem; padding-right: 0.75rem; padding-top: 2.5rem; }
  [data-testid="stHorizontalBlock"] { flex-wrap: wrap; gap: 0.5rem; }
  [data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { min-width: 100% !important; }
  h1 { font-size: 1.6rem; }
  [data-testid="stMetricValue"] { font-size: 1.4rem; }
}
</style>
"""


def inject() -> None:
    st.html(_CSS)
