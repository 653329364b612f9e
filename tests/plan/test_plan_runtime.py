"""The default (Cortex) runtime in the plan: its own step, /cortex, the image config, and predicted upgrades."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest
from plan_helpers import changed, keys_of, plan_of, write_project

from builder.cli import main
from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.convert import convert_plan
from builder.engines.buildkit.image import image_config
from builder.engines.dockerfile_export import render_dockerfile
from builder.errors import PlanError
from builder.plan.model import Plan, StepKind
from builder.plan.steps import runtime
from builder.recipes.script_text import script_file

DEFAULT = """\
[cerebrium.deployment]
name = "cortex"
shell_commands = ["ls"]

[cerebrium.dependencies.pip]
six = "==1.16.0"
"""
CUSTOM = (
    DEFAULT
    + """
[cerebrium.runtime.custom]
port = 8000
entrypoint = ["python", "main.py"]
"""
)
FILES = {"main.py": "def predict(x: int):\n    return x\n"}
SERVER = "/opt/builder/runtime/cortex_server.py"


def test_default_runtime_apps_get_the_server_step_and_live_in_cortex(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", DEFAULT, FILES))
    assert [s.value for s in plan.ids] == ["base", "python", "pip", "runtime", "files", "shell", "config"]
    step = plan.step("runtime")
    data = script_file("cortex_server.py")
    assert step.inputs.name == "cortex" and step.inputs.path == SERVER
    assert step.inputs.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert f'__version__ = "{step.inputs.version}"'.encode() in data
    assert plan.step("files").inputs.dest == "/cortex"
    assert plan.step("shell").inputs.workdir == "/cortex"
    image = plan.step("config").inputs.image
    assert image.entrypoint == (
        "/opt/venv/bin/python",
        SERVER,
        "--app-dir",
        "/cortex",
        "--port",
        "8000",
        "--module",
        "main",
    )
    assert image.working_dir == "/cortex"
    assert "/health" in image.healthcheck.test[-1]
    labels = dict(image.labels)
    assert (labels["ai.cerebrium.readycheck_endpoint"], labels["ai.cerebrium.healthcheck_endpoint"]) == (
        "/ready",
        "/health",
    )
    assert plan.step("config").inputs.toml_path == "/cortex/cerebrium.toml"


def test_custom_runtime_apps_keep_app_and_have_no_runtime_step(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", CUSTOM, FILES))
    assert StepKind.RUNTIME not in plan.ids
    assert plan.step("files").inputs.dest == "/app"
    assert plan.step("config").inputs.image.entrypoint == ("python", "main.py")


def test_cortex_section_entrypoint_picks_the_module(tmp_path: Path) -> None:
    toml = DEFAULT + '\n[cerebrium.runtime.cortex]\nentrypoint = "serve.py"\n'
    plan = plan_of(write_project(tmp_path / "p", toml, {"serve.py": "def f():\n    return 1\n"}))
    assert plan.step("config").inputs.image.entrypoint[-2:] == ("--module", "serve")
    assert StepKind.RUNTIME in plan.ids


def test_a_runtime_upgrade_is_a_predicted_rebuild_of_its_layer_and_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "p", DEFAULT, FILES)
    before = keys_of(root)
    upgraded = runtime.server_bytes().replace(b'__version__ = "', b'__version__ = "9.', 1)
    monkeypatch.setattr(runtime, "server_bytes", lambda: upgraded)
    assert changed(before, keys_of(root)) == {"runtime", "files", "shell", "config"}
    assert plan_of(root).step("runtime").inputs.version.startswith("9.")


def test_editing_the_project_does_not_rebuild_the_runtime(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", DEFAULT, FILES)
    before = keys_of(root)
    (root / "main.py").write_text("def predict(x: int):\n    return x + 1\n")
    assert changed(before, keys_of(root)) == {"files", "shell", "config"}


def _plan(tmp_path: Path) -> Plan:
    return plan_of(write_project(tmp_path / "p", DEFAULT, FILES))


def test_both_lowerings_write_the_shipped_server(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    converted = convert_plan(plan)
    op = ops_pb2.Op.FromString(
        dict(zip(converted.definition.digests, converted.definition.ops, strict=True))[
            converted.digest_of(StepKind.RUNTIME)
        ]
    )
    written = [a.mkfile for a in op.file.actions if a.HasField("mkfile")]
    assert [(f.path, f.data) for f in written] == [(SERVER, script_file("cortex_server.py"))]
    export = render_dockerfile(plan)
    assert f'COPY [".builder/runtime/cortex_server.py", "{SERVER}"]' in export.dockerfile
    assert dict(export.files)[".builder/runtime/cortex_server.py"].encode() == script_file("cortex_server.py")
    assert "!.builder/runtime/cortex_server.py" in export.dockerignore
    assert image_config(plan)["config"]["Entrypoint"][:2] == ["/opt/venv/bin/python", SERVER]


def test_a_plan_made_for_another_server_is_refused(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    step = plan.step("runtime")
    other = dataclasses.replace(step, inputs=dataclasses.replace(step.inputs, digest="sha256:" + "0" * 64))
    stale = dataclasses.replace(plan, steps=tuple(other if s.id is StepKind.RUNTIME else s for s in plan.steps))
    with pytest.raises(PlanError, match="is not the one this builder ships"):
        convert_plan(stale)
    with pytest.raises(PlanError, match="make the plan again|is not the one"):
        render_dockerfile(stale)


def test_plan_text_and_json_show_the_runtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    plan = _plan(tmp_path)
    version = plan.step("runtime").inputs.version
    assert main(["plan", str(tmp_path / "p"), "--cache-dir", str(tmp_path / "c")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if " runtime " in x)
    assert f"cortex {version} (sha256:" in line and SERVER in line
    assert main(["plan", str(tmp_path / "p"), "--cache-dir", str(tmp_path / "c"), "--format", "json"]) == 0
    steps = {s["id"]: s for s in json.loads(capsys.readouterr().out)["steps"]}
    assert steps["runtime"]["inputs"]["version"] == version


def test_the_served_file_must_ship(tmp_path: Path) -> None:
    from builder.errors import ConfigError

    toml = DEFAULT + '\n[cerebrium.runtime.cortex]\nentrypoint = "serve.py"\n'
    with pytest.raises(
        ConfigError, match="serve.py does not exist, but the default runtime serves its functions"
    ) as info:
        plan_of(write_project(tmp_path / "p", toml, FILES))
    assert info.value.key_path == "cerebrium.runtime.cortex.entrypoint"
