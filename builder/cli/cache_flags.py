"""``--cache-to`` / ``--cache-from``: shared build caches in buildx's syntax (``build``; ``plan`` takes ``--cache-from``).

Each flag is repeatable; given flags replace ``$BUILDER_CACHE_TO`` / ``$BUILDER_CACHE_FROM``
(several specs separated by ``;`` or newlines).  Values are parsed here, before any engine is
contacted, so a typo is exit 2 with the flag named.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser is built on every start: the plan package (networkx) loads only when used
    from builder.plan.cache_specs import CacheSpec


def add_cache_arguments(parser: argparse.ArgumentParser, *, export: bool) -> None:
    """Add ``--cache-from`` (and ``--cache-to`` when ``export``)."""
    if export:
        parser.add_argument(
            "--cache-to",
            action="append",
            default=None,
            metavar="SPEC",
            help="export the build cache: type=registry,ref=HOST/REPO:TAG[,mode=max] | type=inline | "
            "type=local,dest=DIR (repeatable; default: $BUILDER_CACHE_TO, ';'-separated)",
        )
    parser.add_argument(
        "--cache-from",
        action="append",
        default=None,
        metavar="SPEC",
        help="import a build cache: type=registry,ref=HOST/REPO:TAG (or just the ref) | type=local,src=DIR "
        "(repeatable; default: $BUILDER_CACHE_FROM, ';'-separated)",
    )


def cache_from_args(args: argparse.Namespace, direction: str) -> tuple[CacheSpec, ...]:
    """The parsed specs of one direction (``"export"``/``"import"``): the flags, else the environment."""
    from builder.plan.cache_specs import parse_cache_specs, specs_from_env

    given = getattr(args, "cache_to" if direction == "export" else "cache_from", None)
    if given is None:
        return specs_from_env(os.environ, "export" if direction == "export" else "import")
    return parse_cache_specs(given, flag="--cache-to" if direction == "export" else "--cache-from")
