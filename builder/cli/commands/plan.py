"""``builder plan [PATH]``: the dry run — which steps will rebuild, and why.

Exit 0; 3 with ``--fail-on-miss`` when any step would rebuild; 2 for an
invalid config.  Warnings go to stderr; the plan to stdout (``--format text``
tree, ``json`` — schema in ``builder.plan.render.json`` — or ``dot``).
Hits are predicted for the engine ``--engine`` names (default ``$BUILDKIT_HOST``, else
auto-detected): a step built only on another engine is a miss that says so; with no
engine reachable, steps built on any engine count and a warning says so.  ``--cache-from``
adds the step records that travel with a shared cache ("hit: shared cache REF").
"""

from __future__ import annotations

import argparse

from builder.cli import output
from builder.cli.cache_flags import add_cache_arguments, cache_from_args
from builder.cli.commands.engine import add_engine_arguments, tls_from_args
from builder.cli.errors import EXIT_MISS, EXIT_OK
from builder.cli.resolution import add_resolution_arguments
from builder.cli.secrets import add_secret_arguments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` command."""
    parser = sub.add_parser(
        "plan",
        help="show the build steps, their cache keys and what would rebuild",
        description="Plan the build of cerebrium.toml (a file, or the directory holding it): every step "
        "with its cache key, hit or miss against the step cache, the reason for each miss and the "
        "estimated time. Exit 3 with --fail-on-miss when anything would rebuild.",
    )
    parser.add_argument("path", nargs="?", default=".", help="cerebrium.toml or its directory (default: .)")
    parser.add_argument(
        "--format", choices=("text", "json", "dot"), default="text", help="output format (default: text)"
    )
    parser.add_argument(
        "--files",
        action="store_true",
        help="with --format json: list every project file in the files step's manifest "
        "(default: a summary of digest, count, bytes and changed paths)",
    )
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 3 when any step would rebuild")
    add_resolution_arguments(parser, "so new releases change the pip key")
    add_cache_arguments(parser, export=False)
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="step cache directory (default: $BUILDER_CACHE_DIR, else $XDG_CACHE_HOME/builder)",
    )
    parser.add_argument("--no-record", action="store_true", help="do not record this plan in the app's history")
    add_secret_arguments(parser)
    add_engine_arguments(parser)  # hits are predicted for this engine (and --cache-from's step records)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, print, and turn misses into exit 3 when asked."""
    from builder.api import plan_project

    # The shared caches the build will import (checked here: a bad value is exit 2 before planning);
    # the shared step history reads the step records kept beside them.
    args.cache_specs_from = cache_from_args(args, "import")
    plan, analysis, diagnostics = plan_project(
        args.path,
        cache_dir=args.cache_dir,
        resolve=args.resolve,
        record=not args.no_record,
        walker=getattr(args, "walker", None),
        refresh=args.refresh,
        offline=args.offline,
        secrets=args.secret,
        rerun=args.rerun,
        engine=args.engine,
        tls=tls_from_args(args),
        connect_timeout=args.connect_timeout,
        cache_from=args.cache_specs_from,
    )
    output.diagnostics(diagnostics)
    if args.format == "json":
        from builder.plan.render.json import plan_document

        output.print_json(plan_document(plan, analysis, files=args.files))
    elif args.format == "dot":
        from builder.plan.render.dot import render_dot

        output.out(render_dot(plan, analysis))
    else:
        from builder.plan.render.text import render_plan

        output.out(render_plan(plan, analysis))
    if args.fail_on_miss and analysis.misses:
        output.info(f"--fail-on-miss: {len(analysis.misses)} step(s) would rebuild")
        return EXIT_MISS
    return EXIT_OK
