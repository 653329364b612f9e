"""``pre_build``: ``pre_build_commands``, run before any dependency installs.

Inputs: see ``builder.plan.steps._commands.CommandInputs``.
"""

from __future__ import annotations

from builder.plan.context import PlanContext
from builder.plan.model import StepKind
from builder.plan.steps._commands import CommandInputs as Inputs
from builder.plan.steps._commands import make, summary

KIND = StepKind.PRE_BUILD
__all__ = ["KIND", "Inputs", "inputs", "summary"]


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    return make(ctx.config.deployment.pre_build_commands, ctx.app_dir, ctx.secret_ids)
