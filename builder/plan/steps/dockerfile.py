"""``dockerfile``: a user Dockerfile (``runtime.custom.dockerfile_path``).

It replaces the whole ``base``..``shell`` chain: the Dockerfile brings its own
``FROM`` and build commands.  Inputs: ``path`` (project-relative), the
``dockerfile`` text, ``build_args`` (none are set from cerebrium.toml today)
and ``context`` — the manifest of the files selected by include/exclude,
which is the whole build context the Dockerfile can see (``.dockerignore`` is
not consulted: include/exclude decide).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.deps.paths import read_project_file
from builder.plan.context import PlanContext
from builder.plan.model import FileManifest, StepKind

KIND = StepKind.DOCKERFILE
KEY_PATH = "cerebrium.runtime.custom.dockerfile_path"


@dataclass(frozen=True, slots=True)
class Inputs:
    path: str
    dockerfile: str
    context: FileManifest
    build_args: tuple[tuple[str, str], ...] = ()


def inputs(ctx: PlanContext) -> Inputs | None:
    runtime = ctx.config.runtime
    if runtime is None or not runtime.dockerfile_path:
        return None
    source = read_project_file(ctx.config.project_dir, runtime.dockerfile_path, key_path=KEY_PATH)
    deps = ctx.deps
    if any(s is not None and not s.is_empty for s in (deps.pip, deps.apt, deps.conda)):
        ctx.warn("cerebrium.dependencies", "dependencies are not installed when a Dockerfile is used",
                 hint="install them in the Dockerfile")
    d = ctx.config.deployment
    for key, value in (("shell_commands", d.shell_commands), ("pre_build_commands", d.pre_build_commands)):
        if any(c.strip() for c in value):
            ctx.warn(f"cerebrium.deployment.{key}", "is ignored when a Dockerfile is used",
                     hint="put the commands in the Dockerfile as RUN lines")
    return Inputs(source.rel, source.text, ctx.files().manifest)


def summary(value: Inputs) -> str:
    return f"docker build -f {value.path} ({len(value.context)} context files)"
