"""``builder schema``: print the JSON Schema of cerebrium.toml for editors."""

from __future__ import annotations

import argparse

from builder.cli import output
from builder.cli.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``schema`` command."""
    parser = sub.add_parser(
        "schema",
        help="print the JSON Schema of cerebrium.toml",
        description="Print a JSON Schema (draft 2020-12) of cerebrium.toml on stdout, for editor "
        "completion and checking (e.g. Even Better TOML: #:schema ./cerebrium.schema.json).",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the schema."""
    from builder.config.schema import json_schema

    del args
    output.print_json(json_schema())
    return EXIT_OK
