"""``--secret`` and ``--rerun``: the build-secret flags ``build``, ``plan`` and ``dev`` share."""

from __future__ import annotations

import argparse


def add_secret_arguments(parser: argparse.ArgumentParser, *, rerun: bool = True) -> None:
    """Add ``--secret`` (repeatable) and, with ``rerun``, ``--rerun STEP`` (repeatable)."""
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="id=NAME,src=FILE|env=VAR",
        help="a build secret, mounted at /run/secrets/NAME in the pre_build, apt, conda, pip and shell steps "
        "(buildx syntax, repeatable; also type=file|env, source=, required=false). Its id is part of those "
        "steps' keys, its value never: pass --rerun STEP to rebuild after the value changes",
    )
    if rerun:
        parser.add_argument(
            "--rerun",
            action="append",
            default=[],
            metavar="STEP",
            help="run STEP (python, pre_build, apt, conda, pip or shell) again whatever the engine cache holds, "
            "and every step built on it (repeatable); keys stay the same, so the next build reuses the new layers",
        )
