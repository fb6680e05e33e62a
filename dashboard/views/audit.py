"""Audit log: checkpoints and witnesses, consistency between checkpoints, inclusion proofs.

Every proof on this page is computed from the hash tiles and checked with
the pure core (schemas.merkle) against checkpoints whose log signature was
verified first.  The body of a transfer event is never shown (it carries
sender and beneficiary pseudonyms): only its hash and proof.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import data, proofs, ui
from dashboard.i18n import fmt_datetime, fmt_int, t, t_code
from schemas.errors import CuentasError
from schemas.note import open_checkpoint

tg = ui.target()
log_key = proofs.log_verifier(tg.settings)
st.title(t("audit.title"))
st.caption(t("audit.intro"))

cps = ui.load(data.checkpoints, tg.reader_url, tg.schema)
history: pd.DataFrame = cps["history"]

# --- latest checkpoint ------------------------------------------------------------------------------
st.subheader(t("audit.latest_title"))
st.caption(t("audit.log_size", n=int(cps["log_size"])))
if not cps["latest_note"]:
    st.info(t("audit.no_checkpoint"), icon=":material/hourglass_top:")
else:
    st.code(cps["latest_note"], language=None, wrap_lines=True)
    if log_key is None:
        st.warning(t("audit.no_log_key"), icon=":material/key_off:")
    else:
        try:
            cp, _ = open_checkpoint(cps["latest_note"], log_key)
            st.success(t("audit.signature_ok", size=fmt_int(cp.size)), icon=":material/verified:")
        except CuentasError as e:
            st.error(t("audit.signature_bad", reason=getattr(e, "reason", "?")), icon=":material/gpp_bad:")
        st.markdown(t("audit.log_key"))
        st.code(str(log_key), language=None, wrap_lines=True)
    cos: pd.DataFrame = cps["cosignatures"]
    st.markdown(f"**{t('audit.witnesses')}**")
    if not len(cos):
        st.warning(t("audit.no_witness"), icon=":material/pending:")
    else:
        ui.table(pd.DataFrame({
            t("col.witness"): cos["witness"],
            t("col.key_id"): cos["key_id"],
            t("col.cosigned"): [fmt_datetime(pd.Timestamp(int(x), unit="s", tz="UTC")) for x in cos["cosigned_at"]],
        }), times=[t("col.cosigned")])

# --- history ---------------------------------------------------------------------------------------
st.subheader(t("audit.history_title"))
if len(history):
    ui.table(pd.DataFrame({
        t("col.size"): [fmt_int(x) for x in history["size"]],
        t("col.root"): history["root"],
        t("col.when"): [fmt_datetime(x) for x in history["created_at"]],
        t("col.cosignatures"): [fmt_int(x) for x in history["cosignatures"]],
    }), times=[t("col.when")])
    ui.downloads(history, "checkpoints", "au_hist")
else:
    st.caption(t("audit.no_checkpoint"))

# --- consistency -------------------------------------------------------------------------------------
st.subheader(t("audit.consistency_title"))
st.caption(t("audit.consistency_intro"))
sizes = [int(x) for x in history["size"]] if len(history) else []
with st.form("consistency"):
    s1 = st.number_input(t("audit.size_old"), min_value=0, max_value=2**53 - 1, step=1,
                         value=sizes[1] if len(sizes) > 1 else (sizes[0] if sizes else 0), key="au_s1")
    s2 = st.number_input(t("audit.size_new"), min_value=0, max_value=2**53 - 1, step=1,
                         value=sizes[0] if sizes else 0, key="au_s2")
    go = st.form_submit_button(t("audit.check"), type="primary")
if go:
    res = ui.load(proofs.check_consistency, tg.reader_url, tg.schema, int(s1), int(s2), log_key)
    if res.ok:
        st.success(t("audit.consistent", a=res.size1, b=res.size2, n=len(res.proof)),
                   icon=":material/verified:")
        with st.expander(t("audit.proof_hashes")):
            st.code("\n".join(res.proof) or "—", language=None, wrap_lines=True)
    elif res.error in ("bad_size", "size_order", "no_checkpoint", "no_key"):
        st.warning(t(f"audit.cons_{res.error}"), icon=":material/edit:")
    else:
        st.error(t("audit.inconsistent", reason=res.error or "?"), icon=":material/gpp_bad:")

# --- inclusion ---------------------------------------------------------------------------------------
st.subheader(t("audit.inclusion_title"))
st.caption(t("audit.inclusion_intro"))
if "au_event" not in st.session_state:
    qp = st.query_params.get("event")
    st.session_state["au_event"] = str(qp)[:64] if qp else ""
event_text = st.text_input(t("audit.event_id"), key="au_event", max_chars=64,
                           placeholder="abcdefghijklmnopqrstuvwxyz")
if event_text.strip():
    eid = event_text.strip().lower()
    if not data.EVENT_ID_RE.match(eid):
        st.warning(t("audit.bad_event_id"), icon=":material/edit:")
    else:
        chk = ui.load(proofs.check_receipt, tg.reader_url, tg.schema, eid, log_key,
                proofs.witness_policy(tg.settings))
        if chk.state == "not_in_log":
            st.warning(t("audit.event_unknown"), icon=":material/search_off:")
        elif chk.state == "no_checkpoint":
            st.warning(t("audit.event_pending", index=fmt_int(chk.leaf_index)), icon=":material/hourglass_top:")
        elif chk.state == "failed":
            st.error(t("audit.event_failed", reason=chk.error or "?"), icon=":material/gpp_bad:")
        else:
            msg = t("audit.event_included", index=fmt_int(chk.leaf_index), size=fmt_int(chk.tree_size),
                    type=t_code("etype", chk.event_type), publisher=chk.publisher_id or "—",
                    when=fmt_datetime(chk.event_time))
            if chk.state == "verified":
                st.success(msg + " " + t("audit.witnessed", n=chk.witnesses), icon=":material/verified:")
            elif chk.state == "unwitnessed":
                st.warning(msg + " " + t("audit.not_witnessed"), icon=":material/pending:")
            else:
                st.warning(msg + " " + t("audit.no_log_key"), icon=":material/key_off:")
            with st.expander(t("audit.proof_hashes")):
                st.markdown(t("audit.leaf_hash", h=chk.leaf_hash or "—"))
                st.code("\n".join(chk.proof) or "—", language=None, wrap_lines=True)
            private = str(chk.event_type or "").startswith("transfer.")
            if private or not chk.receipt_json:
                st.download_button(t("audit.download_proof"), proofs.proof_document(chk, eid).encode("utf-8"),
                                   file_name=f"proof-{eid}.json", mime="application/json", on_click="ignore",
                                   icon=":material/download:", key="au_proof_dl")
                if private:
                    st.caption(t("audit.transfer_private"))
            else:
                st.download_button(t("audit.download_receipt"), chk.receipt_json.encode("utf-8"),
                                   file_name=f"receipt-{eid}.json", mime="application/json", on_click="ignore",
                                   icon=":material/download:", key="au_receipt_dl")

# --- verify it yourself -------------------------------------------------------------------------------
# The same keys `cuentas log keys --json` prints, then the three steps of README's "Verify it yourself".
keys = proofs.trusted_keys(tg.settings)
st.subheader(t("audit.offline_title"))
st.markdown(t("audit.offline_intro"))
st.markdown(t("audit.guide_keys"))
st.code(json.dumps(keys.as_dict(), indent=2), language="json", wrap_lines=True)
if keys.log is None:
    st.warning(t("audit.no_log_key"), icon=":material/key_off:")
if not keys.witnesses:
    st.caption(t("audit.no_witness_keys"))
st.markdown(t("audit.guide_receipt"))
st.code("cuentas receipt --code CC-XXXX-XXXX-XXXX-XXXX > receipt.json", language="bash", wrap_lines=True)
st.markdown(t("audit.guide_verify"))
st.code(proofs.verify_command(keys), language="bash", wrap_lines=True)
st.caption(t("audit.guide_result"))
st.markdown(t("audit.offline_export"))
st.code("cuentas log export --cosigned mirror/\n" + proofs.verify_command(keys, "--export mirror/"),
        language="bash", wrap_lines=True)
