"""dockerfile_path builds on the real engine: the CLI's dependency files, exact predictions, cancel, what is served.

Each test writes its own small project under ``tmp_path`` (debian:bookworm-slim
is the only image the local engines have; apt and PyPI go through the proxy,
so pip gets the CA bundle as the build secret builder serves).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from builder.api import build, plan_project
from builder.config import load_config
from builder.engines import BuildOptions
from builder.engines.buildkit import BuildKitEngine
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.dockerfile_build import build_dockerfile, plan_source
from builder.engines.events import StepFinished, StepStarted
from builder.plan.make import make_plan
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network

CA = "/etc/ssl/certs/ca-certificates.crt"
TOML = """[cerebrium.deployment]
name = "df-{name}"
include = ["*"]
exclude = [".*"]

[cerebrium.runtime.custom]
port = 8095
dockerfile_path = "Dockerfile"
"""
PIP_DOCKERFILE = """FROM debian:bookworm-slim
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-pip \\
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY requirements.txt .
RUN --mount=type=secret,id=ca-bundle PIP_CERT=/run/secrets/ca-bundle \\
    pip install --break-system-packages --no-cache-dir -r requirements.txt
"""
#: The engines are shared between runs: a run-unique last instruction keeps "the first build misses" true.
NONCE_STEP = "RUN echo {nonce} > /srv/nonce\n"


def project(root: Path, name: str, dockerfile: str, extra_toml: str = "", files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "cerebrium.toml").write_text(TOML.format(name=name) + extra_toml)
    (root / "Dockerfile").write_text(dockerfile)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run(engine_env: dict[str, str], image: str, script: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", image, "-c", script],
        env=engine_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


def test_dockerfile_installs_the_generated_requirements_and_predictions_hold(
    engine_target: EngineTarget, engine_env: dict[str, str], tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex[:8]
    app = project(
        tmp_path / "app",
        nonce,
        PIP_DOCKERFILE + NONCE_STEP.format(nonce=nonce),
        '\n[cerebrium.dependencies.pip]\nsix = "==1.16.0"\n',
    )
    cache = tmp_path / "cache"
    tag = f"builder-df-pip:{nonce}"
    first, _, notes = build(
        app, engine=engine_target.address, tls=engine_target.tls, tag=tag, cache_dir=cache, ca_bundle=CA
    )
    assert any("requirements.txt" in n.message and "generated" in n.message for n in notes)
    assert first.mismatches == ()
    assert run(engine_env, tag, "cat /srv/requirements.txt") == "six==1.16.0\n"
    assert run(engine_env, tag, "python3 -c 'import six; print(six.__version__)'").strip() == "1.16.0"
    again, analysis, _ = build(
        app, engine=engine_target.address, tls=engine_target.tls, tag=tag, cache_dir=cache, ca_bundle=CA
    )
    assert [s.status for s in analysis.steps] == ["hit", "hit"] and again.mismatches == ()
    assert all(s.cached for s in again.steps)
    # A change of the inline pip table is a predicted rebuild of the dockerfile step, and it happens.
    toml = app / "cerebrium.toml"
    toml.write_text(toml.read_text().replace('"==1.16.0"', '"==1.17.0"'))
    changed, analysis, _ = build(
        app, engine=engine_target.address, tls=engine_target.tls, tag=tag, cache_dir=cache, ca_bundle=CA
    )
    assert dict((s.id.value, s.status) for s in analysis.steps)["dockerfile"] == "miss"
    assert changed.mismatches == () and not changed.step("dockerfile").cached
    assert run(engine_env, tag, "python3 -c 'import six; print(six.__version__)'").strip() == "1.17.0"


def test_a_dockerfile_build_serves_only_the_planned_context(
    engine: EngineClient, engine_env: dict[str, str], tmp_path: Path
) -> None:
    """Finding: local://dockerfile served the Dockerfile's whole directory (.env, .git/config, …)."""
    nonce = uuid.uuid4().hex[:8]
    app = project(
        tmp_path / "app",
        nonce,
        "FROM debian:bookworm-slim\nCOPY . /ctx/\n",
        files={
            "main.py": "print(1)\n",
            ".env": "API_KEY=secret\n",
            ".git/config": "[core]\n",
            "Dockerfile.dockerignore": "main.py\n",
        },
    )
    plan = make_plan(load_config(app))
    tag = f"builder-df-served:{nonce}"
    built = build_dockerfile(engine, plan_source(plan, app), BuildOptions(tag=tag))
    planned = {e.path for e in plan.step("dockerfile").inputs.context.entries}
    assert planned == {"Dockerfile", "Dockerfile.dockerignore", "main.py"}
    assert {t.dir_name for t in built.transfers} == {"context"}  # no other directory was ever asked for
    requested = {path for t in built.transfers for path in t.requested}
    assert requested <= planned and "main.py" in requested
    files = run(engine_env, tag, "cd /ctx && find . -type f | sort").split()
    assert files == ["./Dockerfile", "./Dockerfile.dockerignore", "./main.py"]  # exactly include/exclude


def test_leaving_the_event_iterator_cancels_a_dockerfile_build(engine_target: EngineTarget, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    app = project(tmp_path / "app", nonce[:8], f"FROM debian:bookworm-slim\nRUN sleep 300 # {nonce}\n")
    plan = plan_project(app, record=False)[0]
    seen: list[Any] = []
    with BuildKitEngine.connect(engine_target.address, env=engine_target.env) as engine:
        events = engine.iter_build(plan, app, BuildOptions())
        for event in events:
            seen.append(event)
            if isinstance(event, StepStarted) and "sleep 300" in event.name:
                break
        started = time.monotonic()
        events.close()  # like Ctrl-C in a CLI: the solve is cancelled on the engine, the thread ends
        assert time.monotonic() - started < 30
    assert any(isinstance(e, StepStarted) and "sleep 300" in e.name for e in seen)
    assert not any(isinstance(e, StepFinished) and "sleep 300" in e.name for e in seen)
