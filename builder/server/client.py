"""The thin client: hand this process's argv, cwd, environment and terminal to a warm server.

The server forks a child that runs the ordinary CLI with our stdin/stdout/stderr
file descriptors (passed over the Unix socket), so output, colours and
terminal detection are exactly those of an in-process run.  Signals we receive
(Ctrl-C, SIGTERM, SIGHUP) are forwarded to that child; its exit code becomes ours.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence

from builder.server import paths

PROTOCOL = 1
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_via_server(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Run ``builder ARGV`` in a warm server and return its exit code; None when no server took it.

    None means nothing was run (no server, a busy or mismatched one, a closed
    standard stream, a deleted working directory): the caller runs in-process.
    """
    directory = paths.server_dir(environ, create=False)
    if directory is None:
        return None
    sock = _connect(paths.socket_path(directory, paths.fingerprint(environ)))
    if sock is None:
        return None
    with sock:
        try:
            request = _request(argv, environ)
            sent = socket.send_fds(sock, [request], [0, 1, 2])
            sock.sendall(request[sent:])
            reader = sock.makefile("rb")
            first = reader.readline()
        except OSError:
            return None
        if not first.startswith(b"pid "):
            return None  # refused before anything ran
        # From here on the command is running: whatever happens, never fall back (it would run twice).
        child = int(first[4:])
        previous = {sig: signal.signal(sig, _forwarder(child)) for sig in _FORWARDED}
        try:
            last = reader.readline()
        except OSError:
            last = b""
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if last.startswith(b"exit ") and last[5:].strip().isdigit():
        return int(last[5:])
    sys.stderr.write("error: the builder server stopped before the command finished "
                     "(run it again, or set BUILDER_SERVER=off to run without a server)\n")
    return 1


def _connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _request(argv: Sequence[str], environ: Mapping[str, str]) -> bytes:
    mask = os.umask(0o022)
    os.umask(mask)
    out = sys.stdout
    body = json.dumps({
        "v": PROTOCOL,
        "argv": list(argv),
        "cwd": os.getcwd(),
        "env": dict(environ),
        "umask": mask,
        "encoding": getattr(out, "encoding", None) or "utf-8",
        "errors": getattr(out, "errors", None) or "strict",
    }).encode("utf-8", "surrogateescape")
    return len(body).to_bytes(4, "big") + body


def _forwarder(pid: int):  # type: ignore[no-untyped-def]
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    return forward
