"""The ``builder`` console script: a warm server when one answers, else the CLI in-process.

Kept to the standard library modules a bare interpreter has loaded, so a
command served by a warm server costs an interpreter start and one socket
round trip.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run ``builder`` with ``sys.argv`` (see :mod:`builder.server`)."""
    argv = sys.argv[1:]
    use_server = _serverable(argv)
    if use_server:
        code = _served(argv)
        if code is not None:
            # The command ran elsewhere and this process holds nothing worth finalizing: skip the
            # interpreter's teardown (about 3 ms of a 25 ms served command).
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)
    from builder.cli import main as cli_main

    code = cli_main(argv)
    if use_server:
        _spawn()  # the next command finds everything imported
    sys.exit(code)


# The server only saves time: any failure to reach or start it means running in-process.
# (run_via_server itself never returns None once the server has started the command.)
def _served(argv: list[str]) -> int | None:
    try:
        from builder.server.client import run_via_server

        code = run_via_server(argv, os.environ)
        if code is None:
            _warn_if_unsafe()
        return code
    except Exception:
        return None


def _warn_if_unsafe() -> None:
    """One line on stderr when the server directory is refused (the command then runs in-process)."""
    from builder.server.paths import ENV_DIR, check

    reason = check(os.environ)
    if reason is not None:
        sys.stderr.write(
            f"warning: not using the warm server: {reason} (set {ENV_DIR} to a private directory, "
            "or BUILDER_SERVER=off)\n"
        )


def _spawn() -> None:
    try:
        from builder.server.spawn import spawn

        spawn(os.environ)
    except Exception:
        pass


def _serverable(argv: list[str]) -> bool:
    from builder.server.paths import enabled

    # `dev` runs until Ctrl-C and holds containers: it runs in-process, where its signals land.
    return enabled(os.environ) and not (argv and argv[0] == "server") and "dev" not in argv[:2]
