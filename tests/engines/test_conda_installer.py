"""The in-build conda installer ends without interpreter finalization (py-rattler's threads race it).

A stand-in ``rattler`` module registers an ``atexit`` hook: atexit runs inside
``Py_FinalizeEx``, so the hook's output shows whether finalization ran, which is the
phase py-rattler's tokio threads crashed (exit 134/139, ~1 run in 8).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from builder.recipes.script_text import script_file

FAKE_RATTLER = """
import atexit, sys

atexit.register(lambda: print("FINALIZED", flush=True))

class Channel:
    def __init__(self, url): self.url = url

class Platform:
    def __init__(self, name): self.name = name

class Client:
    @staticmethod
    def authenticated_client(): return Client()

class Gateway:
    def __init__(self, client): assert isinstance(client, Client)

class VirtualPackage:
    @staticmethod
    def detect(): return []

async def solve(sources, specs, platforms, virtual_packages, gateway):
    if "missing" in specs:
        raise RuntimeError("Cannot solve the request: no candidates for missing")
    return list(specs)

async def install(records, target_prefix, cache_dir, show_progress, client):
    import os
    os.makedirs(os.path.join(target_prefix, "conda-meta"), exist_ok=True)
    for name in records:
        with open(os.path.join(target_prefix, "conda-meta", name + "-1.0-0.json"), "w") as fh:
            fh.write("{}")
    print("partial line without newline", end="")
"""


def _run(tmp_path: Path, specs: list[str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "fake").mkdir(exist_ok=True)
    (tmp_path / "fake" / "rattler.py").write_text(FAKE_RATTLER)
    installer = tmp_path / "install.py"
    installer.write_bytes(script_file("conda_installer.py"))
    spec = {
        "specs": specs,
        "channels": ["http://127.0.0.1:9"],
        "platform": "linux-64",
        "cache": "",
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    return subprocess.run(
        [
            sys.executable,
            "-I",  # as conda.sh runs it: py-rattler comes from the TOOLS argument, not the environment
            str(installer),
            str(tmp_path / "spec.json"),
            str(tmp_path / "prefix"),
            str(tmp_path / "fake"),
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )


def test_success_exits_zero_without_finalizing_and_keeps_output(
    tmp_path: Path,
) -> None:
    proc = _run(tmp_path, ["alpha", "beta"])
    assert proc.returncode == 0, proc.stderr
    assert "FINALIZED" not in proc.stdout
    assert "conda: installing 2 packages" in proc.stdout
    assert "partial line without newline" in proc.stdout  # flushed before os._exit
    assert sorted(p.name for p in (tmp_path / "prefix" / "conda-meta").iterdir()) == [
        "alpha-1.0-0.json",
        "beta-1.0-0.json",
    ]


def test_failure_exits_one_with_the_error_without_finalizing(tmp_path: Path) -> None:
    proc = _run(tmp_path, ["missing"])
    assert proc.returncode == 1
    assert "no candidates for missing" in proc.stderr
    assert "Traceback" in proc.stderr
    assert "FINALIZED" not in proc.stdout
