"""``builder build [PATH]``: plan, build on BuildKit, record the steps, report predicted vs observed.

Exit 0 built; 1 a step failed (its command and last 50 log lines are shown)
or the engine cannot do what was asked (e.g. a --cache-to type it does not
offer, named before anything is built); 2 invalid config/options (a bad
--cache-to/--cache-from value); 4 no
engine answers (with how to start one); 130 interrupted (the solve is
cancelled on the engine).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.cache_flags import add_cache_arguments, cache_from_args
from builder.cli.commands.engine import add_engine_arguments, tls_from_args
from builder.cli.errors import EXIT_OK
from builder.cli.resolution import add_resolution_arguments
from builder.cli.secrets import add_secret_arguments
from builder.errors import BuilderError, ConfigError

if TYPE_CHECKING:  # the parser is built on every command: no engine import here
    from builder.engines import StepOutcome


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``build`` command."""
    parser = sub.add_parser(
        "build",
        help="build the app's image on BuildKit",
        description="Plan cerebrium.toml and build it on a BuildKit engine (one vertex per plan step), then "
        "record the steps in the step cache and compare each step's predicted hit/miss with BuildKit's "
        "cached flag. The default network is host on dockerd (the local engine has no bridge) and the "
        "engine's sandbox network on buildkitd. Without [cerebrium.runtime.custom] the image runs "
        "Cerebrium's default runtime (main.py's functions as endpoints) from /cortex on port 8000. Python comes from the base image (python3.X), else "
        "Debian's python3 when it is that version, else `uv python install` (needs network access to "
        "uv's Python download source). Exit codes: 1 step failed, 2 invalid input, 4 no engine.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        help="cerebrium.toml or its directory (default: .)",
    )
    parser.add_argument(
        "--tag",
        "-t",
        help="image name: moby exporter on dockerd, image exporter on buildkitd",
    )
    parser.add_argument(
        "--push",
        action="store_true",
        help="push the image to the registry --tag names (e.g. 127.0.0.1:5000/app:dev); "
        "logins come from $DOCKER_CONFIG/config.json and its credential helpers",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="type=oci|tar|docker,dest=FILE",
        help="also write the result as a tarball received over the session",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="step cache directory (default: $BUILDER_CACHE_DIR, else $XDG_CACHE_HOME/builder)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "json"),
        default="auto",
        help="progress output (json: one object per line on stdout)",
    )
    parser.add_argument(
        "--ca-bundle",
        default=None,
        help="extra CA certificates (PEM) mounted as a secret for apt/conda/pip steps (default: $BUILDER_CA_BUNDLE)",
    )
    parser.add_argument(
        "--network",
        choices=("host", "none", "default"),
        default=None,
        help="network for build steps (default: host on dockerd, default on buildkitd)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="cancel the build after SECONDS")
    parser.add_argument(
        "--engine-history",
        action="store_true",
        help="also record the build in the engine's build history (BuildKit >= 0.11: "
        "`docker buildx history`, Docker Desktop); off by default, it costs time on every build",
    )
    parser.add_argument(
        "--plan",
        dest="plan_file",
        default=None,
        help="build this plan (from `builder plan --format json`) instead of planning",
    )
    add_resolution_arguments(parser, "and install exactly those pins")
    add_secret_arguments(parser)
    add_cache_arguments(parser, export=True)
    parser.add_argument(
        "--verify",
        action="store_true",
        help="then start the image and wait for its ready/health checks (needs --tag and dockerd; "
        "exit 5 when the app does not become ready)",
    )
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build, stream progress, then print the predicted-versus-observed summary."""
    from builder.api import build
    from builder.cli.progress import make_writer

    if args.verify and not args.tag:
        raise ConfigError(
            "--verify needs --tag NAME: the image must be in the engine's image store to run it",
            key_path="--verify",
            hint="add --tag app:dev, or run `builder verify IMAGE` later",
        )
    cache_to, cache_from = cache_from_args(args, "export"), cache_from_args(args, "import")
    writer = make_writer(args.progress)
    try:
        result, _analysis, diagnostics = build(
            args.path,
            engine=args.engine,
            tag=args.tag,
            push=args.push,
            output=args.output,
            cache_dir=args.cache_dir,
            ca_bundle=args.ca_bundle,
            network=args.network,
            timeout=args.timeout,
            plan_file=args.plan_file,
            on_event=writer,
            engine_history=args.engine_history,
            walker=getattr(args, "walker", None),
            resolve=args.resolve,
            refresh=args.refresh,
            offline=args.offline,
            tls=tls_from_args(args),
            connect_timeout=args.connect_timeout,
            secrets=args.secret,
            rerun=args.rerun,
            cache_to=cache_to,
            cache_from=cache_from,
        )
    except BuilderError as exc:
        _completed_table(exc, args.progress)
        if args.progress == "json":  # CI runners reading stdout see the failure as an event too
            failure = getattr(exc, "failure", None)
            output.out(
                json.dumps(
                    {
                        "event": "error",
                        "id": failure.step_id if failure else None,
                        "message": exc.message,
                    },
                    ensure_ascii=False,
                )
            )
        raise
    finally:
        writer.close()
    output.diagnostics(diagnostics)
    if args.progress != "json":
        _table(result.steps)
    for m in result.mismatches:
        seen = "cached" if m.cached else "built"
        output.warn(
            f"step {m.step}: predicted {m.predicted} (step key {m.key}) but BuildKit {seen} it (vertex {m.vertex})"
        )
    if args.progress != "json":
        output.info(f"image: {result.image or '(not exported)'}" + (f" ({result.image_id})" if result.image_id else ""))
        if result.pushed:
            output.info(f"pushed: {result.pushed}")
    elif result.pushed:
        output.out(json.dumps({"event": "pushed", "image": result.pushed}, ensure_ascii=False))
    if args.verify:
        _verify(args, result.image or args.tag)
    return EXIT_OK


def _table(steps: Sequence[StepOutcome]) -> None:
    """The predicted-versus-observed table (stderr)."""
    output.info("step         predicted  observed   seconds")
    for s in steps:
        observed = "cached" if s.cached else "built"
        output.info(f"{s.step:<12} {s.predicted or '-':<10} {observed:<10} {s.seconds:>7.1f}")


def _completed_table(exc: BuilderError, progress: str) -> None:
    """A failed build's table, for the steps that completed before the failure (recorded as built)."""
    completed = getattr(exc, "completed", ())
    if not completed or progress == "json":
        return
    output.info(f"the build failed; {len(completed)} step(s) completed before it and are recorded:")
    _table(completed)
    for s in completed:
        if s.predicted is not None and (s.predicted == "hit") != s.cached:
            seen = "cached" if s.cached else "built"
            output.warn(f"step {s.step}: predicted {s.predicted} (step key {s.key}) but BuildKit {seen} it")


def _verify(args: argparse.Namespace, image: str) -> None:
    """``--verify``: run the built image with the project's port, endpoints and init timeout."""
    from builder.api import load_plan_config
    from builder.cli.commands.verify import report
    from builder.verify import VerifySettings, docker_for_engine, verify_image

    # VerifyUnavailable (exit 5) on a standalone buildkitd
    docker = docker_for_engine(args.engine, tls=tls_from_args(args), connect_timeout=args.connect_timeout)
    config, _warnings = load_plan_config(args.path)
    settings = VerifySettings.from_config(config)
    output.info(f"verifying {image}: port {settings.port}, timeout {settings.timeout:g}s")
    report(
        verify_image(image, settings, docker=docker),
        "json" if args.progress == "json" else "text",
    )
