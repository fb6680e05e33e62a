"""The light receipt check page (issue 18): one static HTML file, a few KB, written by the platform.

``build_page`` returns the files to put at the root of a static site, beside
``receipts/`` (the documents, :mod:`schemas.receipt_doc`), ``tile/`` and
``checkpoint``:

* ``index.html``: the page, with its CSS and JavaScript inline (one request on
  a cold 3G connection instead of three), the Spanish words pre-rendered,
  and a configuration block holding what a verifier must trust: the log's
  verifier key, the trusted witnesses' keys and how many must have cosigned
  (the same :class:`schemas.witness_policy.WitnessPolicy` default: all of
  them).  The keys come with the page, never from where the documents come
  from at lookup time.  A Content-Security-Policy with the hashes of the
  inline script and style allows nothing else to run.
* ``i18n/<lang>.json``: the words of each language, extracted from the
  dashboard's catalogues (``dashboard/locales/*.json``: the same words,
  plural variants by CLDR category, chosen in the browser with
  ``Intl.PluralRules``).
* Each flag about a transfer comes with its explanation (``flag_help.<type>``,
  issue 15), its numbers (tolerance, grace period, refund period...) filled in
  the browser from ``th`` in the configuration block: the thresholds the
  platform runs with, written into the page as the catalogues' placeholders need.
  Only the transfer's flag types: about 1.2 KB compressed in Spanish.
* ``vendor/noble-ed25519.js`` and its licence: loaded only by a browser
  whose WebCrypto has no Ed25519.

The catalogues are read as data files from the dashboard's folder (no import
of the dashboard: the rooms stay independent).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from schemas.errors import ConfigurationError
from schemas.keys import ALG_COSIGNATURE_V1, ALG_ED25519, VerifierKey
from schemas.l10n import LANG_DEFAULT_LOCALES
from schemas.money import ISO_4217_MINOR_UNITS, display_exponent
from schemas.thresholds import DEFAULT_THRESHOLDS, SDG_CEILING_BPS, SDG_TARGET_BPS

__all__ = [
    "ASSETS",
    "CATALOGUES",
    "DEFAULT_HELP_NUMBERS",
    "TRANSFER_FLAG_TYPES",
    "LANGS",
    "PAGE_FILES",
    "page_keys",
    "load_catalogues",
    "build_page",
    "write_files",
]

ASSETS: Final = Path(__file__).resolve().parent
#: The dashboard's catalogues: the page uses the same words.
CATALOGUES: Final = ASSETS.parents[1] / "dashboard" / "locales"
LANGS: Final = ("es", "en", "fr", "pt")
_NATIVE: Final = {"es": "Español", "en": "English", "fr": "Français", "pt": "Português"}
#: Files of the page (besides ``i18n/<lang>.json``), relative to the site's root.
PAGE_FILES: Final = ("index.html", "vendor/noble-ed25519.js", "vendor/noble-ed25519.LICENSE")
# Whole groups of codes the page names (statuses, flag types); every other key is listed in page.js.
_GROUPS: Final = ("transfer_status.", "flag.", "flag_status.")
#: The flag types a transfer's receipt can show (stream_processors/rules/README.md: the
#: Transfers table, and authority_violation about a transfer): their explanations go with the page.
TRANSFER_FLAG_TYPES: Final = ("short_payout", "payout_currency_mismatch", "paid_twice", "cost_above_disclosed",
                              "cost_above_ceiling", "late_payout", "missing_payout", "wrong_beneficiary",
                              "refund_late", "refund_missing", "refund_short", "authority_violation")
#: The numbers those explanations name (placeholders of ``flag_help.*``), by default the rules'
#: defaults; ``infra.receipt_docs`` passes the configured ones.
DEFAULT_HELP_NUMBERS: Final = {
    "tolerance_bps": DEFAULT_THRESHOLDS.payout_tolerance_bps,
    "ceiling_bps": DEFAULT_THRESHOLDS.corridor_cost_ceiling_bps,
    "cost_slack_bps": DEFAULT_THRESHOLDS.cost_disclosure_tolerance_bps,
    "grace_hours": DEFAULT_THRESHOLDS.payout_grace.total_seconds() / 3600,
    "window_minutes": DEFAULT_THRESHOLDS.cancellation_window.total_seconds() / 60,
    "refund_days": DEFAULT_THRESHOLDS.refund_period_business_days,
}
# Every quoted key of these groups in page.js (t('track.sent'), or a key chosen by a condition).
_KEY_RE: Final = re.compile(r"""'((?:track|check|col|common)\.[a-z0-9_]+)'""")


def page_keys(script: str | None = None) -> set[str]:
    """The catalogue keys the page's script names (``'track.sent'``...)."""
    text = (ASSETS / "page.js").read_text(encoding="utf-8") if script is None else script
    return set(_KEY_RE.findall(text))


def load_catalogues(folder: Path = CATALOGUES) -> dict[str, dict[str, Any]]:
    """``{lang: {key: str or plural variants}}`` from ``<folder>/<lang>.json``."""
    out = {}
    for lang in LANGS:
        try:
            out[lang] = json.loads((folder / f"{lang}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigurationError(f"cannot read the catalogue {folder / lang}.json: {e}") from e
    return out


def _strings(catalogue: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in sorted(catalogue.items()) if k in keys or k.startswith(_GROUPS)}


def _json_in_html(obj: object) -> str:
    # Inside <script type="application/json">: "<" escaped so nothing can close the element.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).replace("<", "\\u003c")


def _sha256_b64(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def build_page(
    log_key: VerifierKey,
    witness_keys: Sequence[VerifierKey],
    min_witnesses: int | None = None,
    catalogues: Mapping[str, Mapping[str, Any]] | None = None,
    help_numbers: Mapping[str, float] | None = None,
) -> dict[str, bytes]:
    """The page's files ``{relative path: bytes}`` for this log and these witnesses."""
    if log_key.alg != ALG_ED25519 or any(w.alg != ALG_COSIGNATURE_V1 for w in witness_keys):
        raise ConfigurationError("the page needs the log's Ed25519 key and witnesses' cosignature keys")
    witnesses = list(dict.fromkeys(witness_keys))
    need = len(witnesses) if min_witnesses is None else min_witnesses
    if not 0 <= need <= len(witnesses):
        raise ConfigurationError(f"cannot require {need} cosignatures of {len(witnesses)} witness(es)")
    cats = load_catalogues() if catalogues is None else catalogues
    script = (ASSETS / "page.js").read_text(encoding="utf-8")
    style = (ASSETS / "page.css").read_text(encoding="utf-8")
    keys = page_keys(script) | {"track.title", "track.intro", "track.code_label", "track.code_help",
                                "track.submit", "track.enter_code"} | {f"flag_help.{x}" for x in TRANSFER_FLAG_TYPES}
    strings = {lang: _strings(cats[lang], keys) for lang in LANGS}
    missing = sorted(k for k in keys if k not in strings["es"])
    if missing:
        raise ConfigurationError(f"the catalogues have no {', '.join(missing)}")
    config = {
        "log": str(log_key),
        "witnesses": [str(w) for w in witnesses],
        "min_witnesses": need,
        "langs": list(LANGS),
        "locales": {lang: LANG_DEFAULT_LOCALES[lang].replace("_", "-") for lang in LANGS},
        # ISO 4217 exponents other than 2: amounts are integer minor units (schemas/money.py).
        "exponents": {c: display_exponent(c) for c in sorted(ISO_4217_MINOR_UNITS) if display_exponent(c) != 2},
        "sdg": {"target": SDG_TARGET_BPS, "ceiling": SDG_CEILING_BPS},
        # whole numbers as integers (72.0 hours -> 72): the page prints integers the locale's way
        "th": {k: int(v) if float(v).is_integer() else v
               for k, v in {**DEFAULT_HELP_NUMBERS, **(help_numbers or {})}.items()},
        "strings": strings["es"],
    }
    csp = (f"default-src 'none'; script-src 'self' 'sha256-{_sha256_b64(script)}'; "
           f"style-src 'sha256-{_sha256_b64(style)}'; connect-src 'self'; img-src 'self' data:; "
           "base-uri 'none'; form-action 'self'")
    langs = " ".join(f'<a href="?lang={lang}" hreflang="{lang}" lang="{lang}">{_NATIVE[lang]}</a>' for lang in LANGS)

    def word(m: re.Match[str]) -> str:
        return html.escape(str(strings["es"][m.group(1)]))

    page = (ASSETS / "page.html").read_text(encoding="utf-8")
    page = re.sub(r"\{\{t:([a-z0-9_.]+)\}\}", word, page)
    for name, value in (("csp", html.escape(csp, quote=False)), ("style", style), ("langs", langs),
                        ("config", _json_in_html(config)), ("script", script)):
        page = page.replace("{{" + name + "}}", value)
    files = {"index.html": page.encode("utf-8")}
    for lang in LANGS:
        files[f"i18n/{lang}.json"] = _json_in_html(strings[lang]).encode("utf-8")
    for rel in PAGE_FILES[1:]:
        files[rel] = (ASSETS / rel).read_bytes()
    return files


def write_files(root: Path, files: Mapping[str, bytes]) -> int:
    """Write ``files`` under ``root``, each atomically (temporary file, then rename); unchanged ones are left alone."""
    n = 0
    for rel, data in files.items():
        p = root / rel
        try:
            if p.read_bytes() == data:
                continue
        except OSError:
            pass
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)  # a public site
        os.replace(tmp, p)
        n += 1
    return n
