"""Step history shared through the cache, on two real runners: what runner B predicts is what BuildKit does.

Runner A builds the app and exports the cache (to the local registry, or to a directory); runner B,
another engine with a fresh step cache, plans with ``--cache-from``: every step is predicted a hit
from the shared cache, and building observes every step cached.  A pip change on B then rebuilds
exactly pip → files → shell → config, as predicted.  Records whose cache manifest is gone predict
misses that say so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from builder.api import build, plan_project
from builder.cli import main
from tests.integration.targets import EngineTarget

pytestmark = [pytest.mark.fleet, pytest.mark.network]  # the pip step reaches PyPI through the proxy

CA = "/etc/ssl/certs/ca-certificates.crt"
QUICKSTART = Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "quickstart"
REBUILT = ["pip", "files", "shell", "config"]


def _registry(method: str, url: str, body: bytes | None = None, media_type: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": media_type} if media_type else {}
    if method == "GET":
        headers["Accept"] = "application/vnd.docker.distribution.manifest.v2+json"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, (response.read(), response.headers)


def _base_of_its_own(registry: str, repository: str, label: str) -> str:
    """The runners' base image with one more label, pushed under a new name (same layers, a config of its own).

    BuildKit keys an image by its config: every step of an app on this base is new to both
    runners, as on fresh CI runners, and no layer another test (or an earlier run) left on runner B
    serves it outside the shared cache.  The layers are the ones the runners hold: nothing to pull.
    """
    v2 = f"http://{registry}/v2"
    _, (body, _) = _registry("GET", f"{v2}/debian/manifests/bookworm-slim")
    manifest = json.loads(body)
    _, (config_bytes, _) = _registry("GET", f"{v2}/debian/blobs/{manifest['config']['digest']}")
    config = json.loads(config_bytes)
    settings = config.get("config") or {}
    settings["Labels"] = {**(settings.get("Labels") or {}), "dev.builder.test": label}
    config["config"] = settings
    config_bytes = json.dumps(config).encode()
    digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    for layer in manifest["layers"]:
        status, _ = _registry("POST", f"{v2}/{repository}/blobs/uploads/?mount={layer['digest']}&from=debian", b"")
        assert status == 201, f"the registry did not mount {layer['digest']}"
    _, (_, headers) = _registry("POST", f"{v2}/{repository}/blobs/uploads/", b"")
    location = headers["Location"]
    upload = f"{location}{'&' if '?' in location else '?'}digest={digest}"
    url = upload if "://" in upload else f"http://{registry}{upload}"
    status, _ = _registry("PUT", url, config_bytes, "application/octet-stream")
    assert status == 201
    manifest["config"] = {**manifest["config"], "digest": digest, "size": len(config_bytes)}
    put = json.dumps(manifest).encode()
    status, _ = _registry("PUT", f"{v2}/{repository}/manifests/bookworm-slim", put, manifest["mediaType"])
    assert status == 201
    return f"{registry}/{repository}:bookworm-slim"


def _app(tmp_path: Path, registry: str) -> Path:
    """The quickstart app under a name of its own, on a base image name of its own, with unique files."""
    app = tmp_path / "app"
    shutil.copytree(QUICKSTART, app)
    name = f"shared-{uuid.uuid4().hex[:10]}"
    base = _base_of_its_own(registry, f"builder-test/{name}-base", name)
    toml = app / "cerebrium.toml"
    text = toml.read_text().replace('name = "quickstart"', f'name = "{name}"\ndocker_base_image_url = "{base}"')
    # BuildKit keys an image by its layers, so the pip step would be the same vertex as in other runs (which
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
