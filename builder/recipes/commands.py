"""``pre_build`` and ``shell``: the user's commands, one ``sh -c`` each, in order (``commands.sh``)."""

from __future__ import annotations

from builder.plan.model import Step
from builder.recipes.context import RecipeContext
from builder.recipes.spec import RunSpec


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    text = " && ".join(inputs.commands)
    return RunSpec(
        kind=step.id,
        script="commands.sh",
        arg0="run",
        args=(inputs.workdir, *inputs.commands),
        shell=tuple(inputs.shell),
        label=text,
        command=text,
    )
