"""``apt``: ``apt-get install`` of the plan's packages (``apt.sh``; names are argv items)."""

from __future__ import annotations

from builder.plan.model import Step
from builder.recipes.context import RecipeContext
from builder.recipes.spec import CA_BUNDLE, RunSpec, build_secrets


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    flags = ("--no-install-recommends",) if inputs.no_install_recommends else ()
    text = "apt-get install " + " ".join(inputs.packages)
    return RunSpec(
        kind=step.id,
        script="apt.sh",
        arg0="apt",
        args=(*flags, *inputs.packages),
        caches=tuple(inputs.cache_mounts),
        secrets=(CA_BUNDLE, *build_secrets(inputs.secrets)),
        label=text,
        command=text,
    )
