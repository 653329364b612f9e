"""The ``builder`` command line: argument parsing over the Python API.

Each command lives in ``builder.cli.commands.<name>`` and exposes
``register(subparsers)``; the module sets ``func(args) -> int`` as the parser
default.  Every exception goes through the single funnel in
``builder.cli.errors``; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from builder._version import __version__
from builder.cli.errors import run_guarded

if TYPE_CHECKING:
    from builder.plan.protocols import Walker

# Ordered: this is the order of ``builder --help``.  Adding a command is one
# module under commands/ plus one entry here.
COMMANDS: tuple[str, ...] = (
    "validate",
    "schema",
    "engine",
    "lock",
    "cache",
    "plan",
    "diff",
    "build",
    "dockerfile",
    "verify",
    "dev",
    "report",
    "server",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by tests)."""
    parser = argparse.ArgumentParser(
        prog="builder",
        description="Plan, cache and build cerebrium.toml apps on BuildKit.",
    )
    parser.add_argument("--version", action="version", version=f"builder {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"builder.cli.commands.{name}")
        module.register(sub)
    return parser


_prebuilt: argparse.ArgumentParser | None = None


def prebuild_parser() -> None:
    """Build the parser now (the warm server does this once; parsing never mutates it)."""
    global _prebuilt
    _prebuilt = build_parser()


def main(argv: Sequence[str] | None = None, *, walker: Walker | None = None) -> int:
    """Run the CLI and return its exit code (see ``builder.cli.errors``).

    ``walker`` lists project files for the commands that plan (the warm server passes
    one that may have walked the project ahead; see :class:`builder.plan.protocols.Walker`).
    """
    parser = _prebuilt or build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    args.walker = walker
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return run_guarded(args.func, args, debug=bool(args.debug))


def entrypoint() -> None:  # pragma: no cover - console-script shim of older installs
    from builder._launch import main as launch

    launch()
