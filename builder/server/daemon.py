"""The warm server: imports builder once, then forks one child per command.

Each child is a copy of a process that has loaded every module but has no
threads, channels or open caches; it takes the client's file descriptors,
working directory, umask and environment, runs the ordinary CLI ``main`` and
exits with its code.  Commands therefore behave exactly as in-process runs,
and one command can never leak state into the next.

The server holds ``s-<fingerprint>.lock`` (flock) for its lifetime, answers
only its own user (SO_PEERCRED), and exits after ``idle`` seconds without work.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

#: Modules a command may need; importing them is the whole point of the server.
WARM_MODULES = (
    "builder.api", "builder.cli.progress", "builder.engines.buildkit.engine",
    "builder.engines.buildkit.session", "builder.engines.buildkit.dockerfile_build",
    "builder.engines.dockerfile", "builder.verify", "builder.deps.lock.uv", "builder.deps.lock.project",
    "builder.plan.render", "cache", "networkx", "grpc._channel", "grpc.experimental",
    "rich.console", "rich.live", "rich.table", "encodings.utf_8_sig", "encodings.idna",
)
MAX_CHILDREN = 16
_HEADER = 4
_MAX_REQUEST = 64 * 1024 * 1024


@dataclass
class _Running:
    pid: int
    conn: socket.socket
    pidfd: int


def warm() -> None:
    """Import what commands use and pre-build the CLI parser (children inherit both)."""
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional module missing only costs its import later
            pass
    import builder.cli as cli

    cli.prebuild_parser()
    # Everything imported so far lives as long as the server: keep the collector off it, so a child's
    # collections neither walk it nor dirty (copy) its shared pages.
    gc.collect()
    gc.freeze()


class Server:
    """One listening socket; ``serve()`` runs until idle or SIGTERM."""

    def __init__(self, socket_file: str, lock_file: str, idle: float) -> None:
        self.socket_file = socket_file
        self.lock_file = lock_file
        self.idle = idle
        self.running: dict[int, _Running] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.lock_fd = -1

    def acquire(self) -> bool:
        """Take the lock file; False when another server with this fingerprint runs."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.lock_fd = fd
        return True

    def bind(self) -> None:
        """Listen on the socket path (a stale socket of a dead server is replaced)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_file)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.socket_file)
        finally:
            os.umask(old)
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, "accept")

    def serve(self) -> None:
        """Accept commands until idle for ``self.idle`` seconds or asked to stop."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        last_work = time.monotonic()
        while True:
            if self.stopping and self.listener is not None:
                self.selector.unregister(self.listener)
                self.listener.close()
                self.listener = None
                self._unlink_socket()
            if self.stopping and not self.running:
                return
            if not self.running and time.monotonic() - last_work > self.idle:
                return
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data[0] == "child":
                    self._reap(key.data[1])
                else:
                    self._client_gone(key.data[1])
            if self.running:
                last_work = time.monotonic()

    def close(self) -> None:
        """Remove the socket (if it is still ours) and release the lock."""
        if self.listener is not None:
            self.listener.close()
            self._unlink_socket()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _unlink_socket(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.socket_file)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            request, fds = _read_request(conn)
        except EOFError:  # a liveness probe (`builder server start`): connected and closed
            conn.close()
            return
        except (OSError, ValueError) as exc:
            _log(f"bad request: {exc}")
            conn.close()
            return
        if self.stopping or len(self.running) >= MAX_CHILDREN:
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError):
                conn.sendall(b"busy\n")
            conn.close()
            return
        self._fork(conn, request, fds)

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:  # the child never returns into the server loop
            code = 1
            try:
                self.selector.close()
                if self.listener is not None:
                    self.listener.close()
                for other in self.running.values():
                    other.conn.close()
                    os.close(other.pidfd)
                os.close(self.lock_fd)
                conn.close()
                code = run_child(request, fds)
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.running[pid] = _Running(pid, conn, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("child", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("conn", pid))
        _log(f"pid {pid}: {' '.join(request['argv'])[:200]}")
        with contextlib.suppress(OSError):
            conn.sendall(f"pid {pid}\n".encode())

    def _reap(self, pid: int) -> None:
        entry = self.running.pop(pid)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code
        self.selector.unregister(entry.pidfd)
        os.close(entry.pidfd)
        self.selector.unregister(entry.conn)
        with contextlib.suppress(OSError):
            entry.conn.sendall(f"exit {code}\n".encode())
        entry.conn.close()

    def _client_gone(self, pid: int) -> None:
        """The client closed its socket while its command runs: interrupt the command (as Ctrl-C would)."""
        entry = self.running[pid]
        try:
            data = entry.conn.recv(1, socket.MSG_PEEK)
        except OSError:
            data = b""
        if data:
            return
        self.selector.unregister(entry.conn)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    conn.settimeout(5.0)
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if not data and not fds:
        raise EOFError
    try:
        if uid != os.getuid():
            raise ValueError(f"connection from uid {uid}")
        if len(fds) != 3 or len(data) < _HEADER:
            raise ValueError("missing standard streams")
        size = int.from_bytes(data[:_HEADER], "big")
        if size > _MAX_REQUEST:
            raise ValueError("request too large")
        body = bytearray(data[_HEADER:])
        while len(body) < size:
            chunk = conn.recv(min(1 << 20, size - len(body)))
            if not chunk:
                raise ValueError("truncated request")
            body += chunk
        request = json.loads(body.decode("utf-8", "surrogateescape"))
        if not isinstance(request, dict) or request.get("v") != 1:
            raise ValueError("unknown protocol version")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    conn.settimeout(None)
    return request, fds


def run_child(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become the client's process (streams, cwd, umask, env) and run the CLI."""
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    # A command is short-lived and allocates a lot: collect young objects far less often than the default 700.
    gc.set_threshold(50_000, 20, 20)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    encoding, errors = request.get("encoding") or "utf-8", request.get("errors") or "strict"
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=encoding)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding=encoding,
                                  errors=errors, line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding=encoding,
                                  errors="backslashreplace", line_buffering=True)
    code = 1
    try:
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["builder", *argv]
        from builder.cli import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - the child must always exit with a code
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _log(text: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {text}\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m builder.server SOCKET LOCK IDLE``: warm up, then serve (the log is stderr)."""
    socket_file, lock_file, idle = (argv or sys.argv[1:])[:3]
    os.chdir("/")  # never keep the first client's directory (or its mount) busy
    server = Server(socket_file, lock_file, float(idle))
    if not server.acquire():
        return 0
    try:
        started = time.perf_counter()
        warm()
        server.bind()
        _log(f"serving {socket_file} (warm-up {time.perf_counter() - started:.2f} s, idle timeout {idle} s)")
        server.serve()
        _log("exiting")
    finally:
        server.close()
    return 0
