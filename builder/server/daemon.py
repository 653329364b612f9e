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
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from builder.server import paths
from builder.server.client import decode_request

if TYPE_CHECKING:
    from builder.server.prewalk import WalkAhead

#: Modules a command may need; importing them is the whole point of the server.
WARM_MODULES = (
    "builder.api",
    "builder.cli.progress",
    "builder.engines.buildkit.engine",
    "builder.engines.buildkit.session",
    "builder.engines.buildkit.dockerfile_build",
    "builder.engines.dockerfile_export",
    "builder.verify",
    "builder.deps.lock.uv",
    "builder.deps.lock.project",
    "builder.plan.render",
    "cache",
    "networkx",
    "grpc._channel",
    "grpc.experimental",
    "rich.console",
    "rich.live",
    "rich.table",
    "encodings.utf_8_sig",
    "encodings.idna",
    "builder.server.prewalk",
    "ctypes",
)
MAX_CHILDREN = 16
_HEADER = 4
_MAX_REQUEST = 64 * 1024 * 1024


@dataclass(eq=False)  # compared by identity: a pid can be reused by a later child
class _Running:
    """A command's child: its pidfd and the client's connection, both registered with the selector."""

    pid: int
    conn: socket.socket
    pidfd: int


@dataclass(eq=False)
class _Spare:
    """A child forked ahead of the next command: it walks the last planned project ahead (see
    :mod:`builder.server.prewalk`) and waits for a request on ``sock``."""

    pid: int
    sock: socket.socket
    pidfd: int
    born: float


#: A spare older than this is replaced rather than used (its connection may have gone stale).
SPARE_MAX_AGE_S = 300.0
#: After a spare dies unused (a crash while walking ahead), wait this long before forking another.
SPARE_RETRY_S = 30.0


def warm() -> None:
    """Import what commands use and pre-build the CLI parser (children inherit both)."""
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    import builder.cli as cli

    cli.prebuild_parser()
    # Everything imported so far lives as long as the server: keep the collector off it, so a child's
    # collections neither walk it nor dirty (copy) its shared pages.
    gc.collect()
    gc.freeze()


class Server:
    """One listening socket; ``serve()`` runs until idle or SIGTERM."""

    def __init__(
        self,
        socket_file: str,
        lock_file: str,
        idle: float,
        directory: paths.ServerDir | None = None,
        *,
        spares: bool = True,
    ) -> None:
        # Every file is reached through the verified directory's descriptor, never by path (see paths.open_dir).
        self.dir = directory if directory is not None else paths.open_dir(os.path.dirname(socket_file), create=False)
        self.socket_file = socket_file
        self.socket_name = os.path.basename(socket_file)
        self.spares = spares  # off only to measure what the spare saves (scripts/bench-server)
        self.lock_file = lock_file
        self.idle = idle
        self.running: dict[int, _Running] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.lock_fd = -1
        self.hint_file = paths.HintFile(self.dir, self.socket_name.removesuffix(".sock") + ".hint.json")
        self.spare: _Spare | None = None
        self.spare_failed_at = -SPARE_RETRY_S

    def acquire(self) -> bool:
        """Take the lock file; False when another server with this fingerprint runs."""
        fd = self.dir.open(os.path.basename(self.lock_file), os.O_RDWR | os.O_CREAT)
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
        self.dir.unlink(self.socket_name)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.dir.address(self.socket_name))
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
            if not self.running and not self.stopping:
                self._ensure_spare()
            for key, _ in self.selector.select(timeout=1.0):
                self._dispatch(key.data)
            if self.running:
                last_work = time.monotonic()

    def _dispatch(self, what: object) -> None:
        """Act on one ready descriptor of a ``select`` batch.

        One batch can hold both a child's exit and its client's hang-up; whichever comes first
        retires the command, so the other names an entry that is gone (or a spare that was
        replaced) and is ignored.  Entries are compared by identity, never by pid, since a pid
        can be reused by the next child within the same batch.
        """
        if what == "accept":
            self._accept()
            return
        event: str
        entry: _Running
        event, entry = what  # type: ignore[misc]
        if event == "spare":
            if entry is self.spare:
                self._spare_died()
        elif self.running.get(entry.pid) is entry:
            if event == "child":
                self._reap(entry)
            else:
                self._client_gone(entry)

    def close(self) -> None:
        """Remove the socket (if it is still ours), end the spare and release the lock."""
        self._drop_spare()
        if self.listener is not None:
            self.listener.close()
            self._unlink_socket()
        if self.lock_fd >= 0:
            os.close(self.lock_fd)

    def _stop(self, _signum: int, _frame: object) -> None:
        self.stopping = True

    def _unlink_socket(self) -> None:
        with contextlib.suppress(OSError):
            self.dir.unlink(self.socket_name)

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            frame, request, fds = _read_request(conn)
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
        if not self._hand_to_spare(conn, frame, request, fds):
            self._fork(conn, request, fds)

    def _close_in_child(self) -> None:
        """In a freshly forked process: drop every descriptor that belongs to the server."""
        self.selector.close()
        if self.listener is not None:
            self.listener.close()
        for other in self.running.values():
            other.conn.close()
            os.close(other.pidfd)
        if self.spare is not None:
            self.spare.sock.close()
            os.close(self.spare.pidfd)
        os.close(self.lock_fd)

    def _forked(self, run: Callable[[], int]) -> int:
        """Fork; the child drops the server's descriptors, runs ``run`` and exits with its code."""
        pid = os.fork()
        if pid == 0:  # the child never returns into the server loop
            code = 1
            try:
                self._close_in_child()
                code = run()
            finally:
                os._exit(code)
        return pid

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        def run() -> int:
            return run_child(request, [*fds, conn.detach()], self.hint_file)

        pid = self._forked(run)
        for fd in fds:
            os.close(fd)
        self._started(pid, conn, os.pidfd_open(pid), request)

    def _started(self, pid: int, conn: socket.socket, pidfd: int, request: dict[str, Any], via: str = "fork") -> None:
        # The child itself tells the client its pid (before it runs anything) and its exit code (as
        # soon as its output is flushed); the server's own "exit" line after reaping covers a child
        # that died without saying it.
        entry = self.running[pid] = _Running(pid, conn, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("child", entry))
        self.selector.register(conn, selectors.EVENT_READ, ("conn", entry))
        _log(f"pid {pid} ({via}): {' '.join(request['argv'])[:200]}")

    def _ensure_spare(self) -> None:
        """Fork a spare when there is none and the last one did not just die unused."""
        if not self.spares:
            return
        if self.spare is not None or time.monotonic() - self.spare_failed_at < SPARE_RETRY_S:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def run() -> int:
            ours.close()
            return run_spare(theirs, self.hint_file)

        pid = self._forked(run)
        theirs.close()
        pidfd = os.pidfd_open(pid)
        self.spare = _Spare(pid, ours, pidfd, time.monotonic())
        self.selector.register(pidfd, selectors.EVENT_READ, ("spare", self.spare))

    def _hand_to_spare(self, conn: socket.socket, frame: bytes, request: dict[str, Any], fds: list[int]) -> bool:
        """Give the command to the spare; False (and no spare) when there is none fit to take it."""
        spare = self.spare
        if spare is None:
            return False
        if time.monotonic() - spare.born > SPARE_MAX_AGE_S:
            self._drop_spare()
            return False
        try:  # the client's own frame, as it came, with its streams and its connection to report on
            sent = socket.send_fds(spare.sock, [frame], [*fds, conn.fileno()])
        except OSError:
            self._drop_spare()
            return False
        # From here the spare holds the command: it runs it, or (a truncated frame) exits without a
        # word and the client runs it in-process.  Never fork a second child for it: a spare that has
        # read the frame and closed its end makes even an empty send fail, and two children would
        # run one command.
        with contextlib.suppress(OSError):
            if sent < len(frame):
                spare.sock.sendall(frame[sent:])
        self.spare = None
        self.selector.unregister(spare.pidfd)
        spare.sock.close()
        for fd in fds:
            os.close(fd)
        self._started(spare.pid, conn, spare.pidfd, request, via="spare")
        return True

    def _spare_died(self) -> None:
        """The spare exited before any command reached it: reap it and back off."""
        self._drop_spare()
        self.spare_failed_at = time.monotonic()

    def _drop_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(spare.pidfd)
        spare.sock.close()  # the spare sees EOF instead of a command and exits
        with contextlib.suppress(ProcessLookupError):
            os.kill(spare.pid, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(spare.pid, 0)
        os.close(spare.pidfd)

    def _reap(self, entry: _Running) -> None:
        del self.running[entry.pid]
        _, status = os.waitpid(entry.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code
        self.selector.unregister(entry.pidfd)
        os.close(entry.pidfd)
        with contextlib.suppress(KeyError, ValueError):  # not registered any more once the client went away
            self.selector.unregister(entry.conn)
        with contextlib.suppress(OSError):  # usually the child said it already and the client is gone
            entry.conn.sendall(f"exit {code}\n".encode())
        entry.conn.close()

    def _client_gone(self, entry: _Running) -> None:
        """The client closed its socket while its command runs: interrupt the command (as Ctrl-C would)."""
        try:
            data = entry.conn.recv(4096)  # clients send nothing more; read it anyway, or the selector spins
        except OSError:
            data = b""
        if data:
            return
        self.selector.unregister(entry.conn)
        with contextlib.suppress(ProcessLookupError):  # through the pidfd: never another process with a reused pid
            signal.pidfd_send_signal(entry.pidfd, signal.SIGINT)


def _read_request(conn: socket.socket) -> tuple[bytes, dict[str, Any], list[int]]:
    """A client's frame, decoded, and its three streams (only from our own user)."""
    conn.settimeout(5.0)
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    frame, request, fds = _read_frame(conn, peer_uid=uid)
    conn.settimeout(None)
    return frame, request, fds


def _read_frame(
    sock: socket.socket, peer_uid: int | None = None, streams: int = 3
) -> tuple[bytes, dict[str, Any], list[int]]:
    """One request frame with its ``streams`` passed descriptors (a client's stdin/stdout/stderr; the
    server adds the client's connection for a spare); EOFError when the peer sent nothing."""
    data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, streams)
    if not data and not fds:
        raise EOFError
    try:
        if peer_uid is not None and peer_uid != os.getuid():
            raise ValueError(f"connection from uid {peer_uid}")
        if len(fds) != streams or len(data) < _HEADER:
            raise ValueError("missing standard streams")
        size = int.from_bytes(data[:_HEADER], "big")
        if size > _MAX_REQUEST:
            raise ValueError("request too large")
        frame = bytearray(data)
        while len(frame) < _HEADER + size:
            chunk = sock.recv(min(1 << 20, _HEADER + size - len(frame)))
            if not chunk:
                raise ValueError("truncated request")
            frame += chunk
        request = decode_request(bytes(frame[_HEADER:]))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return bytes(frame), request, list(fds)


def _child_defaults() -> None:
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A command is short-lived and allocates a lot: collect young objects far less often than the default 700.
    gc.set_threshold(50_000, 20, 20)


def run_spare(sock: socket.socket, hint_file: paths.HintFile) -> int:
    """In a spare child: walk the last planned project ahead, then run the command the server hands over.

    The walk ahead is the only work done before the command comes, in the only thread that is not
    the command's; it is stopped and joined before the command installs its environment (setenv
    beside a thread that reads the environment is undefined behaviour in glibc).
    """
    _child_defaults()
    from builder.server import prewalk

    hint = prewalk.read_hint(hint_file)
    walking = prewalk.start(hint)
    try:
        _frame, request, fds = _read_frame(sock, streams=4)
    except (EOFError, OSError, ValueError):
        return 0  # dropped by the server: nothing to run
    finally:
        ahead = walking.finish() if walking is not None else None
    sock.close()
    return run_child(request, fds, hint_file, ahead=ahead, hint=hint)


def run_child(
    request: dict[str, Any],
    fds: list[int],
    hint_file: paths.HintFile | None = None,
    *,
    ahead: WalkAhead | None = None,
    hint: Mapping[str, Any] | None = None,
) -> int:
    """In the forked child: become the client's process (streams, cwd, umask, env) and run the CLI.

    ``fds`` are the client's stdin, stdout and stderr, then its connection: the child announces
    itself there before it runs anything and reports its exit code as soon as its output is out, so
    the client returns without waiting for this process to be torn down and reaped.  With
    ``hint_file`` the command plans through a :class:`~builder.server.prewalk.ServedWalker` (the
    walk ``ahead`` of a spare, if any), which names the project it planned there for the next spare.
    """
    _child_defaults()
    report = socket.socket(fileno=fds.pop())
    try:
        report.sendall(f"pid {os.getpid()}\n".encode())
    except OSError:  # the client is gone: nothing to run for
        return 1
    walker = None
    if hint_file is not None:
        from builder.server.prewalk import ServedWalker

        walker = ServedWalker(hint_file, ahead, hint)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    encoding, errors = request.get("encoding") or "utf-8", request.get("errors") or "strict"
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding=encoding)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding=encoding,
        errors=errors,
        line_buffering=os.isatty(1),
    )
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    code = 1
    try:
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["builder", *argv]
        from builder.cli import main

        code = main(argv, walker=walker)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    # Everything is written: release the client's streams now (a reader waiting for EOF need not wait
    # for the exit), and let a Ctrl-C that comes from here on find nothing left to interrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        report.sendall(f"exit {code}\n".encode())
    return code


#: Files of servers for other code (older builder versions or edits) are removed once this old.
STALE_AFTER_S = 24 * 3600.0


def remove_stale(directory: paths.ServerDir, keep: str, now: float | None = None) -> list[str]:
    """Delete the socket, lock, log and hint of servers that are gone and unused for a day.

    A server is gone when nobody holds its lock; ``keep`` (our own name prefix, ``s-<fingerprint>``)
    is never touched.  Returns the removed prefixes.
    """
    moment = time.time() if now is None else now
    removed = []
    for name in directory.names():
        if not (name.startswith("s-") and name.endswith(".lock")):
            continue
        prefix = name[:-5]
        if prefix == keep:
            continue
        try:
            fd = directory.open(name, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            newest = max(directory.mtime(prefix + suffix) for suffix in (".lock", ".log", ".hint.json"))
            if moment - newest < STALE_AFTER_S:
                continue
            for suffix in (".sock", ".log", ".hint.json", ".lock"):
                directory.unlink(prefix + suffix)
            removed.append(prefix)
        except BlockingIOError:
            continue  # that server is running
        finally:
            os.close(fd)
    return removed


def _log(text: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {text}\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """``python -m builder.server SOCKET LOCK IDLE [--no-spare]``: warm up, then serve (the log is stderr).

    ``--no-spare`` forks each command's child when it comes instead of ahead (for benchmarks).
    """
    args = argv or sys.argv[1:]
    socket_file, lock_file, idle = args[:3]
    os.chdir("/")  # never keep the first client's directory (or its mount) busy
    if os.path.dirname(lock_file) != os.path.dirname(socket_file):
        _log("the socket and the lock file must be in one directory")
        return 2
    try:
        directory = paths.open_dir(os.path.dirname(socket_file), create=False)
    except paths.UnsafeDir as exc:
        _log(f"refusing the server directory: {exc}")
        return 2
    server = Server(socket_file, lock_file, float(idle), directory, spares="--no-spare" not in args[3:])
    if not server.acquire():
        return 0
    try:
        with contextlib.suppress(OSError):
            remove_stale(server.dir, server.socket_name.removesuffix(".sock"))
        started = time.perf_counter()
        warm()
        server.bind()
        _log(f"serving {socket_file} (warm-up {time.perf_counter() - started:.2f} s, idle timeout {idle} s)")
        server.serve()
        _log("exiting")
    finally:
        server.close()
    return 0
