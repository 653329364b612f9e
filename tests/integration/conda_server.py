"""A local conda channel served over loopback, optionally behind HTTP basic auth (builds use the host network)."""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.deps.deps_helpers import load_channel_module


class _Handler(http.server.SimpleHTTPRequestHandler):
    expected: str | None = None  # the Authorization header value to require, None: open
    seen: list[str]  # "ok" / "denied" per request

    def do_GET(self) -> None:
        if self.expected is not None and self.headers.get("Authorization") != self.expected:
            self.seen.append("denied")
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="channel"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.seen.append("ok")
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def served_channel(root: Path, auth: tuple[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Build the fixture channel under ``root`` and serve it: ``(url without credentials, request log)``."""
    module = load_channel_module()
    channel = Path(module.build_channel(root, module.DEFAULT_PACKAGES))
    seen: list[str] = []
    expected = None
    if auth is not None:
        expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    handler = type("Handler", (_Handler,), {"expected": expected, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(channel)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
