"""``base``: the base image (``docker_base_image_url``), normalised.

Inputs: ``image`` (fully qualified reference, see ``builder.plan.images``) and
``platform`` (always ``linux/amd64`` for now).  Every other layer sits on it,
so a change here invalidates every step.  Left out when a Dockerfile is used
(its ``FROM`` lines are part of the ``dockerfile`` step).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.context import PlanContext
from builder.plan.images import normalize_image
from builder.plan.model import StepKind

KIND = StepKind.BASE


@dataclass(frozen=True, slots=True)
class Inputs:
    image: str
    platform: str = "linux/amd64"


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    return Inputs(normalize_image(ctx.config.deployment.docker_base_image_url))


def summary(value: Inputs) -> str:
    return value.image
