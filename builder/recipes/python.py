"""``python``: find or install the interpreter, then make the virtualenv (``python.sh``).

This run executes the base image's own programs, so it mounts no tools cache: when it needs uv
(no matching Python in the image), it fetches the pinned uv into a private folder and checks it.
"""

from __future__ import annotations

from builder.plan.cache_scope import scoped
from builder.plan.model import Step
from builder.recipes.context import RecipeContext
from builder.recipes.spec import CA_BUNDLE, RunSpec
from builder.recipes.tools import DEFAULT_PATH
from builder.recipes.tools_mounts import APT_CACHES


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    return RunSpec(
        kind=step.id,
        script="python.sh",
        arg0="python",
        args=(inputs.version, inputs.venv),
        caches=scoped(APT_CACHES, inputs.cache_scope),
        secrets=(CA_BUNDLE,),
        env_after=(("VIRTUAL_ENV", inputs.venv), ("PATH", f"{inputs.venv}/bin:{DEFAULT_PATH}")),
        label=f"python {inputs.version} → {inputs.venv}",
        command=f"install Python {inputs.version} and create the virtualenv {inputs.venv}",
    )
