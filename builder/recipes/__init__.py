"""How each step kind runs, as data: one :class:`~builder.recipes.spec.RunSpec` per install step.

The plan says *what* a step installs and *why* it rebuilds; a recipe says *how exactly*: the
script, its argv, mounts, secrets, environment and generated files.  Both lowerings (LLB for
``builder build``, the Dockerfile export) translate the same RunSpec, so they cannot disagree.
Changing what a recipe produces changes the step's LLB: bump the kind's revision in
:mod:`builder.plan.recipes` and regenerate the goldens (``make golden``).

Steps that run nothing (``base``, ``files``, ``config``, ``dockerfile``) have no recipe: they
are an image source, a copy, a file and an image config, which each lowering writes directly.

>>> # specs = run_specs(plan); specs[StepKind.PIP].argv()
"""

from __future__ import annotations

from collections.abc import Callable

from builder.plan.model import Plan, Step, StepKind
from builder.recipes import apt, commands, conda, pip, python
from builder.recipes.context import RecipeContext
from builder.recipes.spec import CA_BUNDLE, GeneratedFiles, ProjectFiles, RunSpec, Secret, ToolsRun

__all__ = [
    "CA_BUNDLE",
    "RECIPES",
    "GeneratedFiles",
    "ProjectFiles",
    "RecipeContext",
    "RunSpec",
    "Secret",
    "ToolsRun",
    "run_spec",
    "run_specs",
]

#: The recipe of every step kind that runs something in the container.
RECIPES: dict[StepKind, Callable[[Step, RecipeContext], RunSpec]] = {
    StepKind.PYTHON: python.recipe,
    StepKind.PRE_BUILD: commands.recipe,
    StepKind.APT: apt.recipe,
    StepKind.CONDA: conda.recipe,
    StepKind.PIP: pip.recipe,
    StepKind.SHELL: commands.recipe,
}


def run_spec(step: Step, ctx: RecipeContext) -> RunSpec | None:
    """The RunSpec of ``step`` (None for a step that runs nothing)."""
    recipe = RECIPES.get(step.id)
    return recipe(step, ctx) if recipe is not None else None


def run_specs(plan: Plan) -> dict[StepKind, RunSpec]:
    """The RunSpec of every step of ``plan`` that runs something, in plan order."""
    ctx = RecipeContext.of(plan)
    return {step.id: spec for step in plan.steps if (spec := run_spec(step, ctx)) is not None}
