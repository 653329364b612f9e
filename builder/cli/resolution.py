"""The flags that choose how unpinned pip requirements are resolved (``plan`` and ``build`` share them)."""

from __future__ import annotations

import argparse


def add_resolution_arguments(parser: argparse.ArgumentParser, resolve_effect: str) -> None:
    """``--resolve`` (the default) / ``--refresh`` / ``--offline`` / ``--no-resolve``, mutually exclusive.

    ``resolve_effect`` ends the ``--resolve`` help: what resolving means for the command.
    """
    resolving = parser.add_mutually_exclusive_group()
    resolving.add_argument(
        "--resolve",
        action="store_true",
        default=None,
        help=f"(the default) resolve unpinned pip requirements with uv first, {resolve_effect}, and the base "
        "image's tag to its digest (a resolution is reused for $BUILDER_RESOLVE_TTL seconds, default 3600)",
    )
    resolving.add_argument(
        "--refresh",
        action="store_true",
        help="resolve unpinned pip requirements and the base image's tag now, whatever the age of the last resolution",
    )
    resolving.add_argument(
        "--offline",
        action="store_true",
        help="use the last resolution of unpinned pip requirements and of the base image; never ask the index "
        "or the registry",
    )
    resolving.add_argument(
        "--no-resolve",
        dest="resolve",
        action="store_false",
        help="plan unpinned pip requirements and the base image's tag as written, never asking the index or "
        "the registry (air-gapped machines; "
        "also $BUILDER_RESOLVE=off)",
    )
