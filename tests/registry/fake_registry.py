"""A fake OCI registry on loopback (``http.server`` in a thread) for the client's unit tests.

It serves manifests and blobs from dicts, takes monolithic blob uploads (POST then PUT ``?digest=``)
and manifest PUTs into them, records every request's headers, and can demand Basic or Bearer auth (with a token endpoint on the same server), omit ``Docker-Content-Digest``, lie about it,
redirect blobs to another host name, or stall.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    """State and behaviour switches of one fake registry."""

    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)  # (repo, ref) → (type, body)
    blobs: dict[str, bytes] = field(default_factory=dict)
    auth: str = ""  # "", "basic" or "bearer"
    user: str = "u"
    password: str = "p"
    send_digest: bool = True
    wrong_digest: bool = False
    redirect_blobs_to: str = ""  # e.g. "localhost": blobs answer 307 to the same port under that host name
    stall: float = 0.0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def add_image(self, repo: str, tag: str, layers: list[str], *, index: bool = False) -> dict[str, str]:
        """Store an image (config with ``layers`` as diff_ids) under ``tag``; returns its digests."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": layers}})
        config_bytes = config.encode()
        self.blobs[digest_of(config_bytes)] = config_bytes
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config_bytes)},
                "layers": [],
            }
        ).encode()
        self.manifests[(repo, digest_of(manifest))] = (OCI_MANIFEST, manifest)
        top_type, top = OCI_MANIFEST, manifest
        if index:
            arm = {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "0" * 64,
                "platform": {"os": "linux", "architecture": "arm64"},
            }
            amd = {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(manifest),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
            top_type = OCI_INDEX
            top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [arm, amd]}).encode()
            self.manifests[(repo, digest_of(top))] = (top_type, top)
        self.manifests[(repo, tag)] = (top_type, top)
        return {"digest": digest_of(top), "manifest": digest_of(manifest), "config": digest_of(config_bytes)}


def _handler(reg: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _authorized(self) -> bool:
            given = self.headers.get("Authorization", "")
            if reg.auth == "basic":
                want = "Basic " + base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
                if given == want:
                    return True
                self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
                return False
            if reg.auth == "bearer":
                if given == "Bearer good-token":
                    return True
                realm = f"http://127.0.0.1:{reg.port}/token"
                challenge = f'Bearer realm="{realm}",service="fake",scope="repository:{self._repo()}:pull"'
                self._send(401, b"{}", {"WWW-Authenticate": challenge})
                return False
            return True

        def _repo(self) -> str:
            path = self.path.split("?")[0]
            return path[len("/v2/") :].rsplit("/", 2)[0]

        def _token(self) -> None:
            want = "Basic " + base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
            if self.headers.get("Authorization") != want:
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                return
            self._send(200, json.dumps({"token": "good-token"}).encode(), {"Content-Type": "application/json"})

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            reg.requests.append((self.command, self.path, dict(self.headers.items())))
            if reg.stall:
                time.sleep(reg.stall)
            if self.path.startswith("/token"):
                self._token()
                return
            if not self.path.startswith("/v2/"):
                self._send(404)
                return
            repo, kind, ref = self.path.split("?")[0][len("/v2/") :].rsplit("/", 2)
            if kind == "blobs" and reg.redirect_blobs_to and self.headers.get("Host", "").startswith("127."):
                self._send(307, b"", {"Location": f"http://{reg.redirect_blobs_to}:{reg.port}{self.path}"})
                return
            if not self._authorized():
                return
            if kind == "manifests" and (repo, ref) in reg.manifests:
                media, body = reg.manifests[(repo, ref)]
                headers = {"Content-Type": media}
                if reg.send_digest:
                    headers["Docker-Content-Digest"] = "sha256:" + "f" * 64 if reg.wrong_digest else digest_of(body)
                self._send(200, body, headers)
            elif kind == "blobs" and ref in reg.blobs:
                self._send(200, reg.blobs[ref])
            else:
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            reg.requests.append((self.command, self.path, dict(self.headers.items())))
            self._body()
            if not self._authorized():
                return
            repo = self._repo()  # /v2/REPO/blobs/uploads/ → REPO/blobs
            repo = repo.removesuffix("/blobs")
            upload = f"/v2/{repo}/blobs/uploads/{len(reg.requests)}"
            self._send(202, b"", {"Location": f"http://127.0.0.1:{reg.port}{upload}?_state=x"})

        def do_PUT(self) -> None:
            reg.requests.append((self.command, self.path, dict(self.headers.items())))
            body = self._body()
            if not self._authorized():
                return
            path, _, query = self.path.partition("?")
            if "/blobs/uploads/" in path:
                digest = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("digest", "")
                if digest_of(body) != digest:
                    self._send(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                    return
                reg.blobs[digest] = body
                self._send(201, b"", {"Docker-Content-Digest": digest})
                return
            repo, kind, ref = path[len("/v2/") :].rsplit("/", 2)
            if kind != "manifests":
                self._send(404)
                return
            media = self.headers.get("Content-Type", "")
            reg.manifests[(repo, ref)] = (media, body)
            reg.manifests[(repo, digest_of(body))] = (media, body)
            self._send(201, b"", {"Docker-Content-Digest": digest_of(body)})

    return Handler


@contextmanager
def serve(reg: FakeRegistry) -> Iterator[FakeRegistry]:
    """Run ``reg`` on 127.0.0.1 (a free port, set in ``reg.port``) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reg))
    server.daemon_threads = True
    reg.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield reg
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
