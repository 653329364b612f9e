"""Starting a server in the background, detached from the terminal and the caller's session."""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Mapping

from builder.server import paths


def spawn(environ: Mapping[str, str]) -> int | None:
    """Start a server for the current code in the background; its pid, or None when it cannot start.

    The server detaches (new session, stdin from /dev/null, log to its log
    file) and exits on its own if another server with the same fingerprint
    already holds the lock.
    """
    directory = paths.server_dir(environ)
    if directory is None:
        return None
    print_ = paths.fingerprint(environ)
    argv = [
        sys.executable,
        "-P",
        "-m",
        "builder.server",
        paths.socket_path(directory.path, print_),
        os.path.join(directory.path, paths.lock_name(print_)),
        str(paths.idle_seconds(environ)),
    ]
    try:
        log = directory.open(paths.log_name(print_), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except OSError:
        directory.close()
        return None
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
    ]
    try:
        return os.posix_spawn(sys.executable, argv, dict(environ), file_actions=actions, setsid=True)
    except OSError:
        return None
    finally:
        os.close(log)
        directory.close()


def start_and_wait(environ: Mapping[str, str], timeout: float = 30.0) -> str | None:
    """Make sure a server for the current code answers; its socket path, or None after ``timeout``."""
    directory = paths.server_dir(environ)
    if directory is None:
        return None
    try:
        name = paths.socket_name(paths.fingerprint(environ))
        if _answers(directory, name):
            return os.path.join(directory.path, name)
        pid = spawn(environ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(directory, name):
                return os.path.join(directory.path, name)
            if pid is not None and _exited(pid):
                pid = None  # lost the lock race: another server is starting; keep waiting for it
            time.sleep(0.05)
        return None
    finally:
        directory.close()


def _answers(directory: paths.ServerDir, name: str) -> bool:
    """True when a server of our own user listens on ``name``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(directory.address(name))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[1] == os.getuid()
    except OSError:
        return False
    finally:
        sock.close()


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid
