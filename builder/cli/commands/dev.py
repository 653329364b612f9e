"""``builder dev [PATH]``: build, run, and rebuild + restart on every edit until Ctrl-C.

Text output (stderr): the build's plain progress, one line per change (what rebuilds and why),
``ready: URL (edit → ready N.N s)``, failures with their log tail, and the app's own log lines
prefixed ``app |``. ``--progress json`` writes one object per line on stdout instead::

    {"event": "change", "paths": ["main.py"]}
    {"event": "plan", "summary": "...", "rebuild": ["files", "shell", "config"], "reason": "...", "sync": false}
    {"event": "step", "id": "files", "cached": false, "seconds": 0.1, "predicted": "miss"}   (the build's events)
    {"event": "ready", "url": "http://127.0.0.1:8090", "seconds": 1.4, "synced": false}
    {"event": "failed", "stage": "build"|"start", "message": "...", "logs": [...], "serving": true}
    {"event": "app", "line": "..."}

Exit 0 after Ctrl-C / SIGTERM (every container the loop started is removed), 2 invalid input,
4 no engine, 5 the engine cannot run containers.
"""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

from builder.cli import output
from builder.cli.commands.engine import add_engine_arguments, tls_from_args
from builder.cli.commands.verify import add_env_arguments, run_env_from_args
from builder.cli.errors import EXIT_OK
from builder.cli.secrets import add_secret_arguments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dev`` command."""
    parser = sub.add_parser(
        "dev",
        help="build and run the app, then rebuild and restart it on every edit",
        description="Build the project (as `builder build`), start the image on the engine's Docker daemon, wait "
        "until it is ready and stream its logs; then watch the files the files step selects, cerebrium.toml, "
        "its paths files and the Dockerfile, and on each change rebuild, replace the container and say how long "
        "edit → ready took. A failed edit leaves the error on screen and the last good container answering. "
        "Ctrl-C removes every container the loop started.",
    )
    parser.add_argument("path", nargs="?", default=".", help="cerebrium.toml or its directory (default: .)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="HOST_PORT",
        help="publish the app on this port of the engine's host (default: the app's port; an "
        "engine without a bridge network runs the app on its own port)",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="when only files of the files step change, copy them into the running container and "
        "restart the app instead of rebuilding first (the image rebuilds in the background)",
    )
    parser.add_argument("--tag", "-t", default=None, help="image name (default: builder-dev-<app>:latest)")
    parser.add_argument("--cache-dir", default=None, help="step cache directory (as for `builder build`)")
    parser.add_argument(
        "--ca-bundle", default=None, help="extra CA certificates for apt/conda/pip steps (default: $BUILDER_CA_BUNDLE)"
    )
    parser.add_argument(
        "--network",
        choices=("host", "none", "default"),
        default=None,
        help="network for build steps (as for `builder build`)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "plain", "json"),
        default="auto",
        help="output: plain lines on stderr (auto), or json objects on stdout",
    )
    add_env_arguments(parser)
    add_secret_arguments(parser, rerun=False)
    add_engine_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the loop in this (the main) thread until Ctrl-C, SIGTERM or SIGHUP."""
    from builder.devloop import DevLoop, DevOptions
    from builder.engines.build_secrets import secrets_from
    from builder.verify import signals_interrupt

    if args.port is not None and not 0 < args.port < 65536:
        from builder.errors import ConfigError

        raise ConfigError(f"{args.port} is not a TCP port", key_path="--port", hint="pass 1..65535")
    options = DevOptions(
        port=args.port,
        sync=args.sync,
        engine=args.engine,
        tls=tls_from_args(args),
        connect_timeout=args.connect_timeout,
        cache_dir=args.cache_dir,
        ca_bundle=args.ca_bundle,
        network=args.network,
        tag=args.tag,
        env=run_env_from_args(args),
        secrets=secrets_from(args.secret),  # read once, kept in memory for every rebuild
    )
    printer = DevPrinter(json_mode=args.progress == "json")
    loop = DevLoop(args.path, options, printer)
    try:
        with signals_interrupt():
            loop.run(threading.Event())
    except KeyboardInterrupt as exc:
        printer.note(f"stopped ({str(exc) or 'Ctrl-C'}); removed every container this loop started")
    return EXIT_OK


class DevPrinter:
    """Turns the loop's events (and the build's) into lines; called from the loop's threads."""

    def __init__(self, *, json_mode: bool) -> None:
        from builder.cli.progress import JsonWriter, PlainWriter

        self.json_mode = json_mode
        self.build = JsonWriter() if json_mode else PlainWriter()
        self._lock = threading.Lock()

    def _json(self, value: dict[str, Any]) -> None:
        output.out(json.dumps(value, ensure_ascii=False))

    def note(self, text: str) -> None:
        with self._lock:
            if self.json_mode:
                self._json({"event": "note", "message": text})
            else:
                output.info(text)

    def __call__(self, event: object) -> None:
        from builder.devloop import DevAppLog, DevChange, DevFailed, DevNote, DevPlanned, DevReady

        with self._lock:
            if isinstance(event, DevChange):
                self._emit(
                    {"event": "change", "paths": list(event.paths)},
                    f"changed: {', '.join(event.paths[:5])}" + (" …" if len(event.paths) > 5 else ""),
                )
            elif isinstance(event, DevPlanned):
                self._emit(
                    {
                        "event": "plan",
                        "summary": event.summary,
                        "rebuild": list(event.rebuild),
                        "reason": event.reason,
                        "sync": event.sync,
                    },
                    event.summary,
                )
            elif isinstance(event, DevReady):
                how = "synced, " if event.synced else ""
                self._emit(
                    {
                        "event": "ready",
                        "url": event.url,
                        "seconds": round(event.seconds, 3),
                        "synced": event.synced,
                        "image": event.image,
                    },
                    f"ready: {event.url} ({how}edit → ready {event.seconds:.1f}s)",
                )
            elif isinstance(event, DevFailed):
                self._failed(event)
            elif isinstance(event, DevAppLog):
                self._emit({"event": "app", "line": event.line}, f"app | {event.line}")
            elif isinstance(event, DevNote):
                self._emit({"event": "note", "message": event.text}, event.text)
            else:
                self.build(event)  # type: ignore[arg-type]

    def _emit(self, value: dict[str, Any], text: str) -> None:
        if self.json_mode:
            self._json(value)
        else:
            output.info(text)

    def _failed(self, event: Any) -> None:
        if self.json_mode:
            self._json(
                {
                    "event": "failed",
                    "stage": event.stage,
                    "message": event.message,
                    "logs": list(event.logs),
                    "hint": event.hint,
                    "serving": event.serving,
                }
            )
            return
        output.error(f"{event.stage} failed: {event.message}")
        for line in event.logs:
            output.info(f"  | {line}")
        if event.hint:
            output.info(f"hint: {event.hint}")
        output.info(
            "the last good container is still answering; waiting for the next edit"
            if event.serving
            else "waiting for the next edit"
        )
