"""``apt``: system packages with ``apt-get install``.

Inputs: ``packages`` (sorted ``name`` / ``name=version`` argv items, validated
by ``builder.deps``), ``no_install_recommends`` and ``cache_mounts`` (apt's
archive and list caches, ``locked`` because apt cannot share them).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.cache_scope import scoped
from builder.plan.context import PlanContext
from builder.plan.model import CacheMount, StepKind
from builder.plan.secret_ids import check_plan_ids, secrets_field

KIND = StepKind.APT
CACHE_MOUNTS = (
    CacheMount("/var/cache/apt", "builder-apt-archives", "locked"),
    CacheMount("/var/lib/apt/lists", "builder-apt-lists", "locked"),
)


@dataclass(frozen=True, slots=True)
class Inputs:
    packages: tuple[str, ...]
    no_install_recommends: bool = True
    cache_mounts: tuple[CacheMount, ...] = CACHE_MOUNTS
    #: Build secret ids mounted at /run/secrets/ID while the step runs (ids only; see builder.plan.secret_ids).
    secrets: tuple[str, ...] = secrets_field()

    def __post_init__(self) -> None:
        check_plan_ids(self.secrets, "apt step")


def inputs(ctx: PlanContext) -> Inputs | None:
    apt = ctx.deps.apt
    if ctx.dockerfile_mode or apt is None or apt.is_empty:
        return None
    return Inputs(apt.args(), cache_mounts=scoped(CACHE_MOUNTS, ctx.cache_scope), secrets=ctx.secret_ids)


def summary(value: Inputs) -> str:
    return "apt-get install " + " ".join(value.packages)
