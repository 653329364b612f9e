"""``dockerfile``: a user Dockerfile (``runtime.custom.dockerfile_path``).

It replaces the whole ``base``..``shell`` chain: the Dockerfile brings its own
``FROM`` and build commands.  Inputs:

* ``path`` (project-relative; checked to stay inside the project, also when
  read back from a plan file) and the ``dockerfile`` text: the build uses
  this text, never the file read again;
* ``context``: the manifest of the files selected by include/exclude, which
  is the whole build context the Dockerfile can see (``.dockerignore`` is not
  consulted: include/exclude decide, and a warning says so);
* ``generated``: ``(name, text)`` files added at the context root, as the
  Cerebrium CLI provides them — ``requirements.txt``, ``pkglist.txt`` and
  ``conda_pkglist.txt`` from the inline ``[cerebrium.dependencies.*]`` tables,
  each only where the context has no file of that name;
* ``build_args`` (none are set from cerebrium.toml today).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from builder.deps.model import ResolvedDependencies
from builder.deps.paths import read_project_file
from builder.plan.context import PlanContext
from builder.plan.model import FileManifest, StepKind, check_project_path

KIND = StepKind.DOCKERFILE
KEY_PATH = "cerebrium.runtime.custom.dockerfile_path"
#: What the CLI generates into a Dockerfile build's context, and from which table.
GENERATED = (("requirements.txt", "pip"), ("pkglist.txt", "apt"), ("conda_pkglist.txt", "conda"))


@dataclass(frozen=True, slots=True)
class Inputs:
    path: str
    dockerfile: str
    context: FileManifest
    build_args: tuple[tuple[str, str], ...] = ()
    generated: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # A plan file is input too: nothing it names may lead outside the project.
        check_project_path(self.path, "the Dockerfile path")
        allowed = dict(GENERATED)
        for name, _ in self.generated:
            if name not in allowed:
                raise ValueError(f"generated file {name!r} is not one of {', '.join(allowed)}")


def inputs(ctx: PlanContext) -> Inputs | None:
    runtime = ctx.config.runtime
    if runtime is None or not runtime.dockerfile_path:
        return None
    source = read_project_file(ctx.config.project_dir, runtime.dockerfile_path, key_path=KEY_PATH)
    manifest = ctx.files().manifest
    generated = _generated(ctx, manifest)
    _warn_ignored(ctx, source.rel)
    return Inputs(source.rel, source.text, manifest, generated=generated)


def dependency_files(deps: ResolvedDependencies) -> dict[str, str]:
    """The files the Cerebrium CLI writes for the inline dependency tables (empty tables write none)."""
    files: dict[str, str] = {}
    if deps.pip is not None and deps.pip.source == "inline" and not deps.pip.is_empty:
        files["requirements.txt"] = deps.pip.requirements_txt()
    if deps.apt is not None and deps.apt.source == "inline" and not deps.apt.is_empty:
        files["pkglist.txt"] = "".join(f"{arg}\n" for arg in deps.apt.args())
    if deps.conda is not None and deps.conda.source == "inline" and not deps.conda.is_empty:
        files["conda_pkglist.txt"] = "".join(f"{s}\n" for s in sorted(s.spec for s in deps.conda.specs))
    return files


def _generated(ctx: PlanContext, manifest: FileManifest) -> tuple[tuple[str, str], ...]:
    files = dependency_files(ctx.deps)
    present = {e.path for e in manifest.entries}
    provided = []
    for name, manager in GENERATED:
        if name not in files:
            continue
        if name in present:
            ctx.warn(
                f"cerebrium.dependencies.{manager}",
                f"the build context has its own {name}; the inline table is not written over it",
                hint=f"move the [cerebrium.dependencies.{manager}] entries into {name}, or rename that file",
            )
            continue
        provided.append((name, files[name]))
    if provided:
        names = ", ".join(name for name, _ in provided)
        ctx.warn(
            "cerebrium.dependencies",
            f"builder does not install dependencies when a Dockerfile is used; the build context gets {names} "
            "generated from the inline tables, as the Cerebrium CLI provides them",
            hint="install them in the Dockerfile, e.g. COPY requirements.txt . then "
            "RUN pip install -r requirements.txt",
        )
    deps = ctx.deps
    if any(s is not None and not s.is_empty and s.source != "inline" for s in (deps.pip, deps.apt, deps.conda)):
        ctx.warn(
            "cerebrium.dependencies.paths",
            "builder does not install dependencies when a Dockerfile is used",
            hint="install the dependency files in the Dockerfile (they are in the build context "
            "when include/exclude select them)",
        )
    return tuple(sorted(provided))  # by name, as the plan's JSON stores (name, text) pairs


def _warn_ignored(ctx: PlanContext, dockerfile: str) -> None:
    d = ctx.config.deployment
    for key, value in (("shell_commands", d.shell_commands), ("pre_build_commands", d.pre_build_commands)):
        if any(c.strip() for c in value):
            ctx.warn(
                f"cerebrium.deployment.{key}",
                "is ignored when a Dockerfile is used",
                hint="put the commands in the Dockerfile as RUN lines",
            )
    root = ctx.config.project_dir
    for name in (".dockerignore", f"{dockerfile}.dockerignore"):
        if os.path.lexists(root / name):
            ctx.warn(
                KEY_PATH,
                f"{name} is not applied: cerebrium.deployment.include/exclude select the build context",
                hint="add its patterns to cerebrium.deployment.exclude",
            )


def summary(value: Inputs) -> str:
    extra = f" + {', '.join(name for name, _ in value.generated)}" if value.generated else ""
    return f"docker build -f {value.path} ({len(value.context)} context files{extra})"
