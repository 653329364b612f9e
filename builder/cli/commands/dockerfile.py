"""``builder dockerfile [PATH] [-o DIR]``: the plan as a Dockerfile for other engines.

Without ``-o`` the Dockerfile goes to stdout (the ``.dockerignore`` and the
generated files are listed on stderr).  With ``-o DIR`` it writes
``DIR/Dockerfile``, ``DIR/.dockerignore`` and the generated files under
``DIR/.builder/``; the build context is the project directory, so ``-o`` the
project directory and ``docker build`` it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.errors import EXIT_OK
from builder.errors import BuilderError

if TYPE_CHECKING:  # imported in run(): registering the command must stay cheap
    from builder.engines.dockerfile import DockerfileExport


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dockerfile`` command."""
    parser = sub.add_parser(
        "dockerfile",
        help="export the build as a Dockerfile and .dockerignore",
        description="Print (or write with -o) a Dockerfile equivalent to the plan: the same steps in the same "
        "order, the same cache mounts and commands, the config as ENTRYPOINT/CMD/EXPOSE/HEALTHCHECK/LABEL, "
        "and a .dockerignore that reproduces include/exclude. The build context is the project directory.",
    )
    parser.add_argument("path", nargs="?", default=".", help="cerebrium.toml or its directory (default: .)")
    parser.add_argument("-o", "--output", metavar="DIR", default=None,
                        help="write Dockerfile, .dockerignore and .builder/ files into DIR (e.g. the project dir)")
    parser.add_argument("--cache-dir", default=None, help="step cache directory (only used for file digests)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, render, print or write."""
    from builder.api import plan_project
    from builder.engines.dockerfile import render_dockerfile

    plan, _analysis, diagnostics = plan_project(args.path, cache_dir=args.cache_dir, record=False)
    output.diagnostics(diagnostics)
    export = render_dockerfile(plan)
    if args.output is None:
        output.out(export.dockerfile.rstrip("\n"))
        extra = ", ".join(p for p, _ in export.files)
        output.info("note: this Dockerfile also needs its .dockerignore" + (f" and {extra}" if extra else "")
                    + "; write them with -o DIR")
        return EXIT_OK
    for written in write_export(export, Path(args.output)):
        output.info(f"wrote {written}")
    project = Path(args.path if os.path.isdir(args.path) else os.path.dirname(args.path) or ".")
    if project.resolve() != Path(args.output).resolve():
        output.warn(f"the build context is the project directory {project}: copy .dockerignore and .builder/ "
                    f"there, or rerun with -o {project}")
    return EXIT_OK


def write_export(export: DockerfileExport, directory: Path) -> list[Path]:
    """Write the export under ``directory``; returns the paths written (generated paths never escape it)."""
    items = [("Dockerfile", export.dockerfile), (".dockerignore", export.dockerignore), *export.files]
    written = []
    root = directory.resolve()
    try:
        for rel, text in items:
            target = (root / rel).resolve()
            if root not in target.parents:
                raise BuilderError(f"refusing to write {rel}: outside {directory}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(directory / rel)
    except OSError as exc:
        raise BuilderError(f"cannot write the Dockerfile export to {directory}: {exc.strerror or exc}") from exc
    return written
