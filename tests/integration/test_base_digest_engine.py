"""Base image by digest against the real registry and engines: predictions equal what BuildKit does.

- A re-tag of the base image's tag in the local registry (a different image pushed to the same
  tag) is predicted as a full rebuild, the base step's reason naming the old and the new digest,
  and BuildKit rebuilds every step: 0 predicted≠observed, before and after.
- The issue's example: the engine's ``debian:bookworm-slim`` pushed unchanged to the local registry
  and named by its registry reference is predicted as cached after ``base`` (the layers are the
  same), and BuildKit reuses every layer.

Each test pushes images of its own (``unique_repo``) and removes what it created in the engine.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.api import build, plan_project
from builder.plan.images import parse_image
from builder.plan.model import StepKind
from builder.registry import RegistryClient
from tests.integration.targets import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"
DOCKER_TIMEOUT = 180


def docker(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=DOCKER_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"docker {' '.join(args)} failed: {done.stderr[-2000:]}"
    return done.stdout.strip()


def push_variant(env: dict[str, str], source: str, ref: str, marker: str) -> None:
    """Push ``source`` plus one file ``/marker-<marker>`` as ``ref``, then drop it from the engine (so a
    build has to pull it, as a fresh runner would)."""
    container = docker(env, "create", source, "/bin/true")
    try:
        docker(env, "cp", str(Path(__file__)), f"{container}:/marker-{marker}")
        docker(env, "commit", container, ref)
    finally:
        docker(env, "rm", container)
    docker(env, "push", "-q", ref)
    docker(env, "rmi", ref)


def write_app(root: Path, name: str, base: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text("def hello():\n    return 'hi'\n")
    (root / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "{name}"\npython_version = "3.11"\ndocker_base_image_url = "{base}"\n'
    )
    return root


@pytest.fixture
def images(engine_env: dict[str, str]) -> Iterator[list[str]]:
    """Image names the test creates in the engine; removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        subprocess.run(["docker", "rmi", "-f", name], env=engine_env, capture_output=True, timeout=60, check=False)


def observed(result: object) -> dict[str, str]:
    return {s.step: "hit" if s.cached else "miss" for s in result.steps}  # type: ignore[attr-defined]


def test_retag_is_predicted_and_observed_as_a_full_rebuild(
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    registry: str,
    unique_repo: str,
    tmp_path: Path,
    images: list[str],
) -> None:
    retag_scenario(engine_target, engine_env, registry, unique_repo, tmp_path, images)


def test_retag_on_a_containerd_store_runner(
    runner_a: EngineTarget, registry: str, unique_repo: str, tmp_path: Path
) -> None:
    """The same on dockerd 26 with the containerd image store (a fleet runner)."""
    env = {**os.environ, **runner_a.env}
    made: list[str] = []
    try:
        retag_scenario(runner_a, env, registry, unique_repo, tmp_path, made)
    finally:
        for name in made:
            subprocess.run(["docker", "rmi", "-f", name], env=env, capture_output=True, timeout=60, check=False)


def retag_scenario(
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    registry: str,
    unique_repo: str,
    tmp_path: Path,
    images: list[str],
) -> None:
    """Build on a base of its own, re-tag the base in the registry, plan (full rebuild, named) and build."""
    nonce = uuid.uuid4().hex[:10]
    ref = f"{registry}/{unique_repo}:base"
    python_base = f"builder-test-pybase-{nonce}:1"
    images.extend([python_base, ref])
    cache = tmp_path / "cache"
    options = {"engine": engine_target.address, "tls": engine_target.tls, "cache_dir": cache, "ca_bundle": CA}
    # Both images get Python 3.11 from an image with it (its python step is in the engine cache of any
    # other build of debian:bookworm-slim), so the builds below install nothing from the network.
    build(write_app(tmp_path / "pybase", f"pybase-{nonce}", "debian:bookworm-slim"), tag=python_base, **options)
    push_variant(engine_env, python_base, ref, f"v1-{nonce}")
    old = RegistryClient().resolve(parse_image(ref)).digest
    app = write_app(tmp_path / "app", f"retag-{nonce}", ref)

    first, analysis, _ = build(app, resolve=True, **options)
    assert {s.id.value: s.status for s in analysis.steps} == observed(first)
    assert first.mismatches == ()
    assert set(observed(first).values()) == {"miss"}  # a base of its own: nothing was built before

    # Re-tag: another image (other layers: another file) pushed to the same tag.
    push_variant(engine_env, python_base, ref, f"v2-{nonce}")
    new = RegistryClient().resolve(parse_image(ref)).digest
    assert new != old
    cached_plan, cached_analysis, _ = plan_project(app, cache_dir=cache, resolve=True, record=False)
    assert cached_plan.step(StepKind.BASE).inputs.digest == old  # within the TTL: the stored resolution
    assert {s.status for s in cached_analysis.steps} == {"hit"}

    plan, analysis, _ = plan_project(app, cache_dir=cache, refresh=True, record=False)
    assert plan.step(StepKind.BASE).inputs.digest == new
    assert [s.status for s in analysis.steps] == ["miss"] * len(plan.steps)
    reason = analysis.status(StepKind.BASE).reason
    assert reason == f"base: {ref} re-tagged: {old[:19]} → {new[:19]} (invalidates every step)"

    second, analysis2, _ = build(app, resolve=True, **options)  # the refreshed resolution is stored: same plan
    assert [s.status for s in analysis2.steps] == ["miss"] * len(plan.steps)
    assert set(observed(second).values()) == {"miss"}
    assert second.mismatches == ()


def test_same_image_under_a_registry_name_is_predicted_as_buildkit_reuses_it(
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    registry: str,
    unique_repo: str,
    tmp_path: Path,
    images: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ``builder plan`` asks the image store of the engine $DOCKER_HOST names (build asks its --engine's)
    monkeypatch.setenv("DOCKER_HOST", engine_env["DOCKER_HOST"])
    nonce = uuid.uuid4().hex[:10]
    pushed = f"{registry}/{unique_repo}:bookworm-slim"
    images.append(pushed)
    docker(engine_env, "tag", "debian:bookworm-slim", pushed)
    docker(engine_env, "push", "-q", pushed)
    cache = tmp_path / "cache"
    options = {"engine": engine_target.address, "tls": engine_target.tls, "cache_dir": cache, "ca_bundle": CA}
    name = f"same-{nonce}"

    # The engine's own debian:bookworm-slim (no registry answers for docker.io here: its image store does).
    build(write_app(tmp_path / "app", name, "debian:bookworm-slim"), resolve=True, **options)
    local = plan_project(tmp_path / "app", cache_dir=cache, resolve=True, record=False)[0]

    plan, analysis, _ = plan_project(
        write_app(tmp_path / "app", name, pushed), cache_dir=cache, resolve=True, record=False
    )
    assert plan.step(StepKind.BASE).key == local.step(StepKind.BASE).key
    assert plan.step(StepKind.BASE).inputs.digest == RegistryClient().resolve(parse_image(pushed)).digest
    result, analysis, _ = build(tmp_path / "app", resolve=True, **options)
    predicted = {s.id.value: s.status for s in analysis.steps}
    assert predicted == observed(result)
    assert result.mismatches == ()
    # only the config step (its cerebrium.toml names the other reference) is rebuilt
    assert [step for step, status in predicted.items() if status == "miss"] == ["config"]
