"""A small static web server for the public folder: the receipt check page, its documents, the tiles.

``cuentas up`` runs it in its own process (``python -m infra.static_server
DIR --port N``) for ``<data dir>/public`` (``PUBLIC_DIR``).  Any static host
or CDN can serve the same folder instead; this one exists so the platform
needs nothing else.  It only answers GET and HEAD for files:

* no directory listing, ever (receipt documents are found by digest only,
  and nothing may enumerate them) and no dot files (temporary files being
  written, key material never lives here but is refused anyway);
* content types by extension (tiles and ``checkpoint`` are bytes / text);
* gzip for text when the client accepts it (compressed once per file
  version and kept in memory);
* cache headers by what changes: tiles (``tile/``) are immutable, receipt
  documents and ``checkpoint`` change as the log grows (short), the page
  is revalidated.
"""

from __future__ import annotations

import argparse
import gzip
import posixpath
import sys
import threading
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["StaticHandler", "make_server", "serve", "main"]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".pub": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}
_TEXT = ("text/", "application/json")
_MAX_GZIP = 8 << 20


@lru_cache(maxsize=512)
def _gzipped(path: str, mtime_ns: int, size: int) -> bytes:
    # Keyed by the file's version: a rewritten document is compressed again.
    with open(path, "rb") as f:
        return gzip.compress(f.read(), compresslevel=6, mtime=0)


def _content_type(rel: str) -> str:
    if rel == "checkpoint" or rel.startswith("checkpoints/"):
        return "text/plain; charset=utf-8"
    return _TYPES.get(posixpath.splitext(rel)[1], "application/octet-stream")


def _cache_control(rel: str) -> str:
    if rel.startswith("tile/"):
        return "public, max-age=31536000, immutable"
    if rel.startswith("receipts/") or rel == "checkpoint":
        return "public, max-age=10"
    if rel.startswith("checkpoints/") or rel.startswith("vendor/"):
        return "public, max-age=86400"
    return "no-cache"


class StaticHandler(BaseHTTPRequestHandler):
    server_version = "cuentas-static"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    root: Path = Path(".")

    def log_message(self, format: str, *args: object) -> None:
        pass  # a lookup is nobody's business: no access log of receipt digests

    def _resolve(self) -> tuple[str, Path] | None:
        path = unquote(urlsplit(self.path).path)
        if path.endswith("/"):
            path += "index.html"
        parts = [p for p in path.split("/") if p]
        if not parts or any(p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None
        rel = "/".join(parts)
        full = self.root.joinpath(*parts)
        try:
            if not full.resolve().is_relative_to(self.root.resolve()) or not full.is_file():
                return None
        except OSError:
            return None
        return rel, full

    def do_HEAD(self) -> None:
        self._send(head=True)

    def do_GET(self) -> None:
        self._send(head=False)

    def _send(self, head: bool) -> None:
        found = self._resolve()
        if found is None:
            body = b"not found\n"
            self.send_response(HTTPStatus.NOT_FOUND)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        rel, full = found
        ctype = _content_type(rel)
        try:
            st = full.stat()
            gz = ("gzip" in self.headers.get("Accept-Encoding", "") and ctype.startswith(_TEXT)
                  and 200 < st.st_size <= _MAX_GZIP)
            data = _gzipped(str(full), st.st_mtime_ns, st.st_size) if gz else full.read_bytes()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", _cache_control(rel))
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if gz:
            self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        if not head:
            self.wfile.write(data)


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for ``root`` (not yet serving); ``port`` 0 picks a free one (``server.server_port``)."""
    handler = type("Handler", (StaticHandler,), {"root": Path(root)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(root: Path, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``root`` from a background thread (tests, benchmarks); ``server.shutdown()`` stops it."""
    server = make_server(root, host, port)
    thread = threading.Thread(target=server.serve_forever, name="static-server", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m infra.static_server", description=__doc__.split("\n")[0])
    p.add_argument("root", help="the folder to serve")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8502)
    a = p.parse_args(argv)
    root = Path(a.root)
    root.mkdir(parents=True, exist_ok=True)
    server = make_server(root, a.host, a.port)
    print(f"serving {root} at http://{a.host}:{server.server_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
