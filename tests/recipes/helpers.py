"""Build a pip step's RunSpec from requirements text the way a plan does (pinned decided by builder.deps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.deps.pip import parse_requirements_text
from builder.plan.model import Step, StepKind
from builder.plan.steps import pip
from builder.recipes import RecipeContext
from builder.recipes import pip as pip_recipe


def pinned(text: str) -> bool:
    """What the deps layer says about ``text``: does every requirement name exactly one version?"""
    return parse_requirements_text(
        text, rel="requirements.txt", project_dir=Path("/nonexistent"), key_path="cerebrium.dependencies.paths.pip"
    ).all_pinned


def pip_inputs(installer: str, requirements: str, constraints: str = "", **kw: Any) -> pip.Inputs:
    kw.setdefault("cache_mounts", pip.UV_CACHE if installer == "uv" else pip.PIP_CACHE)
    return pip.Inputs(installer, requirements, constraints, pinned=pinned(requirements), **kw)  # type: ignore[arg-type]


def pip_argv(inputs: pip.Inputs) -> list[str]:
    """The argv ``builder build`` runs for a pip step with these inputs."""
    return list(pip_recipe.recipe(Step(StepKind.PIP, "sha256:0", (), inputs), RecipeContext()).argv())
