"""Step history shared through the cache, on two real runners: what runner B predicts is what BuildKit does.

Runner A builds the app and exports the cache (to the local registry, or to a directory); runner B,
another engine with a fresh step cache, plans with ``--cache-from``: every step is predicted a hit
from the shared cache, and building observes every step cached (also when it exports an image with
``--tag``, whose exporter fetches the cached layers).  A pip change on B then rebuilds
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
from builder.engines.step_records import read_records
from builder.plan.cache_specs import parse_cache_spec
from builder.registry.credentials import Credentials
from tests.integration.fleet import AuthRegistry
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


def _shared_run(
    app: Path, runner_a: EngineTarget, runner_b: EngineTarget, tmp_path: Path, to: str, frm: str, tag: str | None = None
) -> None:
    """A builds and exports; fresh B predicts every step from the shared cache, then observes exactly that.

    With ``tag`` both runners export an image: B's exporter then unpacks the cached layers into its image
    store, under the config step's vertex, which must still count as the hit it is.
    """
    a_tag = f"{tag}-a" if tag else None
    build(
        app,
        engine=runner_a.address,
        tag=a_tag,
        cache_dir=tmp_path / "cache-a",
        ca_bundle=CA,
        cache_to=[to],
        cache_from=[],
    )
    fresh = tmp_path / "cache-b"
    predicted = _plan(app, runner_b, fresh, frm)
    assert {status for status, _ in predicted.values()} == {"hit"}, predicted
    assert all(reason.startswith("hit: shared cache ") for _, reason in predicted.values()), predicted

    result, analysis, _ = build(app, engine=runner_b.address, tag=tag, cache_dir=fresh, ca_bundle=CA, cache_from=[frm])
    assert analysis.predicted_for is not None and analysis.predicted_for["cache_from"]
    assert result.mismatches == ()
    assert tag is None or result.image == tag, result.image
    assert all(step.cached for step in result.steps), [(s.step, s.cached) for s in result.steps]


def test_runner_b_predicts_and_observes_the_registry_cache_of_runner_a(
    tmp_path: Path, registry: str, unique_repo: str, runner_a: EngineTarget, runner_b: EngineTarget
) -> None:
    app = _app(tmp_path, registry)
    ref = f"{registry}/{unique_repo}:cache"
    tag = f"{unique_repo}:b"  # an exported image: its exporter fetches the cached layers (issue #14)
    _shared_run(app, runner_a, runner_b, tmp_path, f"type=registry,ref={ref},mode=max", f"type=registry,ref={ref}", tag)

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


def test_records_travel_with_a_cache_in_the_tls_and_htpasswd_registry(
    tmp_path: Path,
    registry: str,
    auth_registry: AuthRegistry,
    unique_repo: str,
    runner_a: EngineTarget,
    runner_b: EngineTarget,
) -> None:
    """The records are written and read with the build's login and docker's CA folder, like the cache itself."""

    def login(host: str) -> Credentials | None:
        return Credentials(host, auth_registry.user, auth_registry.password) if host == auth_registry.address else None

    app = _app(tmp_path, registry)
    ref = f"{auth_registry.address}/{unique_repo}:cache"
    _, _, warnings = build(
        app,
        engine=runner_a.address,
        cache_dir=tmp_path / "cache-a",
        ca_bundle=CA,
        cache_to=[f"type=registry,ref={ref},mode=max"],
        cache_from=[],
        credentials=login,
    )
    assert not [w.message for w in warnings if "step records" in w.message], warnings
    records = read_records(parse_cache_spec(f"type=registry,ref={ref}", flag="--cache-from"), login)
    assert records is not None and records["cache_manifest"].startswith("sha256:")

    _, analysis, notes = plan_project(
        app,
        cache_dir=tmp_path / "cache-b",
        engine=runner_b.address,
        cache_from=[f"type=registry,ref={ref}"],
        record=False,
        registry_credentials=login,
    )
    assert not [n.message for n in notes if "step records" in n.message], notes
    assert {s.status for s in analysis.steps} == {"hit"}, [(s.id.value, s.reason) for s in analysis.steps]
    assert all(s.reason.startswith("hit: shared cache ") for s in analysis.steps)
