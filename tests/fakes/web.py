"""A fake web for the built-in web tools: Brave's search API at `/search` and the pages it finds.

`with fake_web() as base:` serves on `http://127.0.0.1:<port>` in a thread. Point `CHAT_WEB_SEARCH_URL` at
`{base}/search` (with any `CHAT_WEB_SEARCH_API_KEY`) and allow `web_fetch` private addresses
(`CHAT_WEB_FETCH_ALLOW_PRIVATE`) to read its pages. Every search answers `RESULTS`: pages `/a` and `/b`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PAGES", "RESULTS", "fake_web", "serve_handler"]

RESULTS = (("/a", "<strong>Result</strong> A", "Result A"), ("/b", "Result B", "Result B"))
"""(path, title as Brave sends it, title as the model and the citation get it) of every search's results."""
PAGES = {"/a": "Page A", "/b": "Page B", "/c": "Page C"}
"""The pages, by path, with their HTML titles."""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        base = f"http://{self.headers['host']}"  # 127.0.0.1:<port>
        path = self.path.split("?", 1)[0]
        if path == "/search":
            results = [{"title": title, "url": f"{base}{p}", "description": f"about {p}"} for p, title, _ in RESULTS]
            body, kind = json.dumps({"web": {"results": results}}).encode(), "application/json"
        elif path in PAGES:
            title = PAGES[path]
            body, kind = (
                f"<html><head><title>{title}</title></head><body><p>{title}.</p></body></html>".encode(),
                "text/html",
            )
        else:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def fake_web() -> Iterator[str]:
    """Serve the fake web; yields its base URL."""
    with serve_handler(_Handler) as base:
        yield base


@contextlib.contextmanager
def serve_handler(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 in a thread (any fake HTTP backend); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
