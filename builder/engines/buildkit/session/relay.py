"""Byte pumps between the daemon and our local gRPC server.

grpcio cannot serve an already-connected socket, so the session's gRPC server
listens on a private unix socket; each transport connects to it once and
copies bytes both ways between that connection and the daemon:

* :class:`ControlSessionRelay` — the ``Control.Session`` bidi call, whose
  ``BytesMessage`` chunks are arbitrary slices of the daemon's HTTP/2 stream;
* :class:`SocketRelay` — a raw socket (dockerd's upgraded ``POST /session``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from builder.engines.buildkit._pb import control_pb2

CHUNK = 64 * 1024
SESSION_METHOD = "/moby.buildkit.v1.Control/Session"


def _shutdown(sock: socket.socket, how: int) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)


class ControlSessionRelay:
    """Carry the local server connection ``conn`` over a ``Control.Session`` call.

    ``first_bytes`` is set as soon as the daemon has sent anything (its HTTP/2
    preface), which means it has attached the session.
    """

    def __init__(self, open_call: Callable[..., Any], metadata: Sequence[tuple[str, str]], conn: socket.socket) -> None:
        self._conn = conn
        self._closing = False
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.failure: grpc.RpcError | None = None
        self._call = open_call(self._requests(), metadata=tuple(metadata))
        self._thread = threading.Thread(target=self._pump_responses, name="bk-session-relay", daemon=True)
        self._thread.start()

    def _requests(self) -> Iterator[control_pb2.BytesMessage]:
        while True:
            try:
                data = self._conn.recv(CHUNK)
            except OSError:
                return
            if not data:
                return
            yield control_pb2.BytesMessage(data=data)

    def _pump_responses(self) -> None:
        try:
            for message in self._call:
                self.first_bytes.set()
                self._conn.sendall(message.data)
        except grpc.RpcError as exc:
            if not self._closing:
                self.failure = exc
        except OSError:
            pass  # our local server went away: close() is running
        finally:
            _shutdown(self._conn, socket.SHUT_WR)
            self.ended.set()
            self.first_bytes.set()

    def close(self) -> None:
        """End the call (the daemon drops the session) and the local connection."""
        self._closing = True
        self._call.cancel()
        _shutdown(self._conn, socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._conn.close()


class SocketRelay:
    """Copy bytes both ways between two connected sockets until both directions end."""

    def __init__(self, daemon: socket.socket, local: socket.socket, initial: bytes = b"") -> None:
        self._daemon = daemon
        self._local = local
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.failure: Exception | None = None
        if initial:
            local.sendall(initial)
            self.first_bytes.set()
        self._threads = [
            threading.Thread(target=self._copy, args=(daemon, local, True), name="bk-session-in", daemon=True),
            threading.Thread(target=self._copy, args=(local, daemon, False), name="bk-session-out", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _copy(self, src: socket.socket, dst: socket.socket, inbound: bool) -> None:
        try:
            while data := src.recv(CHUNK):
                if inbound:
                    self.first_bytes.set()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(dst, socket.SHUT_WR)
            if inbound:
                self.ended.set()
                self.first_bytes.set()

    def close(self) -> None:
        """Close both sockets and wait for the pumps."""
        for sock in (self._daemon, self._local):
            _shutdown(sock, socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._daemon.close()
        self._local.close()


def docker_session_upgrade(
    socket_path: str, headers: Sequence[tuple[str, str]], *, timeout: float = 10.0
) -> tuple[socket.socket, bytes]:
    """``POST /session`` on dockerd's socket with the session headers; return the upgraded socket.

    The second value is whatever arrived after the ``101`` reply (the start of
    the daemon's HTTP/2 preface), which must be passed on to the server.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
        lines = ["POST /session HTTP/1.1", "Host: docker", "Connection: Upgrade", "Upgrade: h2c"]
        lines += [f"{_canonical(k)}: {v}" for k, v in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        reply = b""
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    except OSError:
        sock.close()
        raise
    head, _, rest = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if " 101 " not in f"{status} ":
        sock.close()
        raise ConnectionError(f"dockerd refused the session upgrade: {status or 'no reply'}")
    sock.settimeout(None)
    return sock, rest


def _canonical(key: str) -> str:
    return "-".join(part.capitalize() for part in key.split("-"))
