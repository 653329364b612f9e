"""uv_boot.py: the quick install of the pinned uv that the python and pip steps run in the build.

Wheel choice per machine and C library, the index it may use, and whole runs against an index
served over loopback (PEP 691 JSON page + a real zip wheel), as the build runs it: the file's
text through ``python -I -S -c``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import platform
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.recipes.script_text import script_file, script_text


def _load_uv_boot() -> ModuleType:
    """The script as a module for its unit tests (the build never imports it: it runs its text)."""
    path = Path(__file__).resolve().parents[2] / "builder" / "recipes" / "scripts" / "uv_boot.py"
    spec = importlib.util.spec_from_file_location("builder_test_uv_boot", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


uv_boot = _load_uv_boot()
Skip, index_url, pick_wheel = uv_boot.Skip, uv_boot.index_url, uv_boot.pick_wheel

V = "0.13.9"
SHA = "a" * 64


def entry(name: str, sha: str = SHA, **extra: object) -> dict[str, object]:
    return {"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": sha}, **extra}


UV_FILES = [
    entry(f"uv-{V}.tar.gz"),
    entry(f"uv-{V}-py3-none-macosx_11_0_arm64.whl"),
    entry(f"uv-{V}-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"),
    entry(f"uv-{V}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
    entry(f"uv-{V}-py3-none-manylinux_2_28_x86_64.whl"),  # hypothetical newer-glibc build
    entry(f"uv-{V}-py3-none-musllinux_1_1_x86_64.whl"),
    entry(f"uv-{V}-py3-none-win_amd64.whl"),
    entry(f"uv-{V}0-py3-none-manylinux_2_17_x86_64.whl"),  # another version sharing the prefix digits
]


def picked(machine: str, libc: str, files: list[dict] | None = None) -> str:
    return str(pick_wheel(files if files is not None else UV_FILES, V, machine, libc)["filename"])


def test_glibc_machines_take_a_manylinux_wheel_they_can_run() -> None:
    assert picked("x86_64", "glibc 2.36") == f"uv-{V}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert picked("aarch64", "glibc 2.31") == f"uv-{V}-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert picked("arm64", "glibc 2.31").endswith("manylinux2014_aarch64.whl")


def test_a_wheel_for_a_newer_glibc_is_never_picked() -> None:
    only_new = [entry(f"uv-{V}-py3-none-manylinux_2_28_x86_64.whl")]
    with pytest.raises(Skip):
        picked("x86_64", "glibc 2.17", only_new)
    assert picked("x86_64", "glibc 2.28", only_new).endswith("manylinux_2_28_x86_64.whl")
    with pytest.raises(Skip):  # manylinux2014 means glibc 2.17
        picked("x86_64", "glibc 2.12", [entry(f"uv-{V}-py3-none-manylinux2014_x86_64.whl")])


def test_musl_takes_musllinux_and_unknown_platforms_skip() -> None:
    assert picked("x86_64", "musl") == f"uv-{V}-py3-none-musllinux_1_1_x86_64.whl"
    for machine, libc in [("riscv64", "glibc 2.36"), ("x86_64", "other"), ("mips", "musl")]:
        with pytest.raises(Skip):
            picked(machine, libc)


def test_yanked_bad_hash_and_other_versions_are_not_candidates() -> None:
    name = f"uv-{V}-py3-none-manylinux_2_17_x86_64.whl"
    for files in (
        [entry(name, yanked=True)],
        [entry(name, sha="abc")],
        [entry(name, sha="A" * 64)],
        [entry(f"uv-{V}0-py3-none-manylinux_2_17_x86_64.whl")],
        [entry(f"uv-{V}-py3-none-any.zip")],
    ):
        with pytest.raises(Skip):
            picked("x86_64", "glibc 2.36", files)


@given(
    st.lists(st.sampled_from(UV_FILES), max_size=12),
    st.sampled_from(["x86_64", "aarch64"]),
    st.integers(min_value=0, max_value=40),
)
def test_a_pick_always_runs_here(files: list[dict], machine: str, minor: int) -> None:
    """Whatever the page lists, a picked wheel is uv V for this machine and a glibc no newer than ours."""
    try:
        name = picked(machine, f"glibc 2.{minor}", files)
    except Skip:
        return
    tags = name[:-4].split("-")[4].split(".")
    assert name.startswith(f"uv-{V}-")
    assert any(
        t.endswith(machine)
        and (
            (t.startswith("manylinux2014") and minor >= 17)
            or (t.startswith("manylinux_2_") and int(t.split("_")[2]) <= minor)
        )
        for t in tags
    )


def test_index_comes_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uv_boot, "PIP_CONFIGS", ())
    assert index_url({}) == "https://pypi.org/simple"
    assert index_url({"PIP_INDEX_URL": "https://mirror.example/simple"}) == "https://mirror.example/simple"
    for extra in ({"PIP_EXTRA_INDEX_URL": "https://x"}, {"PIP_FIND_LINKS": "/w"}, {"PIP_NO_INDEX": "1"}):
        with pytest.raises(Skip):
            index_url(extra)
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://mirror.example/simple\n")
    with pytest.raises(Skip):
        index_url({"PIP_CONFIG_FILE": str(config)})
    monkeypatch.setattr(uv_boot, "PIP_CONFIGS", (str(config),))
    with pytest.raises(Skip):
        index_url({})
    assert index_url({"PIP_CONFIG_FILE": os.devnull}) == "https://pypi.org/simple"  # pip: read no file


def test_the_scripts_carry_it_verbatim() -> None:
    text = script_file("uv_boot.py").decode("utf-8")
    assert "'" not in text
    for script in (script_text("tools_uv.sh"), script_text("python.sh")):
        assert script.count(f"uv_boot_py='{text}'\n") == 1
        assert '-I -S -c "$uv_boot_py" "$tools"' in script


# --- whole runs against a loopback index ----------------------------------------------------------

UV_BODY = b"#!/bin/sh\necho fake uv\n"


def wheel_bytes(body: bytes = UV_BODY) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"uv-{V}.data/scripts/uv", body)
        archive.writestr("uv/__init__.py", "")
        archive.writestr(f"uv-{V}.dist-info/RECORD", "")
    return out.getvalue()


class Index:
    """A PEP 691 index on loopback serving uv V for this machine (``served`` may be swapped)."""

    def __init__(self, wheel: bytes, sha: str | None = None, json_page: bool = True) -> None:
        self.name = f"uv-{V}-py3-none-manylinux_2_17_{platform.machine()}.musllinux_1_1_{platform.machine()}.whl"
        self.wheel, self.json_page = wheel, json_page
        self.sha = sha or hashlib.sha256(wheel).hexdigest()
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if self.path == "/simple/uv/":
                    page = {
                        "meta": {"api-version": "1.0"},
                        "name": "uv",
                        "files": [entry(f"uv-{V}-py3-none-win_amd64.whl"), entry(index.name, sha=index.sha)],
                    }
                    body = json.dumps(page).encode()
                    kind = "application/vnd.pypi.simple.v1+json" if index.json_page else "text/html"
                elif self.path == f"/files/{index.name}":
                    body, kind = index.wheel, "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index() -> Iterator[Index]:
    served = Index(wheel_bytes())
    yield served
    served.close()


def boot(tools: Path, index_url_: str) -> subprocess.CompletedProcess[str]:
    """The file's text through ``python -I -S -c``, as the steps run it."""
    env = {
        "PATH": os.environ["PATH"],
        "PIP_INDEX_URL": index_url_,
        "PIP_CONFIG_FILE": os.devnull,
        "HOME": str(tools.parent),
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script_text("uv_boot.py"), str(tools), V],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installs_only_the_uv_executable(tmp_path: Path, index: Index) -> None:
    tools = tmp_path / "uv" / V
    done = boot(tools, index.url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"uv: installed uv {V} from http://127.0.0.1:")
    uv = tools / "bin" / "uv"
    assert uv.read_bytes() == UV_BODY and os.access(uv, os.X_OK)
    assert sorted(p.name for p in tools.rglob("*")) == ["bin", "uv"]
    assert [p.name for p in tools.parent.iterdir()] == [V]  # its work folder is gone
    assert index.requests == ["/simple/uv/", f"/files/{index.name}"]


def test_a_second_run_beside_a_finished_one_succeeds(tmp_path: Path, index: Index) -> None:
    tools = tmp_path / "uv" / V
    assert boot(tools, index.url).returncode == 0
    (tools / "bin" / "extra").write_text("keeps the folder non-empty")
    assert boot(tools, index.url).returncode == 0  # lost the rename race: the uv in place is fine
    assert (tools / "bin" / "uv").read_bytes() == UV_BODY


@pytest.mark.parametrize("problem", ["tampered", "html-page", "no-index", "not-a-wheel"])
def test_every_failure_exits_1_and_leaves_nothing(tmp_path: Path, problem: str) -> None:
    served = {
        "tampered": lambda: Index(wheel_bytes(b"evil"), sha=hashlib.sha256(wheel_bytes()).hexdigest()),
        "html-page": lambda: Index(wheel_bytes(), json_page=False),
        "no-index": lambda: Index(wheel_bytes()),
        "not-a-wheel": lambda: Index(b"not a zip"),
    }[problem]()
    try:
        url = served.url if problem != "no-index" else served.url.replace("/simple", "/elsewhere")
        tools = tmp_path / "uv" / V
        done = boot(tools, url)
    finally:
        served.close()
    assert done.returncode == 1
    assert done.stderr.startswith(f"uv: quick install of uv {V} not possible (") and done.stderr.endswith(
        "; using pip\n"
    )
    assert not tools.exists()
    assert not list(tools.parent.glob(".uv-boot.*"))
