"""The light receipt check page (issue 18) in headless Chromium, in Spanish on a 360 px phone.

Fast path: no platform.  A small log is built with the pure core
(:mod:`tests.receipt_site`), its receipt documents and the page are written
to a folder and served by the platform's static server
(:mod:`infra.static_server`) from a thread.  The page verifies a valid code,
refuses tampered documents, proofs and checkpoints, tells an unknown code
so, and normalizes codes exactly as :mod:`schemas.privacy` does.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.static_server import serve
from schemas.note import parse_note
from schemas.privacy import normalize_receipt_code, receipt_code, receipt_digest
from tests.receipt_site import Site, build_site, tamper_leaf

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
ES = json.loads((ROOT / "dashboard" / "locales" / "es.json").read_text(encoding="utf-8"))
PHONE = {"viewport": {"width": 360, "height": 780}, "locale": "es-MX", "timezone_id": "America/Mexico_City"}
DONE = "[data-testid='receipt-verified'], [data-testid='receipt-not-verified'], [data-testid='receipt-not-found']"


@pytest.fixture(scope="module")
def site() -> Site:
    return build_site()


def _serve(root: Path) -> Iterator[str]:
    server, _ = serve(root)
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def url(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(site.write(tmp_path_factory.mktemp("receipt-site")))


def open_check(browser: Any, url: str, *, context: dict[str, Any] | None = None, init: str | None = None):
    ctx = browser.new_context(**(context or PHONE))
    if init:
        ctx.add_init_script(init)
    page = ctx.new_page()
    page.on("close", lambda _: ctx.close())
    page.goto(url, wait_until="domcontentloaded")
    return page


def outcome(page: Any) -> tuple[str, str]:
    el = page.wait_for_selector(DONE, timeout=20_000)
    return str(el.get_attribute("data-testid")), el.inner_text()


def test_a_valid_code_typed_on_a_phone_is_verified_in_spanish(browser, site, url) -> None:
    code, _ = site.docs["tr-site-1"]
    page = open_check(browser, url)
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    try:
        assert page.locator("h1").inner_text() == ES["track.title"]
        # typed as a person might: lower case, spaces, an O for a 0
        page.fill("#code", code.lower().replace("-", " ").replace("0", "o"))
        page.get_by_role("button", name=ES["track.submit"]).click()
        testid, text = outcome(page)
        assert testid == "receipt-verified", text
        assert text.startswith("Verificado:") and "1 testigo independiente firmó" in text
        body = page.inner_text("main")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "receipt-check-verified-es-360.png"), full_page=True)
        # status, amounts, open discrepancies: derived from the verified events
        assert "Estado: Pagado" in body
        assert ES["track.has_flags"]["one"].format(n=1) in body
        for amount in ("USD\u00a0200.00", "USD\u00a04.99", "MXN\u00a03,400.00", "MXN\u00a03,100.00"):
            assert amount in body, amount
        lines = page.locator("ul.timeline li").all_inner_texts()
        assert len(lines) == 4, lines  # sent, promised by, paid, the discrepancy
        for i, line in enumerate(lines):
            assert re.match(r"\d{1,2} \w+ \d{4}, \d{1,2}:\d\d\s[ap]\.\s?m\. hora estándar central — \S", line), line
            title = page.locator("ul.timeline li time").nth(i).get_attribute("title") or ""
            assert re.fullmatch(r"En UTC: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", title), title
        assert "MXN\u00a0300.00 menos de lo prometido" in lines[2]
        assert ES["flag.short_payout"] in lines[3] and ES["flag_status.open"] in lines[3]
        # each flag with its explanation under it (issue 15), its numbers filled in
        flags = page.locator("ul.flags li").all_inner_texts()
        explained = [f for f in flags if ES["flag_help.short_payout"].split("{")[0] in f]
        assert len(explained) == 1 and "{" not in explained[0], flags
        assert page.locator("ul.flags li p.help").count() == len(flags)
        assert "no cumplido" in lines[1]
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        # the URL now carries the code, so the page can be shared or reloaded, and so do the languages
        assert "code=" in page.url
        assert page.locator("#langs a[hreflang=en]").get_attribute("href").endswith(f"/?lang=en&code={code}")
        assert sum(sizes) < 100_000, sizes
        # nobody's pseudonym on the page
        assert "snd_" not in page.content() and "ben_" not in page.content()
    finally:
        page.close()


def test_a_code_in_the_url_is_checked_at_once(browser, site, url) -> None:
    code, _ = site.docs["tr-site-2"]
    page = open_check(browser, f"{url}?code={code}")
    try:
        testid, _ = outcome(page)
        assert testid == "receipt-verified"
        body = page.inner_text("main")
        assert ES["track.paid_ok"] in body and ES["track.flags_title"] not in body
        assert page.locator("[data-testid='receipt-open-flags']").count() == 0
        assert ES["track.paid_full"] in body and ES["track.promise_met"] in body
    finally:
        page.close()


@pytest.mark.parametrize("lang", ["en", "fr", "pt"])
def test_other_languages_from_the_same_catalogues(browser, site, url, lang) -> None:
    words = json.loads((ROOT / "dashboard" / "locales" / f"{lang}.json").read_text(encoding="utf-8"))
    code, _ = site.docs["tr-site-3"]
    page = open_check(browser, f"{url}?lang={lang}&code={code}")
    try:
        testid, text = outcome(page)
        assert testid == "receipt-verified"
        assert text.startswith(words["track.verified"]["one"].split("{")[0])
        assert page.locator("h1").inner_text() == words["track.title"]
        assert page.evaluate("document.documentElement.lang") == lang
        assert words["track.waiting_payout"] in page.inner_text("main")
    finally:
        page.close()


def test_an_unknown_code_is_told_so(browser, url) -> None:
    page = open_check(browser, f"{url}?code={receipt_code(b'another-operator-secret-0123', 'tr-x')}")
    try:
        testid, text = outcome(page)
        assert testid == "receipt-not-found"
        assert ES["track.not_found"] in text and ES["track.not_found_hint"] in text
    finally:
        page.close()


def test_a_malformed_code_is_told_so(browser, url) -> None:
    page = open_check(browser, f"{url}?code=hola")
    try:
        assert page.wait_for_selector("[data-testid='receipt-bad-code']").inner_text() == ES["track.bad_code"]
    finally:
        page.close()


def _without_cosignature(site: Site, n: int) -> tuple[str, bytes]:
    code, doc = site.docs[f"tr-site-{n}"]
    obj = json.loads(doc.to_bytes())
    note = parse_note(obj["checkpoint"])
    obj["checkpoint"] = note.text + "\n" + note.signatures[0].line() + "\n"
    return code, json.dumps(obj).encode()


def _proof_hash_changed(site: Site, n: int) -> tuple[str, bytes]:
    code, doc = site.docs[f"tr-site-{n}"]
    obj = json.loads(doc.to_bytes())
    h = bytearray(base64.b64decode(obj["events"][-1]["inclusion_proof"][1]))
    h[31] ^= 0x80
    obj["events"][-1]["inclusion_proof"][1] = base64.b64encode(bytes(h)).decode()
    return code, json.dumps(obj).encode()


def _amount_changed(site: Site, n: int) -> tuple[str, bytes]:
    code, doc = site.docs[f"tr-site-{n}"]
    return code, tamper_leaf(doc, 1, b'"amount":310000', b'"amount":340000')  # the short payout made whole


def _log_signature_changed(site: Site, n: int) -> tuple[str, bytes]:
    code, doc = site.docs[f"tr-site-{n}"]
    obj = json.loads(doc.to_bytes())
    obj["checkpoint"] = obj["checkpoint"].replace("\n9\n", "\n8\n", 1)  # another tree size, same signatures
    return code, json.dumps(obj).encode()


def _other_transfer(site: Site, n: int) -> tuple[str, bytes]:
    code, _ = site.docs[f"tr-site-{n}"]
    _, other = site.docs["tr-site-2"]
    obj = json.loads(other.to_bytes())
    obj["receipt_digest"] = receipt_digest(code)  # a valid document of another transfer, under this code
    return code, json.dumps(obj).encode()


TAMPERED = {
    "amount": (_amount_changed, "inclusion proof does not match"),
    "proof hash": (_proof_hash_changed, "inclusion proof does not match"),
    "checkpoint without its cosignature": (_without_cosignature, "0 of 1 trusted witnesses cosigned, 1 required"),
    "checkpoint size": (_log_signature_changed, "the log's signature on the checkpoint does not verify"),
    "another transfer's document": (_other_transfer, "receipt digest is not this code's"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_document_is_not_verified(browser, site, tmp_path, case) -> None:
    make, reason = TAMPERED[case]
    code, data = make(site, 1)
    root = site.write(tmp_path)
    (root / "receipts" / receipt_digest(code)[:2] / f"{receipt_digest(code)}.json").write_bytes(data)
    for url in _serve(root):
        page = open_check(browser, f"{url}?code={code}")
        try:
            testid, text = outcome(page)
            assert testid == "receipt-not-verified", text
            assert text.startswith(ES["track.verify_failed"].split("(")[0]) and reason in text, text
            # nothing of the transfer is shown as if it were verified
            assert "Estado:" not in page.inner_text("main")
            if case == "amount":
                page.screenshot(path=str(ARTIFACTS / "receipt-check-tampered-es-360.png"), full_page=True)
        finally:
            page.close()


NO_WEBCRYPTO_ED25519 = """
const importKey = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, key, alg, ...rest) =>
  (alg && (alg === 'Ed25519' || alg.name === 'Ed25519'))
    ? Promise.reject(new DOMException('Ed25519 is not supported', 'NotSupportedError'))
    : importKey(format, key, alg, ...rest);
"""


def test_without_webcrypto_ed25519_the_vendored_library_verifies(browser, site, url, tmp_path) -> None:
    code, _ = site.docs["tr-site-1"]
    page = open_check(browser, "about:blank", init=NO_WEBCRYPTO_ED25519)
    loaded: list[str] = []
    page.on("request", lambda r: loaded.append(r.url))
    try:
        page.goto(f"{url}?code={code}")
        testid, _ = outcome(page)
        assert testid == "receipt-verified"
        assert any(u.endswith("/vendor/noble-ed25519.js") for u in loaded), loaded
    finally:
        page.close()
    # and it refuses what WebCrypto refuses
    code, data = _without_cosignature(site, 1)
    root = site.write(tmp_path)
    (root / "receipts" / receipt_digest(code)[:2] / f"{receipt_digest(code)}.json").write_bytes(data)
    obj = json.loads(data)
    note = parse_note(obj["checkpoint"])
    sig = bytearray(note.signatures[0].signature)
    sig[5] ^= 1
    bad = note.text + "\n" + type(note.signatures[0])(note.signatures[0].name, note.signatures[0].key_id,
                                                        bytes(sig)).line() + "\n"
    obj["checkpoint"] = bad
    (root / "receipts" / receipt_digest(code)[:2] / f"{receipt_digest(code)}.json").write_text(json.dumps(obj))
    for u in _serve(root):
        page = open_check(browser, "about:blank", init=NO_WEBCRYPTO_ED25519)
        try:
            page.goto(f"{u}?code={code}")
            testid, text = outcome(page)
            assert testid == "receipt-not-verified" and "does not verify" in text, text
        finally:
            page.close()


# Inputs a person (or a phone keyboard) might produce, and hostile ones.
CODES = [
    "CC-0000-0000-0000-0000", "cc-abcd-efgh-jkmn-pqrs", "ccabcdefghjkmnpqrs", "ABCD EFGH JKMN PQRS",
    "CC–ABCD—EFGH−JKMN‐PQRS", "CC ABCD\u00a0EFGH\tJKMN\nPQRS", "ｃｃ－ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ－ＰＱＲＳ",
    "CC-OOOO-IIII-LLLL-oilo", "CC-ABCD-EFGH-JKMN-PQRU", "CC-ABCD-EFGH-JKMN-PQR", "CC-ABCD-EFGH-JKMN-PQRSS",
    "ABCD-EFGH-JKMN-PQRS-TV", "CCCC-ABCD-EFGH-JKMN-PQ", "", "   ", "CC-ABCD-EFGH-JKMN-PQR\u0131",
    "CC-ABCD-EFGH-JKMN-PQR\u017f", "CC-ABCD-EFGH-JKMN-PQR\ufb01", "CC-ABCD-EFGH-JKMN-PQ\u00df", "ＣＣ０１２３４５６７８９ＡＢＣＤＥＦ",
    "CC-ABCD-EFGH-JKMN-PQR😀", "x" * 64, "CC-" + "-" * 61, "CC-" + "-" * 62 + "AB", "cc-1234-5678-9abc-defg",
    "\u2160\u2161CC-ABCD-EFGH-JKMN-PQRS", "CC-ABCD-EFGH-JKMN-PQR\u24c8", "CC-ABCD-EFGH-JKMN-PQR\u1d40",
]


def test_the_pages_normalization_and_digest_are_pythons(browser, url) -> None:
    page = open_check(browser, url)
    try:
        page.wait_for_function("() => globalThis.cc !== undefined")
        got = page.evaluate("async (codes) => Promise.all(codes.map(async (c) => {"
                            " const n = cc.normalize(c); return [n, n && await cc.digestOf(n)]; }))", CODES)
        for text, (norm, digest) in zip(CODES, got, strict=True):
            try:
                want = normalize_receipt_code(text)
            except ValueError:
                want = None
            assert norm == want, (text, norm, want)
            assert digest == (receipt_digest(want) if want else None), text
        assert sum(1 for n, _ in got if n) >= 10  # most of the corpus is valid: both sides were exercised
    finally:
        page.close()
