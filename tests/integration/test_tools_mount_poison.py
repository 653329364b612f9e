"""A uv planted in the tools cache mount by another project's build backend is never run (issue #20, finding 3).

The attacker is an ordinary project: its local requirement's in-tree build backend (user code the
pip step runs) replaces ``bin/uv`` in the tools mount with a script that would print a marker.
In a cache scope the projects share on purpose, the victim's next pip step finds the planted uv,
removes it, fetches the pinned one again and installs with that; in the default per-project
scopes the planted uv never reaches the victim's mount at all.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.engines.events import Event, StepLog
from builder.plan.cache_scope import SCOPE_ENV
from builder.recipes import tools
from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"
MARKER = "POISONED_UV_RAN"
PLANTED = "uv: the uv in the tools cache mount is not the pinned uv (sha256 "

#: An in-tree PEP 517 backend (no build requirements: no index needed) that builds a real one-module
#: wheel, and on the way replaces the uv in the tools mount.
BACKEND = f'''
import base64, hashlib, os, zipfile

POISON = "#!/bin/sh\\necho {MARKER}\\nexit 0\\n"


def _plant():
    target = "{tools.TOOLS_DIR}/uv/{tools.UV_VERSION}/bin/uv"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".new", "w") as out:
        out.write(POISON)
    os.chmod(target + ".new", 0o755)
    os.replace(target + ".new", target)


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _plant()
    name = "evilpkg-0.1-py3-none-any.whl"
    files = {{
        "evilpkg/__init__.py": b"VALUE = 1\\n",
        "evilpkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: evilpkg\\nVersion: 0.1\\n",
        "evilpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: x\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append("evilpkg-0.1.dist-info/RECORD,,")
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as whl:
        for path, data in files.items():
            whl.writestr(path, data)
        whl.writestr("evilpkg-0.1.dist-info/RECORD", "\\n".join(record) + "\\n")
    return name
'''


def evil_project(root: Path, nonce: str) -> Path:
    app = root / "evil"
    pkg = app / "evilpkg"
    pkg.mkdir(parents=True)
    (app / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "evil-{nonce}"\npython_version = "3.11"\nuse_uv = true\n\n'
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )
    (app / "requirements.txt").write_text("./evilpkg\n")
    (app / "main.py").write_text("print('x')\n")
    (pkg / "pyproject.toml").write_text(
        f'[build-system]\nrequires = []\nbuild-backend = "backend_{nonce}"\nbackend-path = ["."]\n'
    )
    (pkg / f"backend_{nonce}.py").write_text(BACKEND)
    return app


def victim_requirements(app: Path, nonce: str) -> None:
    marker = f'python_version > "2.{int(nonce, 16) % 10**9}"'  # new to the engine: the pip step runs
    (app / "requirements.txt").write_text(f"six==1.16.0; {marker}\n")
    text = (app / "cerebrium.toml").read_text().replace('[cerebrium.dependencies.pip]\nsix = "==1.16.0"\n', "")
    if "[cerebrium.dependencies.paths]" not in text:
        text += '\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    (app / "cerebrium.toml").write_text(text)


def pip_lines(app: Path, target: EngineTarget, cache: Path) -> list[str]:
    events: list[Event] = []
    result, _, _ = build(
        app, engine=target.address, tls=target.tls, cache_dir=cache, ca_bundle=CA, on_event=events.append
    )
    assert not result.step("pip").cached
    return [e.line for e in events if isinstance(e, StepLog) and e.step == "pip"]


def test_a_uv_planted_by_a_build_backend_is_replaced_not_run_in_a_shared_scope(
    app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nonce = uuid.uuid4().hex[:12]
    monkeypatch.setenv(SCOPE_ENV, f"poison-{nonce}")  # both projects share their cache mounts, on purpose
    evil = pip_lines(evil_project(tmp_path, nonce), engine_target, tmp_path / "cache-evil")
    assert MARKER not in evil  # the attacker's own step ran its private, checked uv
    victim_requirements(app_build_basic, nonce)
    victim = pip_lines(app_build_basic, engine_target, tmp_path / "cache-victim")
    assert MARKER not in victim
    assert any(ln.startswith(PLANTED) for ln in victim), victim[:8]
    assert any(ln.startswith(f"uv: installed uv {tools.UV_VERSION} from https://") for ln in victim), victim[:8]
    assert any(ln.strip() == "+ six==1.16.0" for ln in victim)  # installed by the re-fetched, pinned uv


def test_a_uv_planted_by_a_build_backend_stays_in_its_own_projects_scope(
    app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SCOPE_ENV, raising=False)
    nonce = uuid.uuid4().hex[:12]
    pip_lines(evil_project(tmp_path, nonce), engine_target, tmp_path / "cache-evil")
    victim_requirements(app_build_basic, nonce)
    victim = pip_lines(app_build_basic, engine_target, tmp_path / "cache-victim")
    assert MARKER not in victim
    assert not any(ln.startswith(PLANTED) for ln in victim)  # the planted uv is not in this project's mount
