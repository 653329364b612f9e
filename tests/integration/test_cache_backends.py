"""Shared build caches across runners (issue #14 item 6), on the real fleet engines and registry.

Runner A (fleet-a) builds an app whose shell step is new to every engine (a nonce) and exports the
cache; runner B (fleet-b: another dockerd with its own image store, build cache and step cache) builds
the same app importing it, and BuildKit reports every step after the base image CACHED, the new shell
step included. The base image comes from the local registry on both runners (same manifest digest).
An engine that cannot export a type refuses before anything is built.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from builder.api import build
from builder.engines.events import BuildStarted, Event
from builder.errors import EngineUnsupported
from tests.integration.targets import ENGINE_DIR, EngineTarget, read_env

pytestmark = pytest.mark.fleet

CA = "/etc/ssl/certs/ca-certificates.crt"
BASE = "debian:bookworm-slim"  # pushed to the registry by scripts/engine-up


def make_app(root: Path, registry: str, *, dockerfile: bool = False) -> str:
    """A small app on the registry's base image with a step no engine has run before; returns its nonce."""
    nonce = uuid.uuid4().hex
    root.mkdir(parents=True)
    (root / "main.py").write_text("def run():\n    return 'ok'\n")
    toml = '[cerebrium.deployment]\nname = "cache-app"\npython_version = "3.11"\n'
    if dockerfile:
        (root / "Dockerfile").write_text(f"FROM {registry}/{BASE}\nRUN echo {nonce} > /marker\nCOPY main.py /srv/\n")
        toml += 'include = ["main.py"]\n\n[cerebrium.runtime.custom]\nport = 8000\ndockerfile_path = "Dockerfile"\n'
    else:
        toml += f'docker_base_image_url = "{registry}/{BASE}"\nshell_commands = ["echo {nonce} > /marker"]\n'
    (root / "cerebrium.toml").write_text(toml)
    return nonce


def run(app: Path, runner: EngineTarget, cache: Path, **kwargs: Any) -> tuple[dict[str, bool], list[str]]:
    """Build on ``runner`` with its own step cache; returns step → cached, and the warnings."""
    events: list[Event] = []
    result, _, diagnostics = build(
        app,
        engine=runner.address,
        tls=runner.tls,
        cache_dir=cache,
        ca_bundle=CA,
        resolve=False,
        on_event=events.append,
        **kwargs,
    )
    return {s.step: s.cached for s in result.steps}, [f"{d.key_path}: {d.message}" for d in diagnostics]


def after_base(steps: dict[str, bool]) -> dict[str, bool]:
    return {step: cached for step, cached in steps.items() if step != "base"}


def test_registry_cache_from_runner_a_serves_every_step_on_runner_b(
    registry: str, runner_a: EngineTarget, runner_b: EngineTarget, unique_repo: str, tmp_path: Path
) -> None:
    make_app(tmp_path / "app", registry)
    ref = f"{registry}/{unique_repo}:cache"
    on_a, _ = run(tmp_path / "app", runner_a, tmp_path / "a", cache_to=[f"type=registry,ref={ref},mode=max"])
    assert on_a["shell"] is False  # new to runner A: really built there
    on_b, _ = run(tmp_path / "app", runner_b, tmp_path / "b", cache_from=[ref])  # buildx's bare-ref shorthand
    assert after_base(on_b) == dict.fromkeys(after_base(on_b), True), on_b
    assert "shell" in on_b


def test_local_cache_directory_round_trips_between_runners(
    registry: str, runner_a: EngineTarget, runner_b: EngineTarget, tmp_path: Path
) -> None:
    make_app(tmp_path / "app", registry)
    layout = tmp_path / "shared-cache"
    # The CI pattern: import from and export to the same directory; the first run finds nothing to import.
    on_a, warnings = run(
        tmp_path / "app",
        runner_a,
        tmp_path / "a",
        cache_to=[f"type=local,dest={layout},mode=max"],
        cache_from=[f"type=local,src={layout}"],
    )
    assert on_a["shell"] is False
    assert (
        f"--cache-from: type=local,src={layout}: no cache there yet (no index.json entry 'latest'); built without it"
        in warnings
    )
    index = json.loads((layout / "index.json").read_text())
    [manifest] = [m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "latest"]
    blobs = sorted((layout / "blobs" / "sha256").iterdir())
    assert manifest["digest"].removeprefix("sha256:") in {b.name for b in blobs}
    for blob in blobs:  # every blob the engine wrote through the session is stored under its own digest
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    on_b, _ = run(tmp_path / "app", runner_b, tmp_path / "b", cache_from=[f"type=local,src={layout}"])
    assert after_base(on_b) == dict.fromkeys(after_base(on_b), True), on_b


def test_inline_cache_travels_in_the_pushed_image(
    registry: str, runner_a: EngineTarget, runner_b: EngineTarget, unique_repo: str, tmp_path: Path
) -> None:
    make_app(tmp_path / "app", registry)
    image = f"{registry}/{unique_repo}:img"
    docker_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_HOST": runner_a.env["DOCKER_HOST"]}
    try:
        on_a, _ = run(tmp_path / "app", runner_a, tmp_path / "a", tag=image, cache_to=["type=inline"])
        assert on_a["shell"] is False
        subprocess.run(
            ["docker", "push", "--quiet", image], env=docker_env, check=True, capture_output=True, timeout=120
        )
    finally:  # the runner's image store keeps nothing of this test
        subprocess.run(["docker", "rmi", image], env=docker_env, capture_output=True, timeout=60, check=False)
    on_b, _ = run(tmp_path / "app", runner_b, tmp_path / "b", cache_from=[f"type=registry,ref={image}"])
    assert on_b["shell"] is True, on_b


def test_dockerfile_builds_export_and_import_the_same_way(
    registry: str, runner_a: EngineTarget, runner_b: EngineTarget, unique_repo: str, tmp_path: Path
) -> None:
    make_app(tmp_path / "app", registry, dockerfile=True)
    ref = f"{registry}/{unique_repo}:cache"
    on_a, _ = run(tmp_path / "app", runner_a, tmp_path / "a", cache_to=[f"type=registry,ref={ref},mode=max"])
    assert on_a["dockerfile"] is False
    on_b, _ = run(tmp_path / "app", runner_b, tmp_path / "b", cache_from=[f"type=registry,ref={ref}"])
    assert on_b["dockerfile"] is True, on_b  # the frontend got the imports (cache-imports option)


def test_classic_image_store_refuses_registry_export_before_building(registry: str, tmp_path: Path) -> None:
    env_file = ENGINE_DIR / "dockerd26" / "env"
    if not env_file.is_file():
        pytest.fail("no dockerd26 engine: run `ENGINE=dockerd26 scripts/engine-up` (make engine-up does)")
    classic = EngineTarget("dockerd26", read_env(env_file))
    make_app(tmp_path / "app", registry)
    events: list[Event] = []
    with pytest.raises(EngineUnsupported) as caught:
        build(
            tmp_path / "app",
            engine=classic.address,
            cache_dir=tmp_path / "c",
            resolve=False,
            on_event=events.append,
            cache_to=[f"type=registry,ref={registry}/builder-test/never:cache"],
        )
    message = str(caught.value)
    assert "--cache-to type=registry is not supported on dockerd 26" in message and "classic image store" in message
    assert "type=inline" in (caught.value.hint or "")
    assert not [e for e in events if isinstance(e, BuildStarted)]  # refused before the build started
