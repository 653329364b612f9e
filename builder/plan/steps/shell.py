"""``shell``: ``shell_commands``, run at the end of the build (after the project files).

Inputs: see ``builder.plan.steps._commands.CommandInputs``.
"""

from __future__ import annotations

from builder.plan.context import PlanContext
from builder.plan.model import StepKind
from builder.plan.steps._commands import CommandInputs as Inputs
from builder.plan.steps._commands import make, summary

KIND = StepKind.SHELL
__all__ = ["KIND", "Inputs", "inputs", "summary"]


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    return make(ctx.config.deployment.shell_commands, ctx.app_dir, ctx.secret_ids)
