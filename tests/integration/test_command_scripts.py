"""pre_build / shell commands run as ONE bash script (as the Cerebrium CLI runs them), on the real engines.

``builder build`` and the Dockerfile export (built with BuildKit's own ``dockerfile.v0``
frontend) both see an ``export`` or ``cd`` in one command carried into the next, and a failing
command is named with its position in the list.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.cli import main
from builder.engines import BuildOptions
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.dockerfile_build import DockerfileSource, build_dockerfile
from builder.errors import SolveFailed
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network

CA = "/etc/ssl/certs/ca-certificates.crt"


def project(root: Path, pre_build: list[str], shell: list[str]) -> Path:
    root.mkdir(parents=True)
    (root / "main.py").write_text("print('hi')\n")

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in items) + "]"

    (root / "cerebrium.toml").write_text(
        "[cerebrium.deployment]\n"
        f'name = "commands-{uuid.uuid4().hex[:8]}"\n'
        'python_version = "3.11"\ninclude = ["*.py"]\n'
        f"pre_build_commands = {toml_list(pre_build)}\n"
        f"shell_commands = {toml_list(shell)}\n"
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n'
    )
    return root


def read(engine_env: dict[str, str], image: str, *paths: str) -> str:
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--entrypoint", "/bin/cat", image, *paths],
        env=engine_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


def test_state_carries_from_one_command_to_the_next_in_build_and_export(
    tmp_path: Path, engine_target: EngineTarget, engine: EngineClient, engine_env: dict[str, str]
) -> None:
    nonce = uuid.uuid4().hex[:10]
    app = project(
        tmp_path / "app",
        pre_build=[f"export PRE=pre-{nonce}", "mkdir -p /opt/pre && cd /opt/pre", 'echo "$PRE in $PWD" > pre.txt'],
        shell=["export GREETING=hello", "cd /app && mkdir -p out", "cd out", 'echo "$GREETING from $PWD" > g.txt'],
    )
    ours, theirs = f"builder-cmds-ours:{nonce}", f"builder-cmds-export:{nonce}"
    build(
        app, engine=engine_target.address, tls=engine_target.tls, tag=ours, cache_dir=tmp_path / "cache", ca_bundle=CA
    )
    expected = f"pre-{nonce} in /opt/pre\nhello from /app/out\n"
    assert read(engine_env, ours, "/opt/pre/pre.txt", "/app/out/g.txt") == expected

    assert main(["dockerfile", str(app), "-o", str(app), "--cache-dir", str(tmp_path / "cache")]) == 0
    build_dockerfile(engine, DockerfileSource.directory(app), BuildOptions(tag=theirs, ca_bundle=Path(CA)))
    assert read(engine_env, theirs, "/opt/pre/pre.txt", "/app/out/g.txt") == expected


def test_a_failing_command_is_named_with_its_position(tmp_path: Path, engine_target: EngineTarget) -> None:
    nonce = uuid.uuid4().hex[:10]
    app = project(
        tmp_path / "app", pre_build=[], shell=[f"echo start-{nonce}", "test -e /nonexistent", f"echo never-{nonce}"]
    )
    with pytest.raises(SolveFailed) as info:
        build(app, engine=engine_target.address, tls=engine_target.tls, cache_dir=tmp_path / "cache", ca_bundle=CA)
    failure = info.value.failure
    assert failure is not None and failure.step_id == "shell"
    assert "builder: command 2 of 3 failed (exit 1): test -e /nonexistent" in failure.log_tail
    assert f"never-{nonce}" not in "\n".join(ln for ln in failure.log_tail if not ln.startswith("+ "))
