"""Byte pumps between the daemon and our local gRPC server.

Two server implementations, each over two transports (``Control.Session``,
whose ``BytesMessage`` chunks are arbitrary slices of the daemon's HTTP/2
stream, and a raw upgraded socket from dockerd's ``POST /session``):

* ``h2`` (default): :class:`ControlSessionH2` / :class:`SocketH2` feed the
  bytes straight into :class:`H2GrpcServer` and send its output in
  coalesced chunks;
* ``grpcio``: grpcio cannot serve an already-connected socket, so the
  session's grpc server listens on a private unix socket and
  :class:`ControlSessionRelay` / :class:`SocketRelay` copy bytes between one
  connection to it and the daemon.  It is slower (grpcio sends one message
  at a time) and kept as a reference implementation.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.session.attachable import MethodTable
from builder.engines.buildkit.session.errors import SessionError
from builder.engines.buildkit.session.h2server import H2GrpcServer

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
    for key, value in headers:
        if not key or any(c in key + value for c in "\r\n\x00"):
            raise ConnectionError(f"invalid session header {key!r}")
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


# --- transports for the h2 server (no local socket, writes coalesced) ---------------------------

_MAX_CHUNK = 1024 * 1024  # well below the 4 MiB a dockerd gRPC message may carry


def _coalesce(out: queue.Queue[bytes | None]) -> bytes | None:
    """Block for the next outgoing bytes, then take whatever else is queued (up to 1 MiB)."""
    first = out.get()
    if first is None:
        return None
    parts, size = [first], len(first)
    while size < _MAX_CHUNK:
        try:
            more = out.get_nowait()
        except queue.Empty:
            break
        if more is None:
            out.put(None)  # deliver the end after this chunk
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts)


class ControlSessionH2:
    """Serve ``table`` with :class:`H2GrpcServer` directly inside a ``Control.Session`` call."""

    def __init__(self, open_call: Callable[..., Any], metadata: Sequence[tuple[str, str]], table: MethodTable) -> None:
        self._out: queue.Queue[bytes | None] = queue.Queue()
        self._closing = False
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.failure: Exception | None = None
        self.server = H2GrpcServer(table, self._out.put)
        self._call = open_call(self._requests(), metadata=tuple(metadata))
        self._thread = threading.Thread(target=self._read, name="bk-session-h2", daemon=True)
        self._thread.start()

    def _requests(self) -> Iterator[control_pb2.BytesMessage]:
        while (data := _coalesce(self._out)) is not None:
            yield control_pb2.BytesMessage(data=data)

    def _read(self) -> None:
        try:
            for message in self._call:
                self.first_bytes.set()
                self.server.receive(message.data)
        except grpc.RpcError as exc:
            if not self._closing:
                self.failure = exc
        except SessionError as exc:
            self.failure = exc
        finally:
            self.server.close()
            self._out.put(None)
            self.ended.set()
            self.first_bytes.set()

    def close(self) -> None:
        """Send GOAWAY, end the call and wait for the reader."""
        self._closing = True
        self.server.close()
        self._out.put(None)
        self._call.cancel()
        self._thread.join(timeout=5)
        self.server.wait_idle()


class SocketH2:
    """Serve ``table`` with :class:`H2GrpcServer` on a raw socket (dockerd's upgraded ``/session``)."""

    def __init__(self, sock: socket.socket, initial: bytes, table: MethodTable) -> None:
        self._sock = sock
        self._out: queue.Queue[bytes | None] = queue.Queue()
        self.first_bytes = threading.Event()
        self.ended = threading.Event()
        self.failure: Exception | None = None
        self.server = H2GrpcServer(table, self._out.put)
        self._writer = threading.Thread(target=self._write, name="bk-session-out", daemon=True)
        self._reader = threading.Thread(target=self._read, args=(initial,), name="bk-session-in", daemon=True)
        self._writer.start()
        self._reader.start()

    def _write(self) -> None:
        try:
            while (data := _coalesce(self._out)) is not None:
                self._sock.sendall(data)
        except OSError:
            pass

    def _read(self, initial: bytes) -> None:
        try:
            if initial:
                self.first_bytes.set()
                self.server.receive(initial)
            while data := self._sock.recv(CHUNK):
                self.first_bytes.set()
                self.server.receive(data)
        except OSError:
            pass
        except SessionError as exc:
            self.failure = exc
        finally:
            self.server.close()
            self._out.put(None)
            self.ended.set()
            self.first_bytes.set()

    def close(self) -> None:
        """GOAWAY, then close the socket and wait for both pumps."""
        self.server.close()
        self._out.put(None)
        self._writer.join(timeout=5)
        _shutdown(self._sock, socket.SHUT_RDWR)
        self._reader.join(timeout=5)
        self._sock.close()
        self.server.wait_idle()
