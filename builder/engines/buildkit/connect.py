"""Transports to BuildKit: gRPC channels over unix sockets, TCP (+TLS) and dockerd's ``/grpc``.

dockerd serves BuildKit behind an HTTP/1.1 upgrade: ``POST /grpc`` with ``Connection:
Upgrade`` and ``Upgrade: h2c`` answers ``101 Switching Protocols`` and the socket then
carries HTTP/2 with us as the client. grpcio cannot be handed a connected socket, so
:class:`UpgradeRelay` listens on a private unix socket; for each connection grpcio opens
it dials the daemon, performs the upgrade and pumps bytes both ways. The same upgrade
(:func:`open_upgraded`) serves ``POST /session``, where the daemon becomes the HTTP/2
client.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable, Sequence

import grpc

from builder.engines.buildkit.address import EngineAddress
from builder.engines.buildkit.tls import DEFAULT_CONNECT_TIMEOUT, TLSConfig, describe_tls_error, open_tls
from builder.errors import EngineError, EngineUnavailable

__all__ = ["TLSConfig", "UpgradeRelay", "dial", "make_channel", "open_upgraded"]

#: Largest message we accept from the engine; dockerd itself accepts at most 4 MiB per message.
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
#: dockerd's /grpc server keeps grpc-go's default limit for what we send.
MAX_SEND_BYTES = 4 * 1024 * 1024
_CONNECT_TIMEOUT = DEFAULT_CONNECT_TIMEOUT
_MAX_HEADER_BYTES = 64 * 1024
_CHUNK = 64 * 1024


def channel_options() -> list[tuple[str, int | str]]:
    """The grpc channel options every engine channel uses."""
    return [
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        # A relay or socket that disappears should fail fast, not back off for minutes.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


def dial(address: EngineAddress, timeout: float = _CONNECT_TIMEOUT, tls: TLSConfig | None = None) -> socket.socket:
    """Open a stream socket to the address's unix path or TCP host:port (TLS unless ``tls.insecure``).

    Over TCP, a refused or timed-out connect and a failed handshake raise EngineUnavailable
    naming the address; each phase has ``timeout`` seconds.
    """
    if address.path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.path)
        except OSError:
            sock.close()
            raise
        sock.settimeout(None)
        return sock
    assert address.host is not None and address.port is not None
    try:
        sock = socket.create_connection((address.host.strip("[]"), address.port), timeout=timeout)
    except OSError as exc:
        raise describe_tls_error(exc, address, timeout) from exc
    if tls is not None and not tls.insecure:
        sock = open_tls(sock, address, tls, timeout)
    sock.settimeout(None)
    return sock


def _tls_failure(exc: BaseException, address: EngineAddress, timeout: float) -> BaseException:
    """A read/write error on a TLS socket in words (a refused client certificate shows up here in TLS 1.3)."""
    return describe_tls_error(exc, address, timeout) if isinstance(exc, ssl.SSLError | TimeoutError) else exc


def detach_tls(sock: socket.socket) -> socket.socket:
    """Hand a TLS socket to one pump thread and return the plain end of a socket pair speaking for it.

    A plain socket is returned unchanged. Either side closing ends both connections.
    """
    if not isinstance(sock, ssl.SSLSocket):
        return sock
    ours, theirs = socket.socketpair()
    threading.Thread(target=_tls_pump, args=(sock, theirs), name="builder-tls-pump", daemon=True).start()
    return ours


def _tls_pump(tls_sock: ssl.SSLSocket, local: socket.socket) -> None:
    """Copy bytes both ways between a TLS socket and a local socket, in one thread, until either ends."""
    tls_sock.setblocking(False)
    local.setblocking(False)
    to_tls, to_local = bytearray(), bytearray()
    blocked = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)
    with selectors.DefaultSelector() as sel, tls_sock, local:
        sel.register(tls_sock, selectors.EVENT_READ)
        sel.register(local, selectors.EVENT_READ)
        try:
            while True:
                moved = False
                for src, dst, buf in ((tls_sock, local, to_local), (local, tls_sock, to_tls)):
                    if buf:
                        with contextlib.suppress(*blocked):
                            sent = dst.send(buf)
                            del buf[:sent]
                            moved = moved or sent > 0
                    if not buf:
                        with contextlib.suppress(*blocked):
                            data = src.recv(_CHUNK)
                            if not data:
                                return
                            buf += data
                            moved = True
                if moved or tls_sock.pending():
                    continue
                sel.modify(tls_sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if to_tls else 0))
                sel.modify(local, selectors.EVENT_READ | (selectors.EVENT_WRITE if to_local else 0))
                sel.select(1.0)
        except OSError:
            return


def _read_response_head(sock: socket.socket) -> tuple[int, bytes, bytes]:
    """Read an HTTP/1.1 response head; return (status, head, bytes read past the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise EngineError(f"the daemon closed the connection during the HTTP upgrade (got {buf[:200]!r})")
        buf += chunk
        if len(buf) > _MAX_HEADER_BYTES:
            raise EngineError("the daemon sent an oversized HTTP response head")
    head, _, rest = buf.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise EngineError(f"the daemon answered with an unexpected status line {status_line!r}")
    return int(parts[1]), head, rest


def open_upgraded(
    address: EngineAddress,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
    timeout: float = _CONNECT_TIMEOUT,
    tls: TLSConfig | None = None,
) -> tuple[socket.socket, bytes]:
    """Dial dockerd, ``POST path`` with an h2c upgrade, and return (socket, early bytes).

    ``headers`` are extra request headers (repeat a name to send it several times, as the
    session's ``X-Docker-Expose-Session-Grpc-Method`` needs). ``early bytes`` are bytes the
    daemon sent right after its ``101`` reply; the caller must treat them as the start of
    the upgraded stream.
    """
    for name, value in headers:
        if any(c in name + value for c in "\r\n\x00") or not name:
            raise EngineError(f"invalid HTTP header for {path}: {name!r}")
    sock = dial(address, timeout, tls)
    try:
        sock.settimeout(timeout)
        lines = [f"POST {path} HTTP/1.1", "Host: docker", "Connection: Upgrade", "Upgrade: h2c"]
        lines += [f"{name}: {value}" for name, value in headers]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, head, rest = _read_response_head(sock)
        except (OSError, ssl.SSLError) as exc:
            raise _tls_failure(exc, address, timeout) from exc
        if status != 101:
            body = rest[:300].decode("utf-8", "replace").strip()
            raise EngineError(
                f"dockerd at {address} refused the {path} upgrade: HTTP {status} {body}".rstrip(),
                hint="is this a Docker daemon with BuildKit (Docker 18.09 or newer)?",
            )
        sock.settimeout(None)
        del head
        return detach_tls(sock), rest
    except BaseException:
        sock.close()
        raise


def ping_docker(address: EngineAddress, timeout: float = 2.0) -> bool:
    """True when a Docker daemon answers ``GET /_ping`` at the (unix) address."""
    try:
        sock = dial(address, timeout)
    except (OSError, EngineError):
        return False
    with sock:
        try:
            sock.settimeout(timeout)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            status, _, _ = _read_response_head(sock)
        except (OSError, EngineError):
            return False
    return status == 200


def check_docker(address: EngineAddress, timeout: float = _CONNECT_TIMEOUT, tls: TLSConfig | None = None) -> None:
    """Raise EngineUnavailable, saying why, unless a Docker daemon answers ``GET /_ping`` at the address."""
    try:
        docker_get_json(address, "/_ping", timeout, tls)
    except EngineUnavailable:
        raise
    except (OSError, EngineError) as exc:
        detail = exc.message if isinstance(exc, EngineError) else (exc.strerror or str(exc))
        raise EngineUnavailable(f"no Docker daemon answers at {address}: {detail}", tried=(str(address),)) from exc


def docker_get_json(address: EngineAddress, path: str, timeout: float = 5.0, tls: TLSConfig | None = None) -> bytes:
    """``GET path`` on the Docker API and return the body (used for ``/version``)."""
    sock = dial(address, timeout, tls)
    with sock:
        sock.settimeout(timeout)
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode("latin-1"))
            status, head, rest = _read_response_head(sock)
            chunks = [rest]
            while chunk := sock.recv(_CHUNK):
                chunks.append(chunk)
        except (OSError, ssl.SSLError) as exc:
            raise _tls_failure(exc, address, timeout) from exc
    body = b"".join(chunks)
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    if status != 200:
        raise EngineError(f"dockerd at {address}: GET {path} answered HTTP {status}")
    return body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


class UpgradeRelay:
    """A private unix socket whose every connection is relayed to an upgraded dockerd stream.

    >>> relay = UpgradeRelay(EngineAddress("docker", path="/var/run/docker.sock"))  # doctest: +SKIP
    >>> channel = grpc.insecure_channel(relay.target)  # doctest: +SKIP
    """

    def __init__(
        self,
        address: EngineAddress,
        path: str = "/grpc",
        headers: Iterable[tuple[str, str]] = (),
        tls: TLSConfig | None = None,
        timeout: float = _CONNECT_TIMEOUT,
    ) -> None:
        self.address = address
        self.tls = tls
        self.timeout = timeout
        self.path = path
        self.headers = tuple(headers)
        # Short path: unix socket paths are limited to ~107 bytes.
        self._dir = tempfile.mkdtemp(prefix="builder-relay-")
        self.socket_path = os.path.join(self._dir, "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        self._listener.listen(16)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._accept_loop, name="builder-relay-accept", daemon=True)
        self._thread.start()

    @property
    def target(self) -> str:
        """The grpc target string for this relay (``unix:/…``)."""
        return f"unix:{self.socket_path}"

    def _track(self, *socks: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._open.update(socks)
            return True

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # listener closed
            threading.Thread(target=self._serve, args=(client,), name="builder-relay-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if not self._track(client):
            client.close()
            return
        try:
            upstream, early = open_upgraded(self.address, self.path, self.headers, self.timeout, self.tls)
        except (OSError, EngineError) as exc:
            self.errors.append(str(exc))
            self._forget(client)
            return
        if not self._track(upstream):
            upstream.close()
            self._forget(client)
            return
        if early:
            with contextlib.suppress(OSError):
                client.sendall(early)
        back = threading.Thread(target=pump, args=(upstream, client), name="builder-relay-down", daemon=True)
        back.start()
        pump(client, upstream)
        back.join()
        self._forget(client, upstream)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()

    def close(self) -> None:
        """Stop accepting, cut every relayed connection and remove the socket."""
        with self._lock:
            self._closed = True
            socks = list(self._open)
            self._open.clear()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(timeout=2)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> UpgradeRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy bytes from ``src`` to ``dst`` until EOF, then half-close ``dst``."""
    try:
        while True:
            data = src.recv(_CHUNK)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def make_channel(
    address: EngineAddress, *, tls: TLSConfig | None = None, timeout: float = _CONNECT_TIMEOUT
) -> tuple[grpc.Channel, UpgradeRelay | None]:
    """A grpc channel for a buildkitd (``unix``/``tcp``) or dockerd (``docker``) address.

    ``tls`` must be resolved already (:func:`builder.engines.buildkit.tls.resolve_tls`):
    a TCP address with ``tls=None`` is a programming error. For dockerd the returned relay
    must be closed after the channel.
    """
    options = channel_options()
    if address.kind == "unix":
        return grpc.insecure_channel(f"unix:{address.path}", options=options), None
    if address.host is not None and tls is None:
        raise ValueError(f"{address}: a TCP engine needs resolved TLS settings")
    if address.kind == "tcp":
        assert tls is not None
        target = f"{address.host}:{address.port}"
        if tls.insecure:
            return grpc.insecure_channel(target, options=options), None
        if tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        return grpc.secure_channel(target, tls.credentials(), options=options), None
    if address.path is None and address.host is None:
        raise EngineUnavailable(f"{address}: no docker socket given", tried=(str(address),))
    relay = UpgradeRelay(address, tls=tls, timeout=timeout)
    return grpc.insecure_channel(relay.target, options=options), relay
