"""``builder report [PATH|--app NAME]``: cache-hit analysis over the recorded builds.

Text (default), ``--format json`` (schema in ``builder.reports``) or ``--format html`` (one
self-contained page); ``-o FILE`` writes to a file instead of stdout.  Exit 0; 2 for bad
arguments.
"""

from __future__ import annotations

import argparse

from builder.cli import output
from builder.cli.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command."""
    parser = sub.add_parser(
        "report",
        help="hit rates, miss causes, time lost and prediction accuracy over the recorded builds",
        description="Report on every build recorded in the cache: per app and step the builds, hits, misses, "
        "hit rate, seconds spent and saved, bytes added; the miss causes ranked by time lost; how often the "
        "plan's predictions were right; and the trend over time.",
    )
    parser.add_argument(
        "path", nargs="?", default=None, help="a project (cerebrium.toml or its directory): report on its app only"
    )
    parser.add_argument("--app", default=None, help="report on the app of this name only")
    parser.add_argument(
        "--since", default=None, help="only builds since a duration ago (7d, 12h, 30m, 2w) or a date (2026-12-01)"
    )
    parser.add_argument(
        "--engine", default=None, help="only builds on engines whose name contains this (e.g. 'dockerd 20')"
    )
    parser.add_argument("--trend", default="auto", help="trend points: auto, day, or a number of builds")
    parser.add_argument(
        "--format", choices=("text", "json", "html"), default="text", help="output format (default: text)"
    )
    parser.add_argument("-o", "--output", default=None, help="write the report to this file")
    parser.add_argument(
        "--cache-dir", default=None, help="cache directory (default: $BUILDER_CACHE_DIR, else $XDG_CACHE_HOME/builder)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the report and write it in the chosen format."""
    from builder.reports import report

    data = report(
        args.path, app=args.app, since=args.since, engine=args.engine, trend=args.trend, cache_dir=args.cache_dir
    ).to_json()
    if args.format == "json":
        import json

        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    elif args.format == "html":
        from builder.reports.html import render_html

        text = render_html(data)
    else:
        from builder.reports.text import render_text

        text = render_text(data)
    if args.output:
        _write(args.output, text)
        output.info(f"wrote {args.output}")
    else:
        output.out(text.rstrip("\n"))
    return EXIT_OK


def _write(path: str, text: str) -> None:
    from pathlib import Path

    from builder.errors import ConfigError

    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot write the report ({exc.strerror or exc})",
            key_path="--output",
            hint="give -o a path in a writable directory",
        ) from exc
