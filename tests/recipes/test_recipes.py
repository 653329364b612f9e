"""Recipes: the RunSpec of each install step, decided from the plan's data only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.api import plan_project
from builder.plan.model import Plan, Step, StepKind
from builder.plan.steps import base, conda, pip, python
from builder.recipes import RECIPES, RecipeContext, run_specs
from builder.recipes import conda as conda_recipe
from builder.recipes.script_text import script_file, script_text
from tests.conftest import APP_NAMES
from tests.recipes.helpers import pinned, pip_argv, pip_inputs

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"


@pytest.mark.parametrize(
    ("installer", "text", "mounts", "tail"),
    [
        ("uv", "six==1.16.0\n", pip.UV_CACHE, ["offline-first", "/root/.cache/uv/builder-known"]),
        ("uv", "six>=1.16\n", pip.UV_CACHE, ["online"]),
        ("uv", "six==1.16.0\n", (), ["online"]),  # no cache mount: nothing to install offline from
        ("pip", "six==1.16.0\n", pip.PIP_CACHE, ["online"]),
    ],
)
def test_offline_first_only_for_pinned_uv_sets_with_a_cache(
    installer: str, text: str, mounts: tuple, tail: list[str]
) -> None:
    argv = pip_argv(pip_inputs(installer, text, cache_mounts=mounts))
    assert argv[:2] == ["/bin/sh", "-c"] and argv[2] == script_text("pip.sh")
    assert argv[3:8] == [
        "pip",
        installer,
        "/opt/venv",
        "/run/builder/pip/requirements.txt",
        "/run/builder/pip/constraints.txt",
    ]
    assert argv[8:] == tail
    assert text.strip() not in " ".join(argv)  # requirements arrive as a file, never as argv or script text


def test_the_recipe_reads_pinned_from_the_plan_not_the_text() -> None:
    """The deps layer decides "pinned"; the recipe never re-parses the requirements text."""
    lying = pip.Inputs("uv", "six>=1\n", pinned=True, cache_mounts=pip.UV_CACHE)
    assert pip_argv(lying)[8] == "offline-first"
    honest = pip.Inputs("uv", "six==1.16.0\n", pinned=False, cache_mounts=pip.UV_CACHE)
    assert pip_argv(honest)[8:] == ["online"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("six==1.16.0\n", True),
        ('six==1.16.0\nidna==3.7; python_version < "3.0"\n', True),
        ("six===1.16.0\n", True),
        ("six==1.16.0 --hash=sha256:" + "a" * 64 + "\n", True),
        ("--index-url https://example.org/simple\nsix==1.16.0\n", True),  # index options are not requirements
        ("six>=1.16\n", False),
        ("six==1.*\n", False),
        ("six>=1,<2\n", False),
        ("six\n", False),
        ("pkg @ https://example.org/pkg-1.0-py3-none-any.whl\n", False),
        ("# nothing\n", False),
    ],
)
def test_pinned_is_decided_by_the_deps_layer(text: str, expected: bool) -> None:
    assert pinned(text) is expected


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.sampled_from(["six==1.16.0", "idna>=3", "tomli==2.0.1", "attrs", "rich==13.*"]),
        min_size=1,
        max_size=5,
        unique=True,
    )
)
def test_a_set_is_pinned_exactly_when_every_line_is(lines: list[str]) -> None:
    assert pinned("\n".join(lines) + "\n") is all(ln.count("==") == 1 and "*" not in ln for ln in lines)


def _plan(*steps: Step) -> Plan:
    return Plan("t", steps, 2)


@pytest.mark.parametrize(
    ("platform", "subdir"),
    [("linux/amd64", "linux-64"), ("linux/arm64", "linux-aarch64"), ("linux/arm64/v8", "linux-aarch64")],
)
def test_conda_platform_comes_from_the_base_step(platform: str, subdir: str) -> None:
    plan = _plan(
        Step(StepKind.BASE, "k0", (), base.Inputs("docker.io/library/debian:12", platform)),
        Step(StepKind.PYTHON, "k1", (), python.Inputs("3.11", venv="/srv/venv")),
        Step(StepKind.CONDA, "k2", (), conda.Inputs(("numpy",))),
    )
    spec = run_specs(plan)[StepKind.CONDA]
    (files,) = spec.generated
    assert b'"platform": "%s"' % subdir.encode() in dict(files.files)["spec.json"]
    assert dict(files.files)["install.py"] == script_file("conda_installer.py")
    assert spec.args[-1] == "/srv/venv"  # the python step's venv, read from the plan
    assert dict(spec.env_after)["PATH"].startswith("/srv/venv/bin:/opt/conda/bin:")
    assert conda_recipe.FILES_DIR == files.target


@pytest.mark.parametrize("name", APP_NAMES)
def test_every_running_step_has_a_recipe_and_user_data_only_in_args(name: str) -> None:
    plan, _, _ = plan_project(APPS / name, record=False)
    specs = run_specs(plan)
    assert set(specs) == {s.id for s in plan.steps if s.id in RECIPES}
    for spec in specs.values():
        assert spec.argv()[len(spec.shell)] == script_text(spec.script)
        assert spec.label and spec.command
        assert "\n" not in spec.label


def test_script_tokens_are_checked(tmp_path: Path) -> None:
    from builder.recipes import script_text as module

    with pytest.raises(ValueError, match="unknown token @NOPE@"):
        module._value("x.sh", "NOPE")
    for name in (
        "python.sh",
        "apt.sh",
        "pip.sh",
        "commands.sh",
        "conda.sh",
        "secret_env.sh",
        "tools_uv.sh",
        "tools_rattler.sh",
    ):
        assert not re.search(r"@[A-Z][A-Z0-9_]*@", script_text(name)), name  # every token substituted
    assert "uv_boot_py='" + script_file("uv_boot.py").decode() + "'\n" in script_text("tools_uv.sh")
    assert "wheel_check_py='" + script_file("wheel_check.py").decode() + "'\n" in script_text("tools_rattler.sh")


def test_recipe_context_defaults_without_base_or_python() -> None:
    ctx = RecipeContext.of(_plan())
    assert (ctx.platform, ctx.venv, ctx.conda_platform) == ("linux/amd64", "/opt/venv", "linux-64")


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_exporter_imports_nothing_from_buildkit_and_nothing_imports_the_scripts() -> None:
    root = Path(__file__).resolve().parents[2] / "builder"
    assert not {m for m in _imports(root / "engines" / "dockerfile_export.py") if m.startswith("builder.engines.")}
    for module in root.rglob("*.py"):
        if "scripts" in module.relative_to(root).parts[:-1]:
            continue
        assert not {m for m in _imports(module) if m.startswith("builder.recipes.scripts")}, module
    assert not (root / "recipes" / "scripts" / "__init__.py").exists()  # data files, not a package
    pyproject = (root.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"recipes/scripts/*"' in pyproject  # shipped in the wheel as package data


@pytest.mark.parametrize(
    ("runtime", "app_dir"),
    [("", "/cortex"), ('[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n', "/app")],
)
def test_local_requirements_are_installed_where_the_project_ends_up(tmp_path: Path, runtime: str, app_dir: str) -> None:
    """An editable install records its path: the pip step must mount the project where the files step puts it."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "setup.py").write_text("from setuptools import setup\nsetup(name='pkg')\n")
    (tmp_path / "main.py").write_text("def f():\n    return 1\n")
    (tmp_path / "requirements.txt").write_text("-e ./pkg\n")
    (tmp_path / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "local"\npython_version = "3.11"\ninclude = ["*"]\n'
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n' + runtime
    )
    plan = plan_project(tmp_path, record=False)[0]
    spec = run_specs(plan)[StepKind.PIP]
    assert spec.project is not None
    assert spec.project.target == spec.workdir == plan.step(StepKind.FILES).inputs.dest == app_dir
