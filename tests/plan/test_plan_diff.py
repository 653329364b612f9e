"""diff_plans / diff_projects / diff_git: compare two plans without any cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from plan_helpers import FULL_TOML, plan_of, write_project

from builder.api import diff_git, diff_projects
from builder.errors import PlanError
from builder.plan import StepKind, diff_plans


def test_identical_plans_have_no_changes(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    diff = diff_plans(plan, plan)
    assert diff.changed == () and diff.cause is None and not diff.config_only


def test_diff_names_cause_and_parents(tmp_path: Path) -> None:
    old = write_project(tmp_path / "old", FULL_TOML)
    new = write_project(tmp_path / "new", FULL_TOML.replace('python_version = "3.11"', 'python_version = "3.12"'))
    diff, _ = diff_projects(old, new)
    assert diff.cause is StepKind.PYTHON
    by_id = {c.id.value: c for c in diff.changes}
    assert by_id["base"].change == "same"
    assert by_id["python"].reason == "python: version 3.11 → 3.12"
    assert by_id["pip"].change == "parent" and by_id["pip"].reason == "parent changed (python)"


def test_each_step_names_the_nearest_changed_step_above_it(tmp_path: Path) -> None:
    """python and the project files both change: pip blames python, shell and config blame files."""
    old = write_project(tmp_path / "old", FULL_TOML, {"main.py": "x = 1\n"})
    new = write_project(
        tmp_path / "new",
        FULL_TOML.replace('python_version = "3.11"', 'python_version = "3.12"'),
        {"main.py": "x = 2\n"},
    )
    diff, _ = diff_projects(old, new)
    reasons = {c.id.value: c.reason for c in diff.changes}
    assert diff.cause is StepKind.PYTHON
    assert reasons["pip"] == "parent changed (python)"
    assert reasons["files"].startswith("files: 1 changed (main.py)")
    assert reasons["shell"] == "parent changed (files)"
    assert [c.id.value for c in diff.changes if c.change == "same"] == ["base"]


def test_a_new_recipe_for_a_step_is_named_as_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same inputs, other key: builder now builds the step differently (its recipe revision changed)."""
    from builder.plan import keys, recipes

    project = write_project(tmp_path / "p", FULL_TOML)
    old = plan_of(project)
    monkeypatch.setattr(keys, "RECIPES", {**recipes.RECIPES, StepKind.PIP: recipes.RECIPES[StepKind.PIP] + 1})
    new = plan_of(project)
    diff = diff_plans(old.to_json(), new)
    assert diff.cause is StepKind.PIP
    assert diff.change_for("pip").change == "recipe"  # type: ignore[union-attr]
    assert "builds the step differently" in diff.change_for("pip").reason  # type: ignore[union-attr]
    assert diff.change_for("files").reason == "parent changed (pip)"  # type: ignore[union-attr]
    assert diff.change_for("apt").change == "same"  # type: ignore[union-attr]


def test_diff_accepts_json_forms_and_reports_removed_steps(tmp_path: Path) -> None:
    old = plan_of(write_project(tmp_path / "old", FULL_TOML))
    new = plan_of(
        write_project(
            tmp_path / "new", FULL_TOML.replace('pre_build_commands = ["echo pre"]', "pre_build_commands = []")
        )
    )
    diff = diff_plans(old.to_json(), new.to_json())
    removed = [c for c in diff.changes if c.change == "removed"]
    assert [c.id for c in removed] == [StepKind.PRE_BUILD]
    assert diff.change_for("apt").reason == "parent changed (pre_build)"  # type: ignore[union-attr]


def test_config_only_diff(tmp_path: Path) -> None:
    old = write_project(tmp_path / "old", FULL_TOML)
    new = write_project(tmp_path / "new", FULL_TOML.replace("cooldown = 1800", "cooldown = 60"))
    diff, _ = diff_projects(old / "cerebrium.toml", new)
    assert diff.config_only
    assert diff.change_for("config").details == ("scaling.cooldown 1800 → 60",)  # type: ignore[union-attr]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_between_git_revisions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    project = write_project(repo / "apps" / "svc", FULL_TOML)
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "add", "-A")
    _git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "one")
    (project / "main.py").write_text("print('v2')\n")
    _git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qam", "two")
    diff, _ = diff_git("HEAD~1", "HEAD", project)
    assert diff.cause is StepKind.FILES
    assert diff.change_for("files").reason == "files: 1 changed (main.py)"  # type: ignore[union-attr]
    same, _ = diff_git("HEAD", "HEAD", project / "cerebrium.toml")
    assert same.changed == ()
    with pytest.raises(PlanError, match="no-such-rev"):
        diff_git("no-such-rev", "HEAD", project)
    with pytest.raises(PlanError, match="invalid git revision"):
        diff_git("--output=/tmp/x", "HEAD", project)


def test_diff_git_outside_a_repository(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", FULL_TOML)
    with pytest.raises(PlanError, match="git"):
        diff_git("HEAD~1", "HEAD", project)
