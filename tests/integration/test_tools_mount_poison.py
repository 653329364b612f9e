"""Tools in the tools cache mounts are never run unchecked, and project code cannot write them (issue #20, finding 3).

Only a tools run (builder's own script, no project code) mounts the uv / py-rattler tools cache
read-write; the pip and conda steps see its checked copies read-only.  So:

* a local package whose in-tree build backend (user code the pip step runs) tries to replace uv in
  the tools mount fails with EROFS, and the build goes on (the backend fails the build if it could write);
* a uv and a py-rattler wheel planted in the shared tools caches by another build on the engine (an
  LLB solve naming the cache ids) are found by the next tools run, removed and fetched again;
  the attacker's marker never appears.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.llb.ops import Mount
from builder.engines.buildkit.llb.state import State
from builder.engines.events import Event, StepLog
from builder.plan.cache_scope import SCOPE_ENV
from builder.recipes import tools
from tests.integration.conda_server import served_channel
from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"
MARKER = "POISONED_UV_RAN"
PLANTED = "uv: the uv in the tools cache mount is not the pinned uv (sha256 "

#: An in-tree PEP 517 backend (no build requirements: no index needed) that builds a real one-module
#: wheel, and on the way replaces the uv in the tools mount.
BACKEND = f'''
import base64, errno, hashlib, os, zipfile

POISON = "#!/bin/sh\\necho {MARKER}\\nexit 0\\n"


def _plant():
    target = "{tools.TOOLS_DIR}/uv/{tools.UV_VERSION}/bin/uv"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target + ".new", "w") as out:
            out.write(POISON)
        os.chmod(target + ".new", 0o755)
        os.replace(target + ".new", target)
    except OSError as error:
        if error.errno != errno.EROFS:
            raise RuntimeError("TOOLS_MOUNT_NOT_READ_ONLY: " + str(error))
        return
    raise RuntimeError("TOOLS_MOUNT_WRITTEN_BY_A_BUILD_BACKEND")


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


WHEEL = f"py_rattler-{tools.RATTLER_VERSION}-cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
PLANT = (
    'mkdir -p "/uv/$1/bin" "/rattler/$2" && printf "#!/bin/sh\\necho %s\\n" "$4" > "/uv/$1/bin/uv" '
    '&& chmod 755 "/uv/$1/bin/uv" && printf "import os; print(%s)\\n" "$4" > "/rattler/$2/$3"'
)


def plant(engine: EngineClient, scope: str) -> None:
    """Another build on the engine that names the scope's tools cache ids writes a fake uv and py-rattler wheel."""
    mounts = [
        Mount("/uv", "cache", cache_id=f"builder-tools-uv-shared-{scope}", sharing="locked"),
        Mount("/rattler", "cache", cache_id=f"builder-tools-rattler-shared-{scope}", sharing="locked"),
    ]
    # the scope is in argv too: BuildKit leaves cache mount ids out of an exec's cache key, so without it a
    # plant for another scope would be a cache hit that writes nothing
    argv = ["/bin/sh", "-c", PLANT, "plant", tools.UV_VERSION, tools.RATTLER_VERSION, WHEEL, MARKER, scope]
    state = State.image("docker.io/library/debian:bookworm-slim").with_network("host")
    state = state.env("PATH", tools.DEFAULT_PATH).run(argv, name=f"[test] plant {scope}", mounts=mounts)
    request = control_pb2.SolveRequest(
        Ref=f"builder-test-{uuid.uuid4().hex}", Definition=state.marshal().to_pb(), Entitlements=["network.host"]
    )
    engine.control.Solve(request, timeout=300)


def victim_project(root: Path, channel: str, nonce: str) -> Path:
    """uv for pip and a conda package: both tools runs run (the requirement marker is new to the engine)."""
    app = root / "victim"
    app.mkdir()
    (app / "cerebrium.toml").write_text(  # the pre-build command makes both tools runs new to the engine
        f'[cerebrium.deployment]\nname = "victim-{nonce}"\npython_version = "3.11"\nuse_uv = true\n'
        f'pre_build_commands = ["echo {nonce}"]\n\n'
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\nconda = "conda_pkglist.txt"\n'
    )
    marker = f'python_version > "2.{int(nonce, 16) % 10**9}"'
    (app / "requirements.txt").write_text(f"six==1.16.0; {marker}\n")
    (app / "conda_pkglist.txt").write_text(f"-c {channel}\nalpha\n")
    (app / "main.py").write_text("print('x')\n")
    return app


def step_lines(app: Path, target: EngineTarget, cache: Path, *steps: str) -> list[str]:
    events: list[Event] = []
    result, _, _ = build(
        app, engine=target.address, tls=target.tls, cache_dir=cache, ca_bundle=CA, on_event=events.append
    )
    for step in steps:
        assert not result.step(step).cached
    return [e.line for e in events if isinstance(e, StepLog) and e.step in steps]


def test_a_build_backend_cannot_write_the_tools_mount(engine_target: EngineTarget, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex[:12]
    lines = step_lines(evil_project(tmp_path, nonce), engine_target, tmp_path / "cache", "pip")
    # the backend raised (failing the build) unless its write failed with EROFS: the build succeeded
    assert MARKER not in lines
    assert any(ln.strip().startswith("+ evilpkg==0.1") for ln in lines), lines[-10:]


def test_a_planted_uv_and_py_rattler_are_replaced_never_run(
    engine: EngineClient, engine_target: EngineTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nonce = uuid.uuid4().hex[:12]
    monkeypatch.setenv(SCOPE_ENV, f"poison-{nonce}")  # the victim's caches are shared, on purpose
    plant(engine, f"poison-{nonce}")
    with served_channel(tmp_path / "channel") as (channel, _):
        lines = step_lines(victim_project(tmp_path, channel, nonce), engine_target, tmp_path / "cache", "pip", "conda")
    assert MARKER not in "\n".join(lines)
    assert any(ln.startswith(PLANTED) for ln in lines), lines[:20]
    assert any(ln.startswith(f"uv: installed uv {tools.UV_VERSION} from https://") for ln in lines), lines[:20]
    assert any(ln.startswith(f"tools: {WHEEL} in the tools cache mount is not a pinned file (sha256 ") for ln in lines)
    assert any(ln.startswith(f"conda: fetching py-rattler {tools.RATTLER_VERSION}") for ln in lines)
    assert any(ln.startswith("conda: installed (py-rattler " + tools.RATTLER_VERSION) for ln in lines), lines[-20:]
    assert any(ln.strip() == "+ six==1.16.0" for ln in lines)  # installed by the re-fetched, pinned uv
