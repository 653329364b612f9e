"""A package index and git host on 127.0.0.1 for integration tests (the build's host network reaches it).

:class:`LocalIndex` serves a directory over HTTP in PEP 503 layout
(``/simple/<name>/`` pages linking ``/files/<wheel>``), optionally behind HTTP
basic auth, plus any bare git repository under ``/git/`` with git's "dumb"
HTTP protocol (``git update-server-info`` files).  Wheels are written by
:func:`write_wheel` (pure Python, no build step).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import subprocess
import threading
import zipfile
from pathlib import Path
from typing import Any


def write_wheel(directory: Path, name: str, version: str, body: str) -> Path:
    """A minimal pure-Python wheel of package ``name`` (module ``name`` with '-' → '_') whose module is ``body``."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    files = {
        f"{module}/__init__.py": body,
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
    return path


class LocalIndex:
    """Serve ``root`` on 127.0.0.1 (``/simple``, ``/files``, ``/git``); ``auth`` = (user, password) or None."""

    def __init__(self, root: Path, auth: tuple[str, str] | None = None) -> None:
        self.root = root
        (root / "files").mkdir(parents=True, exist_ok=True)
        (root / "git").mkdir(exist_ok=True)
        self.auth = auth
        self.authorized = 0  # requests that carried the right credentials
        self.refused = 0
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if index.auth is not None:
                    token = base64.b64encode(":".join(index.auth).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        index.refused += 1
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="test"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    index.authorized += 1
                if self.path.startswith("/simple/") and self.path.count("/") == 3 and self.path.endswith("/"):
                    self._project_page(self.path.split("/")[2])
                    return
                super().do_GET()

            def _project_page(self, project: str) -> None:
                wanted = project.replace("-", "_").lower()
                links = "".join(
                    f'<a href="/files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">{p.name}</a>\n'
                    for p in sorted((root / "files").glob("*.whl"))
                    if p.name.split("-")[0].lower() == wanted
                )
                data = f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()
                self.send_response(200 if links else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalIndex:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str = "", *, credentials: bool = False) -> str:
        auth = f"{self.auth[0]}:{self.auth[1]}@" if credentials and self.auth else ""
        return f"http://{auth}127.0.0.1:{self.port}/{path}"

    def add_git_package(self, name: str, body: str) -> tuple[str, str]:
        """A bare repo ``/git/<name>.git`` holding a flit package ``name``; returns (URL, commit)."""
        work = self.root / "work" / name
        module = work / name.replace("-", "_")
        module.mkdir(parents=True)
        (module / "__init__.py").write_text(body)
        (work / "pyproject.toml").write_text(
            '[build-system]\nrequires = ["flit_core>=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n\n'
            f'[project]\nname = "{name}"\nversion = "0.1.0"\ndescription = "x"\n'
        )
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q", str(work)], check=True)
        subprocess.run([*git, "-C", str(work), "add", "."], check=True)
        subprocess.run([*git, "-C", str(work), "commit", "-qm", "init"], check=True)
        bare = self.root / "git" / f"{name}.git"
        subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
        commit = subprocess.run(
            ["git", "-C", str(bare), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        return self.url(f"git/{name}.git"), commit
