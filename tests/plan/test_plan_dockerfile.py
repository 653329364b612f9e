"""The ``dockerfile`` step: generated dependency files, what its key covers, plan-file paths, the config it amends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.api import _read_plan_file
from builder.cli import main
from builder.config import load_config
from builder.errors import PlanError
from builder.plan.make import make_plan
from builder.plan.model import Plan, StepKind
from builder.plan.steps.dockerfile import Inputs

INLINE = """
[cerebrium.dependencies.pip]
six = "==1.16.0"
Requests = "latest"

[cerebrium.dependencies.apt]
curl = "latest"
git = ""

[cerebrium.dependencies.conda]
numpy = "1.26.4"
"""


def with_toml(app: Path, extra: str) -> Path:
    toml = app / "cerebrium.toml"
    toml.write_text(toml.read_text() + extra)
    return app


def plan_of(app: Path) -> Plan:
    return make_plan(load_config(app))


def test_inline_tables_become_the_cli_files_in_the_context(app_dockerfile_app: Path) -> None:
    plan = plan_of(with_toml(app_dockerfile_app, INLINE))
    generated = dict(plan.step(StepKind.DOCKERFILE).inputs.generated)
    assert set(generated) == {"requirements.txt", "pkglist.txt", "conda_pkglist.txt"}
    assert generated["requirements.txt"].splitlines() == ["requests", "six==1.16.0"]
    assert generated["pkglist.txt"] == "curl\ngit\n"
    assert generated["conda_pkglist.txt"].splitlines()[0].startswith("numpy")
    messages = [n.message for n in plan.notes if n.key_path == "cerebrium.dependencies"]
    assert len(messages) == 1 and "requirements.txt, pkglist.txt, conda_pkglist.txt" in messages[0]
    assert "install them in the Dockerfile" not in messages[0]  # it says what is provided instead


def test_no_tables_no_files(app_dockerfile_app: Path) -> None:
    plan = plan_of(app_dockerfile_app)
    assert plan.step(StepKind.DOCKERFILE).inputs.generated == ()
    assert not [n for n in plan.notes if n.key_path.startswith("cerebrium.dependencies")]


def test_a_user_file_of_that_name_wins(app_dockerfile_app: Path) -> None:
    (app_dockerfile_app / "requirements.txt").write_text("flask\n")
    plan = plan_of(with_toml(app_dockerfile_app, INLINE))
    generated = dict(plan.step(StepKind.DOCKERFILE).inputs.generated)
    assert "requirements.txt" not in generated and "pkglist.txt" in generated
    note = next(n for n in plan.notes if n.key_path == "cerebrium.dependencies.pip")
    assert "own requirements.txt" in note.message


def test_a_user_file_outside_the_context_does_not_count(app_dockerfile_app: Path) -> None:
    (app_dockerfile_app / "notes" / "requirements.txt").write_text("flask\n")  # notes/ is excluded
    plan = plan_of(with_toml(app_dockerfile_app, INLINE))
    assert "requirements.txt" in dict(plan.step(StepKind.DOCKERFILE).inputs.generated)


def test_a_change_of_the_inline_pip_table_changes_the_dockerfile_key(app_dockerfile_app: Path) -> None:
    before = plan_of(with_toml(app_dockerfile_app, INLINE))
    toml = app_dockerfile_app / "cerebrium.toml"
    toml.write_text(toml.read_text().replace('six = "==1.16.0"', 'six = "==1.17.0"'))
    after = plan_of(app_dockerfile_app)
    assert before.step(StepKind.DOCKERFILE).key != after.step(StepKind.DOCKERFILE).key
    # Reordering the table is not a change: the files are canonical.
    toml.write_text(
        toml.read_text().replace('six = "==1.17.0"\nRequests = "latest"', 'Requests = "latest"\nsix = "==1.17.0"')
    )
    assert plan_of(app_dockerfile_app).step(StepKind.DOCKERFILE).key == after.step(StepKind.DOCKERFILE).key


def test_no_health_check_is_assumed_for_a_user_image(app_dockerfile_app: Path) -> None:
    image = plan_of(app_dockerfile_app).step(StepKind.CONFIG).inputs.image
    assert image.healthcheck is None
    labels = dict(image.labels)
    assert labels["ai.cerebrium.healthcheck_endpoint"] == "/health"  # the platform's probe still knows it


def test_plan_round_trips_with_generated_files(app_dockerfile_app: Path) -> None:
    plan = plan_of(with_toml(app_dockerfile_app, INLINE))
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside/Dockerfile", "docker/../../x", "", "a\x00b"])
def test_a_plan_file_naming_a_path_outside_the_project_is_refused(
    app_dockerfile_app: Path, tmp_path: Path, path: str
) -> None:
    """Finding: a --plan file could name any Dockerfile (/etc/passwd → /etc served to the engine)."""
    document = plan_of(app_dockerfile_app).to_json()
    step = next(s for s in document["steps"] if s["id"] == "dockerfile")
    step["inputs"]["path"] = path
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(document))
    with pytest.raises(PlanError, match="not a plain path inside the project") as info:
        _read_plan_file(plan_file, "dockerfile-app")
    assert repr(path) in info.value.message and str(plan_file) in info.value.message


def test_a_generated_file_name_from_a_plan_file_is_checked() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Inputs("Dockerfile", "FROM scratch\n", plan_manifest(), generated=(("../../x", ""),))


def plan_manifest() -> object:
    from builder.plan.model import FileManifest

    return FileManifest.of(())


def test_cli_build_with_such_a_plan_is_a_clean_error(
    app_dockerfile_app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = plan_of(app_dockerfile_app).to_json()
    next(s for s in document["steps"] if s["id"] == "dockerfile")["inputs"]["path"] = "/etc/passwd"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(document))
    code = main(
        [
            "build",
            str(app_dockerfile_app),
            "--plan",
            str(plan_file),
            "--engine",
            "unix:///nonexistent/buildkitd.sock",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    out = capsys.readouterr()
    assert code == 2
    assert "/etc/passwd" in out.err and "not a plain path inside the project" in out.err
    assert "Traceback" not in out.err + out.out
