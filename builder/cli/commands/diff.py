"""``builder diff OLD NEW`` / ``builder diff --git REV1 REV2 [PATH]``: what a change rebuilds.

Plans both sides without any cache and prints, per step, whether its key
changes and why (the check a CI runner posts on a pull request).  Exit 0;
with ``--fail-on-change``, 3 when any step changes.
"""

from __future__ import annotations

import argparse

from builder.cli import output
from builder.cli.errors import EXIT_INVALID, EXIT_MISS, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``diff`` command."""
    parser = sub.add_parser(
        "diff",
        help="compare two configs/projects (or two git revisions) step by step",
        description="Plan OLD and NEW (cerebrium.toml files or project directories) without any cache and "
        "show which steps would change and why. With --git REV1 REV2 [PATH], compare the project at PATH "
        "(default .) between two git revisions.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="OLD NEW (two configs or directories); with --git, the optional project PATH",
    )
    parser.add_argument("--git", nargs=2, metavar=("REV1", "REV2"), help="compare two git revisions")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--fail-on-change", action="store_true", help="exit 3 when any step changes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Diff, print, exit."""
    from builder.api import diff_git, diff_projects
    from builder.plan.render.json import diff_document
    from builder.plan.render.text import render_diff

    if args.git:
        if len(args.paths) > 1:
            output.error("with --git give at most one PATH (the project inside the repository)")
            return EXIT_INVALID
        diff, diagnostics = diff_git(args.git[0], args.git[1], args.paths[0] if args.paths else ".")
    else:
        if len(args.paths) != 2:
            output.error("give OLD and NEW (two configs or project directories), or --git REV1 REV2 [PATH]")
            return EXIT_INVALID
        diff, diagnostics = diff_projects(args.paths[0], args.paths[1])
    output.diagnostics(diagnostics)
    if args.format == "json":
        output.print_json(diff_document(diff))
    else:
        output.out(render_diff(diff))
    return EXIT_MISS if args.fail_on_change and diff.changed else EXIT_OK
