"""The dashboard's pages: Streamlit scripts run by ``st.navigation`` (a package so the import contracts see them)."""
