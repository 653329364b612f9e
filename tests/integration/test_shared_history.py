"""Step history shared through the cache, on two real runners: what runner B predicts is what BuildKit does.

Runner A builds the app and exports the cache (to the local registry, or to a directory); runner B,
another engine with a fresh step cache, plans with ``--cache-from``: every step is predicted a hit
from the shared cache, and building observes every step cached.  A pip change on B then rebuilds
exactly pip → files → shell → config, as predicted.  Records whose cache manifest is gone predict
misses that say so.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from builder.api import build, plan_project
from builder.cli import main
from tests.integration.targets import EngineTarget

pytestmark = [pytest.mark.fleet, pytest.mark.network]  # the pip step reaches PyPI through the proxy

CA = "/etc/ssl/certs/ca-certificates.crt"
QUICKSTART = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "quickstart"
REBUILT = ["pip", "files", "shell", "config"]


def _app(tmp_path: Path, registry: str) -> Path:
    """The quickstart app under a name of its own, with files and a pip step no other run shares."""
    app = tmp_path / "app"
    shutil.copytree(QUICKSTART, app)
    name = f"shared-{uuid.uuid4().hex[:10]}"
    base = f"{registry}/debian:bookworm-slim"  # in both runners' image stores already
    toml = app / "cerebrium.toml"
    text = toml.read_text().replace('name = "quickstart"', f'name = "{name}"\ndocker_base_image_url = "{base}"')
    # python and pip are otherwise the same vertices as in other runs (which
    # runner B may keep): a constraint on a package nobody installs makes it this app's own; pip ignores it.
    pip_table = '[cerebrium.dependencies.pip]\nsix = "==1.16.0"\n'
    assert pip_table in text
    toml.write_text(text.replace(pip_table, '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'))
    (app / "requirements.txt").write_text("six==1.16.0\n-c constraints.txt\n")
    (app / "constraints.txt").write_text(f"{name}==1.0\n")
    with (app / "main.py").open("a") as handle:
        handle.write(f"# {name}\n")
    return app


def _plan(app: Path, runner: EngineTarget, cache: Path, cache_from: str) -> dict[str, tuple[str, str]]:
    _, analysis, _ = plan_project(app, cache_dir=cache, engine=runner.address, cache_from=[cache_from], record=False)
    return {s.id.value: (s.status, s.reason) for s in analysis.steps}


def _shared_run(app: Path, runner_a: EngineTarget, runner_b: EngineTarget, tmp_path: Path, to: str, frm: str) -> None:
    """A builds and exports; fresh B predicts every step from the shared cache, then observes exactly that."""
    build(app, engine=runner_a.address, cache_dir=tmp_path / "cache-a", ca_bundle=CA, cache_to=[to], cache_from=[])
    fresh = tmp_path / "cache-b"
    predicted = _plan(app, runner_b, fresh, frm)
    assert {status for status, _ in predicted.values()} == {"hit"}, predicted
    assert all(reason.startswith("hit: shared cache ") for _, reason in predicted.values()), predicted

    result, analysis, _ = build(app, engine=runner_b.address, cache_dir=fresh, ca_bundle=CA, cache_from=[frm])
    assert analysis.predicted_for is not None and analysis.predicted_for["cache_from"]
    assert result.mismatches == ()
    assert all(step.cached for step in result.steps), [(s.step, s.cached) for s in result.steps]


def test_runner_b_predicts_and_observes_the_registry_cache_of_runner_a(
    tmp_path: Path, registry: str, unique_repo: str, runner_a: EngineTarget, runner_b: EngineTarget
) -> None:
    app = _app(tmp_path, registry)
    ref = f"{registry}/{unique_repo}:cache"
    _shared_run(app, runner_a, runner_b, tmp_path, f"type=registry,ref={ref},mode=max", f"type=registry,ref={ref}")

    requirements = app / "requirements.txt"
    requirements.write_text(requirements.read_text().replace("six==1.16.0", "six==1.17.0"))
    args = ["--engine", runner_b.address, "--cache-dir", str(tmp_path / "cache-b"), "--cache-from", ref]
    assert main(["plan", str(app), *args, "--format", "json", "--no-record"]) == 0
    fresh = tmp_path / "cache-b"
    predicted = _plan(app, runner_b, fresh, f"type=registry,ref={ref}")
    assert [step for step, (status, _) in predicted.items() if status == "miss"] == REBUILT
    assert predicted["pip"][1] == "pip: six ==1.16.0 → ==1.17.0"
    result, _, _ = build(app, engine=runner_b.address, cache_dir=fresh, ca_bundle=CA, cache_from=[ref])
    assert result.mismatches == ()
    assert [s.step for s in result.steps if not s.cached] == REBUILT


def test_runner_b_predicts_and_observes_the_local_cache_of_runner_a(
    tmp_path: Path, registry: str, runner_a: EngineTarget, runner_b: EngineTarget
) -> None:
    app = _app(tmp_path, registry)
    folder = tmp_path / "shared-cache"
    _shared_run(app, runner_a, runner_b, tmp_path, f"type=local,dest={folder},mode=max", f"type=local,src={folder}")
    records = json.loads((folder / "builder-steps.json").read_text())
    assert records["schema"] == "builder-steps/1" and records["cache_manifest"].startswith("sha256:")

    # the cache's manifest is gone: its records predict nothing, and the misses say why
    manifest = folder / "blobs" / records["cache_manifest"].replace(":", "/", 1)
    manifest.unlink()
    predicted = _plan(app, runner_b, tmp_path / "cache-c", f"type=local,src={folder}")
    assert {status for status, _ in predicted.values()} == {"miss"}
    assert all("cache manifest is gone" in reason for _, reason in predicted.values()), predicted
