"""Direct references and index credentials against the real engines.

A package index and a git host run on 127.0.0.1 in the test process (the
build's host network reaches them): a ``git+http://…`` requirement is cloned
and installed as written, and a requirements file whose ``--index-url``
carries ``user:token`` installs from an index that refuses anonymous requests
while the token appears in no plan, key, LLB, step cache record or log.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from builder.api import build, plan_project
from builder.config import load_config
from builder.deps import resolve_dependencies
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.engines.events import Event, StepLog
from builder.plan.make import make_plan
from tests.integration.conftest import EngineTarget
from tests.integration.local_index import LocalIndex, write_wheel

CA = "/etc/ssl/certs/ca-certificates.crt"


def _project(app: Path, requirements: str, *, module: str, apt: str = "", use_uv: bool = False) -> None:
    app.mkdir(parents=True)
    (app / "main.py").write_text("print('x')\n")
    (app / "requirements.txt").write_text(requirements)
    (app / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "direct-refs"\npython_version = "3.11"\nuse_uv = {str(use_uv).lower()}\n'
        f"shell_commands = [\"python -c 'import {module}; print({module}.VALUE)'\"]\n\n"
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n' + apt
    )


def _logs(events: list[Event]) -> list[str]:
    return [e.line for e in events if isinstance(e, StepLog)]


@pytest.mark.parametrize("use_uv", [False, True], ids=["pip", "uv"])
def test_git_requirement_from_a_local_git_host_is_installed_as_written(
    engine_target: EngineTarget, tmp_path: Path, use_uv: bool
) -> None:
    nonce = uuid.uuid4().hex[:10]
    name = f"gitpkg-{nonce}"
    with LocalIndex(tmp_path / "served") as index:
        url, commit = index.add_git_package(name, f"VALUE = 'from-git-{nonce}'\n")
        app = tmp_path / "app"
        _project(
            app,
            f"{name} @ git+{url}@{commit}\n",
            module=name.replace("-", "_"),
            apt='\n[cerebrium.dependencies.apt]\ngit = "latest"\n',
            use_uv=use_uv,
        )
        plan, _, _ = plan_project(app, cache_dir=tmp_path / "cache", record=False)
        assert f"git+{url}@{commit}" in plan.step("pip").inputs.requirements_txt  # keyed by the exact URL
        events: list[Event] = []
        result, _, _ = build(
            app,
            engine=engine_target.address,
            tls=engine_target.tls,
            cache_dir=tmp_path / "cache",
            ca_bundle=CA,
            on_event=events.append,
        )
    assert not result.step("pip").cached
    assert f"from-git-{nonce}" in _logs(events)


@pytest.mark.parametrize("use_uv", [False, True], ids=["pip", "uv"])
def test_index_credentials_reach_the_step_as_a_secret_and_nowhere_else(
    engine_target: EngineTarget, tmp_path: Path, use_uv: bool
) -> None:
    nonce = uuid.uuid4().hex[:10]
    token = f"T0KEN{uuid.uuid4().hex}"
    name = f"authpkg-{nonce}"
    served = tmp_path / "served"
    with LocalIndex(served, auth=("alice", token)) as index:
        write_wheel(served / "files", name, "1.0", f"VALUE = 'from-index-{nonce}'\n")
        app = tmp_path / "app"
        _project(
            app,
            f"--index-url {index.url('simple/', credentials=True)}\n{name}==1.0\n",
            module=name.replace("-", "_"),
            use_uv=use_uv,
        )
        cache = tmp_path / "cache"
        events: list[Event] = []
        result, _, _ = build(
            app,
            engine=engine_target.address,
            tls=engine_target.tls,
            cache_dir=cache,
            ca_bundle=CA,
            on_event=events.append,
        )
        assert index.authorized > 0  # the credentials reached the installer
    assert f"from-index-{nonce}" in _logs(events)
    plan, _, _ = plan_project(app, cache_dir=cache, record=False)
    definition = convert_plan(plan, ConvertOptions(ca_bundle=True, netrc=True)).definition
    places = {
        "plan JSON": json.dumps(plan.to_json()),
        "LLB": definition.to_pb().SerializeToString().decode("latin-1"),
        "keys": " ".join(s.key for s in plan.steps),
        "logs": "\n".join(str(e) for e in events),
        "build result": repr(result),
    }
    for path in cache.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("latin-1")
    assert [where for where, text in places.items() if token in text] == []
    # The key is that of the URL without the credentials: another token plans the same pip key.
    (app / "requirements.txt").write_text((app / "requirements.txt").read_text().replace(token, "another-token"))
    config = load_config(app)
    assert make_plan(config, resolve_dependencies(config)).step("pip").key == plan.step("pip").key
