"""The thin client: hand this process's argv, cwd, environment and terminal to a warm server.

The server forks a child that runs the ordinary CLI with our stdin/stdout/stderr
file descriptors (passed over the Unix socket), so output, colours and
terminal detection are exactly those of an in-process run.  Signals we receive
(Ctrl-C, SIGTERM, SIGHUP) are forwarded to that child; its exit code becomes ours.

Nothing is sent before the server proves it runs as our own user (SO_PEERCRED on the
socket, which sits in a directory :func:`builder.server.paths.open_dir` has verified),
and signals go only to a process whose parent is that server, through a pidfd.

Only C modules are imported here (``_socket``, ``_signal``): ``socket``, ``signal``
and ``json`` build enums and compile regular expressions at import, which costs more
than everything else the client does.
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs ~4 ms here, and the client imports nothing it need not
    from collections.abc import Mapping, Sequence

from builder.server import paths  # noqa: E402 - after the TYPE_CHECKING guard on purpose

PROTOCOL = "builder-1"
_FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


def encode_request(
    argv: Sequence[str], cwd: str, environ: Mapping[str, str], umask: int, encoding: str, errors: str
) -> bytes:
    """The request frame: a 4-byte length, then NUL-separated fields (NUL cannot occur in argv or env).

    Fields: protocol, cwd, umask, stdout encoding, errors, argument count, the arguments, then
    ``NAME=value`` for every environment variable.
    """
    fields = [
        PROTOCOL,
        cwd,
        str(umask),
        encoding,
        errors,
        str(len(argv)),
        *argv,
        *(f"{k}={v}" for k, v in environ.items()),
    ]
    body = "\0".join(fields).encode("utf-8", "surrogateescape")
    return len(body).to_bytes(4, "big") + body


def decode_request(body: bytes) -> dict[str, object]:
    """The inverse of :func:`encode_request` (without the length); ValueError when malformed."""
    fields = body.decode("utf-8", "surrogateescape").split("\0")
    if len(fields) < 6 or fields[0] != PROTOCOL:
        raise ValueError("unknown protocol version")
    count = int(fields[5])
    argv, env_items = fields[6 : 6 + count], fields[6 + count :]
    if len(argv) != count:
        raise ValueError("truncated argument list")
    env = dict(item.split("=", 1) for item in env_items if "=" in item)
    return {
        "cwd": fields[1],
        "umask": int(fields[2]),
        "encoding": fields[3],
        "errors": fields[4],
        "argv": argv,
        "env": env,
    }


def run_via_server(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """Run ``builder ARGV`` in a warm server and return its exit code; None when no server took it.

    None means nothing was run (no server, a busy or mismatched one, a closed
    standard stream, a deleted working directory): the caller runs in-process.
    """
    directory = paths.server_dir(environ, create=False)
    if directory is None:
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(directory.address(paths.socket_name(paths.fingerprint(environ))))
            server_pid = _peer_pid_if_ours(sock)
            if server_pid is None:
                return None  # not our own user's server: it gets nothing, not even the request
            request = _request(argv, environ)
            fds = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in (0, 1, 2))
            sent = sock.sendmsg([request], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
            _send_all(sock, request[sent:])
            lines = _Lines(sock)
            first = lines.readline()
        except OSError:
            return None
        finally:
            directory.close()
        if not first.startswith(b"pid ") or not first[4:].strip().isdigit():
            return None  # refused before anything ran
        # From here on the command is running: whatever happens, never fall back (it would run twice).
        child = _own_child(int(first[4:]), server_pid)
        previous = {sig: _signal.signal(sig, _forwarder(child)) for sig in _FORWARDED} if child is not None else {}
        try:
            last = lines.readline()
        except OSError:
            last = b""
        finally:
            for sig, handler in previous.items():
                _signal.signal(sig, handler)
            if child is not None:
                os.close(child)
    finally:
        sock.close()
    if last.startswith(b"exit ") and last[5:].strip().isdigit():
        return int(last[5:])
    sys.stderr.write(
        "error: the builder server stopped before the command finished "
        "(run it again, or set BUILDER_SERVER=off to run without a server)\n"
    )
    return 1


class _Lines:
    """Newline-terminated replies read from a raw socket."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(256)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


def _send_all(sock: _socket.socket, data: bytes) -> None:
    while data:
        data = data[sock.send(data) :]


def _request(argv: Sequence[str], environ: Mapping[str, str]) -> bytes:
    mask = os.umask(0o022)
    os.umask(mask)
    out = sys.stdout
    return encode_request(
        argv,
        os.getcwd(),
        environ,
        mask,
        getattr(out, "encoding", None) or "utf-8",
        getattr(out, "errors", None) or "strict",
    )


def _peer_pid_if_ours(sock: _socket.socket) -> int | None:
    """The server's pid when the process listening on ``sock`` runs as our own user (SO_PEERCRED), else None."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    pid, uid = (int.from_bytes(creds[i : i + 4], sys.byteorder, signed=True) for i in (0, 4))
    return pid if uid == os.getuid() and pid > 0 else None


def _own_child(pid: int, server_pid: int) -> int | None:
    """A pidfd for ``pid`` when it is a child of the server (so a signal can reach nothing else), else None.

    The pidfd is taken before the parent is checked: if ``pid`` was reused in between, the pidfd
    names the earlier (gone) process and a forwarded signal reaches nobody.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
        if int(fields[1]) == server_pid:
            return pidfd
    except (OSError, ValueError, IndexError):
        pass
    os.close(pidfd)
    return None


def _forwarder(pidfd: int):  # type: ignore[no-untyped-def]
    def forward(signum: int, _frame: object) -> None:
        try:
            _signal.pidfd_send_signal(pidfd, signum)
        except OSError:  # the child has exited already
            pass

    return forward
