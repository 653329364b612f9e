"""``builder validate [PATH]``: check cerebrium.toml and report every problem.

Exit 0 when valid (warnings allowed), 2 when invalid.  Text mode prints one
line per problem on stderr; ``--format json`` prints
``{"valid", "errors", "warnings"}`` on stdout.
"""

from __future__ import annotations

import argparse

from builder.cli import output
from builder.cli.errors import EXIT_INVALID, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` command."""
    parser = sub.add_parser(
        "validate",
        help="check cerebrium.toml and list every problem",
        description="Check cerebrium.toml (a file, or the directory holding it), its dependency files, "
        "dockerfile_path and image references - everything `builder plan` checks without an engine - and list "
        "every error and warning with its file, line and key path. Exit 0 when valid, 2 when invalid.",
    )
    parser.add_argument("path", nargs="?", default=".", help="cerebrium.toml or its directory (default: .)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate and report; the exit code says whether the config is valid."""
    from builder.api import check_project

    result = check_project(args.path)
    if args.format == "json":
        output.print_json(
            {
                "valid": result.ok,
                "errors": [d.to_json() for d in result.errors],
                "warnings": [d.to_json() for d in result.warnings],
            }
        )
    else:
        output.diagnostics(result.diagnostics)
        if result.config is not None:
            count = len(result.warnings)
            noun = "warning" if count == 1 else "warnings"
            suffix = f" ({count} {noun})" if count else ""
            output.out(f"{result.config.source_map.file if result.config.source_map else args.path}: valid{suffix}")
    return EXIT_OK if result.ok else EXIT_INVALID
