"""``conda``: conda packages installed into a prefix that goes on PATH.

Inputs: ``specs`` (sorted match specs), ``channels`` (in priority order),
``prefix``, ``lock`` (the conda-lock file's text when the set is locked, else
None) and ``cache_mounts`` (the package cache).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.deps.paths import read_project_file
from builder.plan.cache_scope import scoped
from builder.plan.context import CONDA_PREFIX, PlanContext
from builder.plan.model import CacheMount, StepKind
from builder.plan.secret_ids import check_plan_ids, secrets_field

KIND = StepKind.CONDA
CACHE_MOUNTS = (CacheMount("/root/.cache/rattler", "builder-conda-pkgs", "shared"),)


@dataclass(frozen=True, slots=True)
class Inputs:
    specs: tuple[str, ...]
    channels: tuple[str, ...] = ()
    prefix: str = CONDA_PREFIX
    lock: str | None = None
    cache_mounts: tuple[CacheMount, ...] = CACHE_MOUNTS
    #: Build secret ids mounted at /run/secrets/ID while the step runs (ids only; see builder.plan.secret_ids).
    secrets: tuple[str, ...] = secrets_field()

    def __post_init__(self) -> None:
        check_plan_ids(self.secrets, "conda step")


def inputs(ctx: PlanContext) -> Inputs | None:
    conda = ctx.deps.conda
    if ctx.dockerfile_mode or conda is None or conda.is_empty:
        return None
    lock = None
    if conda.lock_file:
        lock = read_project_file(ctx.config.project_dir, conda.lock_file, key_path="cerebrium.dependencies.conda").text
    return Inputs(
        tuple(sorted(s.spec for s in conda.specs)),
        tuple(conda.channels),
        lock=lock,
        cache_mounts=scoped(CACHE_MOUNTS, ctx.cache_scope),
        secrets=ctx.secret_ids,
    )


def summary(value: Inputs) -> str:
    channels = f" from {', '.join(value.channels)}" if value.channels else ""
    return "conda install " + " ".join(value.specs) + channels + (" (locked)" if value.lock else "")
