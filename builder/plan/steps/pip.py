"""``pip``: Python packages installed into the virtualenv with uv or pip.

Inputs:

* ``installer``: ``"uv"`` (``use_uv = true``: ``uv pip install``) or ``"pip"``;
* ``requirements_txt`` / ``constraints_txt``: the exact files to install from
  (canonical: sorted lines, index options first; ``-c`` file empty when none);
* ``locked``: True when the set comes from a matching lock;
* ``pinned``: True when every requirement names exactly one version (decided by
  ``builder.deps`` from the specifiers); only then may uv install from its cache
  without asking the index;
* ``venv``: where to install (``<venv>/bin/python``);
* ``cache_mounts``: the installer's download cache (kept across builds);
* ``local``: for local-path / ``-e`` requirements, the project files they
  need — a source reference to the ``files`` step, the project-relative
  ``paths`` and the ``manifest`` of just those files.  The engine copies them
  to the same paths under ``/app`` and installs with ``/app`` as the working
  directory.  Because only their digest enters this key, editing any other
  project file never re-runs pip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from builder.plan.cache_scope import scoped
from builder.plan.context import APP_DIR, VENV, PlanContext
from builder.plan.model import CacheMount, FileManifest, StepKind, StepRef, check_project_path
from builder.plan.secret_ids import check_plan_ids, secrets_field

KIND = StepKind.PIP
UV_CACHE = (CacheMount("/root/.cache/uv", "builder-uv-cache", "shared"),)
PIP_CACHE = (CacheMount("/root/.cache/pip", "builder-pip-cache", "shared"),)


@dataclass(frozen=True, slots=True)
class LocalSource:
    """Project files a step reads from another step's source (pip ⇠ files)."""

    ref: StepRef
    paths: tuple[str, ...]
    manifest: FileManifest
    #: Where the step mounts them (the app directory, where the files step puts them too): an
    #: editable install records this path, so it must be where the project's files end up.
    dest: str = APP_DIR

    def __post_init__(self) -> None:
        for path in self.paths:  # "." is the project itself (``-e .``)
            if path != ".":
                check_project_path(path, "local requirement path")


@dataclass(frozen=True, slots=True)
class Inputs:
    installer: Literal["uv", "pip"]
    requirements_txt: str
    constraints_txt: str = ""
    locked: bool = False
    venv: str = VENV
    cache_mounts: tuple[CacheMount, ...] = PIP_CACHE
    local: LocalSource | None = None
    pinned: bool = False
    #: Build secret ids mounted at /run/secrets/ID while the step runs (ids only; see builder.plan.secret_ids).
    secrets: tuple[str, ...] = secrets_field()

    def __post_init__(self) -> None:
        check_plan_ids(self.secrets, "pip step")

    def source_refs(self) -> tuple[StepRef, ...]:
        return (self.local.ref,) if self.local is not None else ()


def inputs(ctx: PlanContext) -> Inputs | None:
    pip = ctx.deps.pip
    if ctx.dockerfile_mode or pip is None or pip.is_empty:
        return None
    installer: Literal["uv", "pip"] = "uv" if ctx.config.deployment.use_uv else "pip"
    return Inputs(
        installer=installer,
        requirements_txt=pip.requirements_txt(),
        constraints_txt=pip.constraints_txt(),
        locked=pip.locked,
        cache_mounts=scoped(UV_CACHE if installer == "uv" else PIP_CACHE, ctx.cache_scope),
        local=_local(ctx, pip.local_paths),
        pinned=pip.all_pinned,
        secrets=ctx.secret_ids,
    )


def _local(ctx: PlanContext, paths: tuple[str, ...]) -> LocalSource | None:
    if not paths:
        return None
    manifest = ctx.files().manifest.subset(paths)
    for path in paths:
        if not manifest.subset((path,)).entries:
            ctx.warn(
                "cerebrium.dependencies.pip",
                f"local requirement {path!r} matches no selected project file",
                hint="check cerebrium.deployment.include/exclude: the pip step only sees selected files",
            )
    return LocalSource(StepRef(StepKind.FILES, "source"), paths, manifest, ctx.app_dir)


def summary(value: Inputs) -> str:
    lines = [ln for ln in value.requirements_txt.splitlines() if ln and not ln.startswith("--")]
    shown = " ".join(lines[:4]) + (f" (+{len(lines) - 4} more)" if len(lines) > 4 else "")
    return f"{value.installer} install {shown}"
