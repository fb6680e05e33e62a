"""The receipt check page as written by the platform, and the static server that serves it (issue 18)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.receipt_page import LANGS, build_page, load_catalogues, page_keys, write_files
from infra.static_server import serve
from schemas.errors import ConfigurationError
from tests.receipt_site import build_site

SITE = build_site()


def test_every_word_the_page_uses_is_in_every_catalogue() -> None:
    keys = page_keys()
    assert {"track.verified", "track.has_flags", "track.verify_failed", "track.not_found", "check.how"} <= keys
    cats = load_catalogues()
    for lang in LANGS:
        assert keys <= set(cats[lang]), (lang, sorted(keys - set(cats[lang])))


def _config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="cc-config">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_the_page_embeds_the_keys_and_allows_only_its_own_script() -> None:
    files = build_page(SITE.log_key, [SITE.witness_key])
    assert set(files) == {"index.html", "vendor/noble-ed25519.js", "vendor/noble-ed25519.LICENSE",
                          *(f"i18n/{lang}.json" for lang in LANGS)}
    html = files["index.html"].decode()
    assert "{{" not in html
    cfg = _config(html)
    assert cfg["log"] == str(SITE.log_key) and cfg["witnesses"] == [str(SITE.witness_key)]
    assert cfg["min_witnesses"] == 1  # the witness policy's default: every trusted witness
    assert cfg["exponents"]["JPY"] == 0 and cfg["exponents"]["KWD"] == 3 and "USD" not in cfg["exponents"]
    assert cfg["strings"]["track.title"] == "Rastrear mi envío"
    # the Content-Security-Policy names the hash of the one inline script
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)  # type: ignore[union-attr]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in html
    assert "Rastrear mi envío</h1>" in html  # Spanish first, before any script runs
    # a few kilobytes: the whole page compressed, as a phone on 3G downloads it
    assert len(gzip.compress(files["index.html"])) < 16_000
    assert json.loads(files["i18n/fr.json"])["track.title"] == load_catalogues()["fr"]["track.title"]


def test_fewer_cosignatures_only_when_asked_and_never_more_than_witnesses() -> None:
    cfg = _config(build_page(SITE.log_key, [SITE.witness_key], 0)["index.html"].decode())
    assert cfg["min_witnesses"] == 0
    with pytest.raises(ConfigurationError):
        build_page(SITE.log_key, [SITE.witness_key], 2)
    with pytest.raises(ConfigurationError):
        build_page(SITE.witness_key, [SITE.witness_key])


def test_written_files_are_replaced_only_when_they_change(tmp_path: Path) -> None:
    files = {"a/b.json": b"1", "index.html": b"x"}
    assert write_files(tmp_path, files) == 2
    assert write_files(tmp_path, files) == 0
    assert write_files(tmp_path, {"a/b.json": b"2"}) == 1
    assert (tmp_path / "a" / "b.json").read_bytes() == b"2"
    assert not [p for p in tmp_path.rglob(".*")]


def _get(url: str, gz: bool = False, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method, headers={"Accept-Encoding": "gzip"} if gz else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_static_server_serves_files_and_lists_nothing(tmp_path: Path) -> None:
    root = SITE.write(tmp_path)
    write_files(root, {"tile/0/000.p/9": b"\0" * 288, ".secret": b"k", "receipts/.x.tmp": b"{}"})
    _, doc = SITE.docs["tr-site-1"]
    server, _ = serve(root)
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        status, h, body = _get(base + "/")
        assert status == 200 and h["Content-Type"] == "text/html; charset=utf-8" and b"cc-config" in body
        assert h["Cache-Control"] == "no-cache"
        status, h, body = _get(f"{base}/{doc.path}", gz=True)
        assert status == 200 and h["Content-Type"] == "application/json" and h["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == doc.to_bytes() and h["Cache-Control"] == "public, max-age=10"
        status, h, body = _get(f"{base}/{doc.path}", method="HEAD")
        assert status == 200 and body == b"" and int(h["Content-Length"]) == len(doc.to_bytes())
        status, h, _ = _get(base + "/tile/0/000.p/9")
        assert status == 200 and "immutable" in h["Cache-Control"]
        assert h["Content-Type"] == "application/octet-stream"
        assert _get(base + "/checkpoint")[1]["Content-Type"].startswith("text/plain")
        # nothing to enumerate, nothing hidden or outside the folder
        for path in ("/receipts/", "/receipts", f"/{doc.path[:11]}", "/.secret", "/receipts/.x.tmp",
                     "/../" + tmp_path.name, "/%2e%2e/etc/passwd", "/i18n/../../x"):
            assert _get(base + path)[0] == 404, path
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_explains_a_transfer_s_flags_with_the_configured_numbers() -> None:
    """Issue 15: the receipt page lists a transfer's flags; each comes with its explanation
    (the dashboard's ``flag_help.<type>``), its numbers filled from ``th`` in the browser."""
    from infra.receipt_page import TRANSFER_FLAG_TYPES
    from schemas.flags import FLAG_TYPES

    assert set(TRANSFER_FLAG_TYPES) <= set(FLAG_TYPES)
    files = build_page(SITE.log_key, [SITE.witness_key], help_numbers={"grace_hours": 48.0, "refund_days": 5})
    cfg = _config(files["index.html"].decode())
    cats = load_catalogues()
    for x in TRANSFER_FLAG_TYPES:
        assert cfg["strings"][f"flag_help.{x}"] == cats["es"][f"flag_help.{x}"]
        assert json.loads(files["i18n/pt.json"])[f"flag_help.{x}"] == cats["pt"][f"flag_help.{x}"]
    assert "flag_help.share_unpaid" not in cfg["strings"]  # a project's flag never shows on a receipt
    assert cfg["th"]["grace_hours"] == 48 and cfg["th"]["refund_days"] == 5 and cfg["th"]["tolerance_bps"] == 50
    # every placeholder the shown explanations use is one the page fills (helpVars in page.js)
    script = (Path(__file__).resolve().parents[2] / "infra" / "receipt_page" / "page.js").read_text(encoding="utf-8")
    body = re.search(r"const helpVars = \(\) => \(\{(.*?)\}\);", script, re.S)
    assert body
    filled = set(re.findall(r"(\w+): ", body.group(1)))  # the object's names (and Intl options: harmless)
    for lang in LANGS:
        for x in TRANSFER_FLAG_TYPES:
            used = set(re.findall(r"\{(\w+)\}", cats[lang][f"flag_help.{x}"]))
            assert used <= filled, (lang, x, used - filled)
    assert len(gzip.compress(files["index.html"])) < 16_000
