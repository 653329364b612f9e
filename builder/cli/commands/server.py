"""``builder server start|status|stop``: the warm server that serves later commands (see builder.server).

``start`` waits until a server for the installed code answers; ``status`` lists
this user's servers (current or stale code, pid, log); ``stop`` asks them to
exit after their running commands finish.  ``BUILDER_SERVER=off`` disables it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal

from builder.cli import output
from builder.cli.errors import EXIT_OK
from builder.errors import BuilderError
from builder.server import paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``server`` command group."""
    parser = sub.add_parser(
        "server",
        help="manage the warm server that runs builder commands without start-up cost",
        description="builder starts a per-user server after a command runs in-process; later commands are "
        "forked from it with everything imported (exactly the same behaviour, without the import time). "
        "It exits after $BUILDER_SERVER_IDLE seconds without work (default 600). BUILDER_SERVER=off disables it.",
    )
    actions = parser.add_subparsers(dest="server_command", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start a server for the installed code and wait until it answers")
    start.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    start.set_defaults(func=run_start)
    actions.add_parser("status", help="list this user's servers").set_defaults(func=run_status)
    actions.add_parser("stop", help="stop this user's servers (running commands finish first)").set_defaults(
        func=run_stop
    )


def run_start(args: argparse.Namespace) -> int:
    """Start (or find) the server for the current code."""
    from builder.server.spawn import start_and_wait

    if not paths.enabled(os.environ):
        raise BuilderError("the warm server is disabled by BUILDER_SERVER", hint="unset BUILDER_SERVER to use it")
    where = start_and_wait(os.environ, timeout=args.timeout)
    if where is None:
        unsafe = paths.check(os.environ)
        if unsafe is not None:
            raise BuilderError(
                f"the server directory is not safe to use: {unsafe}",
                hint=f"set {paths.ENV_DIR} to a directory only you can access (mode 0700), "
                "under directories only you or root can write",
            )
        raise BuilderError("the server did not start", hint=f"see the log in {paths.default_dir(os.environ)}")
    output.out(f"server: {where}")
    return EXIT_OK


def run_status(_args: argparse.Namespace) -> int:
    """One line per server: pid, current/stale code, socket."""
    directory = paths.server_dir(os.environ, create=False)
    current = paths.fingerprint(os.environ)
    found = _servers(directory)
    for pid, print_ in found:
        state = "current" if print_ == current else "stale code (exits when idle)"
        output.out(f"pid {pid}  {state}  {paths.socket_path(directory.path if directory else '', print_)}")
    if not found:
        output.info("no server is running")
    return EXIT_OK


def run_stop(_args: argparse.Namespace) -> int:
    """Ask every server of this user to exit (SIGTERM to the pid in its held lock file)."""
    directory = paths.server_dir(os.environ, create=False)
    stopped = 0
    for pid, _print in _servers(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            stopped += 1
    output.info(f"stopped {stopped} server{'s' if stopped != 1 else ''}")
    return EXIT_OK


def _servers(directory: paths.ServerDir | None) -> list[tuple[int, str]]:
    """(pid, fingerprint) of each server whose lock file is held (a free lock is a dead server)."""
    if directory is None:
        return []
    found = []
    for name in directory.names():
        if not (name.startswith("s-") and name.endswith(".lock")):
            continue
        print_ = name[2:-5]
        try:
            fd = directory.open(name, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.read(fd, 64).decode("ascii", "replace").strip()
                if text.isdigit():
                    found.append((int(text), print_))
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return found
