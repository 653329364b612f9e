"""Dockerfiles on the real engine: the exported Dockerfile matches `builder build`; dockerfile_path apps build.

The export is built with BuildKit's own ``dockerfile.v0`` frontend (our
session serves the project directory minus what the generated ``.dockerignore``
excludes), so nothing of builder's LLB is involved in that image.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from builder.api import build
from builder.cli import main
from builder.config import load_config
from builder.engines import BuildOptions
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.dockerfile_build import DockerfileSource, build_dockerfile
from builder.engines.events import StepFinished
from builder.verify import VERIFY_LABEL, VerifySettings, docker_for_engine, verify_image
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network

CA = "/etc/ssl/certs/ca-certificates.crt"
COMPARED = ("Entrypoint", "Cmd", "ExposedPorts", "WorkingDir", "Labels", "Healthcheck")
LIST_APP = (
    "cd /app && find . \\( -type f -o -type l \\) -printf '%p %m\\n' | sort && find . -type f | sort | xargs sha256sum"
)


def inspect(engine_target: EngineTarget, image: str) -> dict[str, Any]:
    docker = docker_for_engine(engine_target.address, env=engine_target.env)
    config: dict[str, Any] = docker.inspect_image(image)["Config"]
    return config


def app_files(engine_env: dict[str, str], image: str) -> str:
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", image, "-c", LIST_APP],
        env=engine_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


@pytest.mark.parametrize("app_dir", ["quickstart", "dockerfile-app"], indirect=True)
def test_exported_dockerfile_builds_the_same_image(
    app_dir: Path, engine_target: EngineTarget, engine: EngineClient, engine_env: dict[str, str], tmp_path: Path
) -> None:
    app_quickstart = app_dir  # builder's own steps (quickstart) or a user Dockerfile (dockerfile-app)
    nonce = uuid.uuid4().hex[:8]
    ours, theirs = f"builder-df-ours:{nonce}", f"builder-df-export:{nonce}"
    build(
        app_quickstart,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=ours,
        cache_dir=tmp_path / "cache",
        ca_bundle=CA,
    )
    assert (
        main(["dockerfile", str(app_quickstart), "-o", str(app_quickstart), "--cache-dir", str(tmp_path / "cache")])
        == 0
    )
    events: list[Any] = []
    build_dockerfile(
        engine,
        DockerfileSource.directory(app_quickstart),
        BuildOptions(tag=theirs, ca_bundle=Path(CA)),
        on_event=events.append,
    )
    runs = {e.name for e in events if isinstance(e, StepFinished) and "RUN" in e.name}
    assert runs or app_dir.name == "dockerfile-app"
    # The scripts are files in .builder/scripts: a RUN's log line is a short command, not ~12 KB of script.
    assert all("set -e" not in name and len(name) < 1500 for name in runs), sorted(runs)
    a, b = inspect(engine_target, ours), inspect(engine_target, theirs)
    # An empty Cmd reads back as [] from builder's config and as null from the Dockerfile: both mean none.
    assert {k: a.get(k) or None for k in COMPARED} == {k: b.get(k) or None for k in COMPARED}
    env_a = dict(e.partition("=")[::2] for e in a["Env"])
    env_b = dict(e.partition("=")[::2] for e in b["Env"])
    assert env_a == env_b
    files = app_files(engine_env, ours)
    assert "./cerebrium.toml 644" in files and ".builder" not in files
    if app_dir.name == "quickstart":
        assert env_a["PATH"].startswith("/opt/venv/bin:")
        assert "./main.py 644" in files and "./six-version.txt" in files
    assert files == app_files(engine_env, theirs)


def test_dockerfile_path_app_builds_and_verifies(
    app_dockerfile_app: Path, engine_target: EngineTarget, tmp_path: Path
) -> None:
    tag = f"builder-df-app:{uuid.uuid4().hex[:8]}"
    events: list[Any] = []
    result, _, _ = build(
        app_dockerfile_app,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=tag,
        cache_dir=tmp_path / "cache",
        ca_bundle=CA,
        on_event=events.append,
    )
    instructions = [e.name for e in events if isinstance(e, StepFinished) and e.step == "dockerfile"]
    assert any(name.startswith("[") and "COPY app.py" in name for name in instructions)
    assert [s.step for s in result.steps] == ["dockerfile", "config"]
    assert any(isinstance(e, StepFinished) and e.step == "config" for e in events)  # the cerebrium.toml layer
    config = inspect(engine_target, tag)
    assert config["ExposedPorts"] == {"8093/tcp": {}}
    assert config["Cmd"] == ["python3", "app.py"] and config["WorkingDir"] == "/srv"  # the Dockerfile's own
    assert "APP_GREETING=hello" in config["Env"]
    assert config["Labels"]["ai.cerebrium.app"] == "dockerfile-app"
    assert config.get("Healthcheck") is None  # nothing is assumed to run in a user's image; verify probes outside
    docker = docker_for_engine(engine_target.address, env=engine_target.env)
    ready = verify_image(tag, VerifySettings.from_config(load_config(app_dockerfile_app)), docker=docker)
    assert ready.checks == ("GET /ready -> 200", "GET /health -> 200")
    assert docker.list_containers(label=VERIFY_LABEL) == []


def test_dockerfile_path_context_is_the_selected_files(
    app_dockerfile_app: Path, engine_target: EngineTarget, engine_env: dict[str, str], tmp_path: Path
) -> None:
    dockerfile = app_dockerfile_app / "docker" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY . /ctx/\n")
    tag = f"builder-df-ctx:{uuid.uuid4().hex[:8]}"
    build(
        app_dockerfile_app,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=tag,
        cache_dir=tmp_path / "cache",
        ca_bundle=CA,
    )
    out = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "host",
            "--entrypoint",
            "/bin/sh",
            tag,
            "-c",
            "cd /ctx && find . -type f | sort",
        ],
        env=engine_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.split()
    assert out == ["./app.py", "./docker/Dockerfile"]  # notes/ and cerebrium.toml are outside include/exclude
    toml = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--entrypoint", "/bin/cat", tag, "/app/cerebrium.toml"],
        env=engine_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert toml == (app_dockerfile_app / "cerebrium.toml").read_text()  # the config step's layer
