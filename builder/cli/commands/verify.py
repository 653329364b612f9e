"""``builder verify IMAGE|PATH``: start a built image and wait until the app is ready.

``PATH`` (cerebrium.toml or its directory) verifies the newest image built for
that app (label ``ai.cerebrium.app``), or ``--tag``, with the port, endpoints
and timeout from the config; ``IMAGE`` reads them back from the image's labels.
Exit 0 when ready, 5 when the app times out or exits (its last 100 log lines
are printed), 4 when no engine answers.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.commands.engine import add_engine_arguments, tls_from_args
from builder.cli.errors import EXIT_OK
from builder.errors import BuilderError, VerifyFailed

if TYPE_CHECKING:  # imported in run(): registering the command must stay cheap
    from builder.engines.docker_api import DockerAPI
    from builder.verify import VerifyResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` command."""
    parser = sub.add_parser(
        "verify",
        help="start a built image and wait for its ready/health checks",
        description="Start IMAGE (or the image built for the project at PATH) on the engine's Docker daemon "
        "with host networking, poll readycheck_endpoint (else a TCP connect to the port), then "
        "healthcheck_endpoint, until ready or deployment_initialization_timeout. Exit 5 with the app's "
        "last 100 log lines when it times out or exits. The container is always removed.",
    )
    parser.add_argument("target", metavar="IMAGE|PATH", help="an image reference, or cerebrium.toml / its directory")
    parser.add_argument(
        "--tag", default=None, help="with PATH: the image to verify (default: newest built for the app)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait, 60..830 (default: deployment_initialization_timeout)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    add_env_arguments(parser)
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """``--env KEY=VALUE`` and ``--env-file FILE``: the app's environment at run time (shared with ``dev``)."""
    parser.add_argument(
        "--env",
        "-e",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a variable in the app's environment (a bare KEY passes yours); repeatable. "
        "Values are never printed and never enter the image, plan or cache",
    )
    parser.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read variables from FILE (docker's format: KEY=VALUE lines, # comments, "
        "a bare KEY passes yours); repeatable, --env wins",
    )


def run_env_from_args(args: argparse.Namespace) -> dict[str, str]:
    """The run-time environment ``--env`` / ``--env-file`` ask for (ConfigError naming a bad file or line)."""
    from builder.runenv import resolve_run_env

    return resolve_run_env(args.env, args.env_file)


def run(args: argparse.Namespace) -> int:
    """Resolve the image and its settings, verify, report (with ``--format json``: a result object either way)."""
    try:
        return _run(args)
    except BuilderError as exc:
        if args.format == "json":
            output.print_json(failure_json(args.target, exc))
        raise


def failure_json(target: str, exc: BuilderError) -> dict[str, object]:
    """The ``--format json`` result of a verification that failed (stdout; the error still goes to stderr)."""
    from builder.cli.errors import exit_code_for

    return {
        "image": target,
        "ready": False,
        "error": exc.message,
        "hint": exc.hint,
        "logs_tail": list(getattr(exc, "logs", ())),
        "exit_code": exit_code_for(exc),
    }


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from builder.api import load_plan_config
    from builder.engines.docker_api import DockerNotFound
    from builder.verify import VerifySettings, docker_for_engine, verify_image

    run_env = run_env_from_args(args)
    docker = docker_for_engine(args.engine, tls=tls_from_args(args), connect_timeout=args.connect_timeout)
    if _is_project(args.target):
        config, warnings = load_plan_config(args.target)
        output.diagnostics(warnings)
        image = args.tag or newest_app_image(docker, config.deployment.name)
        settings = VerifySettings.from_config(config, timeout=args.timeout)
    else:
        image = args.target
        try:
            settings = VerifySettings.from_image(docker.inspect_image(image).get("Config") or {}, timeout=args.timeout)
        except DockerNotFound as exc:
            raise VerifyFailed(
                f"no image {image} on {docker.where}", hint="build it first with `builder build`"
            ) from exc
    settings = replace(settings, env=run_env)
    names = f", environment: {', '.join(sorted(run_env))}" if run_env else ""
    output.info(f"verifying {image}: port {settings.port}, timeout {settings.timeout:g}s{names}")
    result = verify_image(image, settings, docker=docker)
    report(result, args.format)
    return EXIT_OK


def report(result: VerifyResult, fmt: str = "text") -> None:
    """Print a verification result (also used by ``builder build --verify``)."""
    if fmt == "json":
        output.print_json(result.to_json())
    else:
        output.out(f"ready: {result.image} in {result.seconds_to_ready:.1f}s ({'; '.join(result.checks)})")


def _is_project(target: str) -> bool:
    return os.path.isdir(target) or target.endswith(".toml") or os.path.isfile(target)


def newest_app_image(docker: DockerAPI, app: str) -> str:
    """The most recently built image labelled ``ai.cerebrium.app=<app>`` (its first tag, else its id)."""
    images = docker.list_images(label=f"ai.cerebrium.app={app}")
    if not images:
        raise VerifyFailed(
            f"no image built for app {app!r} on {docker.where}", hint="run `builder build` first, or pass --tag IMAGE"
        )
    newest = max(images, key=lambda i: (int(i.get("Created") or 0), str(i.get("Id"))))
    tags = [t for t in newest.get("RepoTags") or [] if t != "<none>:<none>"]
    return min(tags) if tags else str(newest["Id"])
