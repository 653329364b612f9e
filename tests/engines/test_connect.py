"""Transports: the dockerd h2c upgrade, the relay's byte pumping, and a full client over a fake dockerd."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from builder.engines.buildkit import address as address_module
from builder.engines.buildkit._pb import control_pb2, control_pb2_grpc, ops_pb2, worker_pb2
from builder.engines.buildkit.address import EngineAddress
from builder.engines.buildkit.client import open_engine
from builder.engines.buildkit.connect import TLSConfig, UpgradeRelay, docker_get_json, open_upgraded, ping_docker
from builder.errors import EngineError, EngineUnavailable


@dataclass
class Upgrade:
    """One upgrade request the fake daemon received."""

    path: str
    headers: list[tuple[str, str]]


@dataclass
class FakeDockerd:
    """Answers ``GET /_ping`` and ``GET /version``; upgrades ``POST`` requests with h2c.

    After an upgrade the connection is handed to ``backend`` (a unix socket path whose bytes
    are relayed) or, without one, echoed back upper-cased so tests see the bytes moved.
    """

    socket_path: Path
    backend: str | None = None
    refuse_upgrade: bool = False
    early_bytes: bytes = b""
    version: str = "20.10.99-fake"
    upgrades: list[Upgrade] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        self._listener.listen(16)
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # close() cuts connections mid-read
            self._serve_one(conn)

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
            if method == "GET" and path.endswith("/_ping"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                return
            if method == "GET" and path.endswith("/version"):
                body = f'{{"Version": "{self.version}"}}'.encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return
            self.upgrades.append(Upgrade(path, headers))
            if self.refuse_upgrade:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n\r\nno upgrades")
                return
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + self.early_bytes
            )
            if self.backend is None:
                self._echo(conn, rest)
            else:
                self._relay(conn, rest)

    @staticmethod
    def _echo(conn: socket.socket, rest: bytes) -> None:
        if rest:
            conn.sendall(rest.upper())
        while data := conn.recv(65536):
            conn.sendall(data.upper())

    def _relay(self, conn: socket.socket, rest: bytes) -> None:
        assert self.backend is not None
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(self.backend)
        if rest:
            up.sendall(rest)

        def copy(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := a.recv(65536):
                    b.sendall(data)
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=copy, args=(up, conn), daemon=True)
        t.start()
        copy(conn, up)
        t.join(5)
        up.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="bk-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake(short_dir: Path) -> Iterator[FakeDockerd]:
    daemon = FakeDockerd(short_dir / "docker.sock")
    yield daemon
    daemon.close()


def _connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _docker(fake: FakeDockerd) -> EngineAddress:
    return EngineAddress("docker", path=str(fake.socket_path))


def test_open_upgraded_sends_the_h2c_upgrade(fake: FakeDockerd) -> None:
    sock, early = open_upgraded(
        _docker(fake),
        "/session",
        [("X-Docker-Expose-Session-Grpc-Method", "/a"), ("X-Docker-Expose-Session-Grpc-Method", "/b")],
    )
    with sock:
        assert early == b""
        sock.sendall(b"abc")
        assert _recv_exactly(sock, 3) == b"ABC"
    upgrade = fake.upgrades[0]
    assert upgrade.path == "/session"
    headers = {k.lower(): v for k, v in upgrade.headers}
    assert headers["connection"] == "Upgrade"
    assert headers["upgrade"] == "h2c"
    methods = [v for k, v in upgrade.headers if k == "X-Docker-Expose-Session-Grpc-Method"]
    assert methods == ["/a", "/b"]


def test_open_upgraded_returns_bytes_sent_right_after_101(short_dir: Path) -> None:
    daemon = FakeDockerd(short_dir / "d.sock", early_bytes=b"PRISM")
    try:
        sock, early = open_upgraded(EngineAddress("docker", path=str(daemon.socket_path)), "/grpc")
        with sock:
            # The bytes may arrive with the response head (returned) or just after it (still in the socket).
            data = early + _recv_exactly(sock, 5 - len(early))
    finally:
        daemon.close()
    assert data == b"PRISM"


def test_refused_upgrade_is_an_engine_error(short_dir: Path) -> None:
    daemon = FakeDockerd(short_dir / "d.sock", refuse_upgrade=True)
    try:
        with pytest.raises(EngineError, match="HTTP 400 no upgrades"):
            open_upgraded(EngineAddress("docker", path=str(daemon.socket_path)), "/grpc")
    finally:
        daemon.close()


def test_header_injection_is_rejected(fake: FakeDockerd) -> None:
    with pytest.raises(EngineError, match="invalid HTTP header"):
        open_upgraded(_docker(fake), "/session", [("X-Evil", "a\r\nInjected: yes")])
    assert fake.upgrades == []


def test_relay_pumps_bytes_both_ways(fake: FakeDockerd) -> None:
    with UpgradeRelay(_docker(fake)) as relay:
        client = _connect(relay.socket_path)
        with client:
            payload = bytes(range(97, 123)) * 10000  # larger than one chunk
            sender = threading.Thread(target=client.sendall, args=(payload,))
            sender.start()
            assert _recv_exactly(client, len(payload)) == payload.upper()
            sender.join()
    assert [u.path for u in fake.upgrades] == ["/grpc"]


def test_relay_opens_one_upstream_connection_per_client(fake: FakeDockerd) -> None:
    with UpgradeRelay(_docker(fake)) as relay:
        clients = [_connect(relay.socket_path) for _ in range(3)]
        for i, c in enumerate(clients):
            c.sendall(f"client{i}".encode())
        for i, c in enumerate(clients):
            assert _recv_exactly(c, 7) == f"CLIENT{i}".encode()
            c.close()
    assert len(fake.upgrades) == 3


def test_relay_passes_half_close_through(fake: FakeDockerd) -> None:
    with UpgradeRelay(_docker(fake)) as relay:
        client = _connect(relay.socket_path)
        with client:
            client.sendall(b"bye")
            client.shutdown(socket.SHUT_WR)
            assert _recv_exactly(client, 10) == b"BYE"  # then EOF, not a hang


def test_relay_closes_the_client_when_the_upgrade_fails(short_dir: Path) -> None:
    daemon = FakeDockerd(short_dir / "d.sock", refuse_upgrade=True)
    try:
        with UpgradeRelay(EngineAddress("docker", path=str(daemon.socket_path))) as relay:
            client = _connect(relay.socket_path)
            with client:
                assert client.recv(10) == b""
            assert any("HTTP 400" in e for e in relay.errors)
    finally:
        daemon.close()


def test_relay_close_cuts_connections_and_removes_the_socket(fake: FakeDockerd) -> None:
    relay = UpgradeRelay(_docker(fake))
    client = _connect(relay.socket_path)
    client.sendall(b"x")
    assert _recv_exactly(client, 1) == b"X"
    relay.close()
    assert client.recv(10) == b""
    client.close()
    assert not Path(relay.socket_path).exists()
    with pytest.raises(OSError):
        _connect(relay.socket_path)


def test_ping_docker(fake: FakeDockerd, short_dir: Path) -> None:
    assert ping_docker(_docker(fake))
    assert not ping_docker(EngineAddress("docker", path=str(short_dir / "missing.sock")))
    garbage = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    garbage.bind(str(short_dir / "g.sock"))
    garbage.listen(1)

    def answer() -> None:
        conn, _ = garbage.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"\x00\x00\x12\x04garbage-not-http\r\n\r\n")

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        assert not ping_docker(EngineAddress("docker", path=str(short_dir / "g.sock")))
    finally:
        t.join(5)
        garbage.close()


def test_docker_get_json_reads_the_body(fake: FakeDockerd) -> None:
    assert docker_get_json(_docker(fake), "/version") == b'{"Version": "20.10.99-fake"}'


def test_tls_cert_without_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="together"):
        TLSConfig(cert=tmp_path / "c.pem").credentials()


def test_tls_missing_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"--tls-ca .*cannot read"):
        TLSConfig(ca=tmp_path / "nope.pem").credentials()


# ---- a whole EngineClient over the relay, against a fake daemon relaying to a grpc server ----


class _Control(control_pb2_grpc.ControlServicer):
    def ListWorkers(
        self, request: control_pb2.ListWorkersRequest, context: grpc.ServicerContext
    ) -> control_pb2.ListWorkersResponse:
        record = worker_pb2.WorkerRecord(ID="fake", platforms=[ops_pb2.Platform(OS="linux", Architecture="amd64")])
        return control_pb2.ListWorkersResponse(record=[record])


@pytest.fixture
def grpc_backend(short_dir: Path) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    control_pb2_grpc.add_ControlServicer_to_server(_Control(), server)
    path = str(short_dir / "grpc.sock")
    server.add_insecure_port(f"unix:{path}")
    server.start()
    yield path
    server.stop(None)


def test_open_engine_speaks_grpc_through_the_upgrade(short_dir: Path, grpc_backend: str) -> None:
    daemon = FakeDockerd(short_dir / "docker.sock", backend=grpc_backend)
    try:
        with open_engine(f"docker://{daemon.socket_path}", env={}) as engine:
            assert engine.kind == "dockerd"
            assert engine.docker_socket == EngineAddress("docker", path=str(daemon.socket_path))
            workers = engine.workers()
            assert [(w.id, w.platforms) for w in workers] == [("fake", ("linux/amd64",))]
    finally:
        daemon.close()
    assert all(u.path == "/grpc" for u in daemon.upgrades)


def test_unix_address_that_is_a_docker_socket_is_detected(short_dir: Path, grpc_backend: str) -> None:
    daemon = FakeDockerd(short_dir / "docker.sock", backend=grpc_backend)
    try:
        with open_engine(f"unix://{daemon.socket_path}", env={}) as engine:
            assert engine.kind == "dockerd"
    finally:
        daemon.close()


def test_unix_address_of_a_grpc_server_is_buildkitd(grpc_backend: str) -> None:
    with open_engine(f"unix://{grpc_backend}", env={}) as engine:
        assert engine.kind == "buildkitd"
        assert engine.docker_socket is None
        with pytest.raises(EngineError, match="only on dockerd"):
            engine.open_raw_stream("/session")


def test_nothing_answers_lists_every_address_tried(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hermetic: the machine's real default sockets may exist (a system dockerd on CI).
    monkeypatch.setattr(address_module, "BUILDKITD_DEFAULT_SOCKET", f"{short_dir}/buildkitd.sock")
    monkeypatch.setattr(address_module, "DOCKER_DEFAULT_SOCKET", f"{short_dir}/docker.sock")
    env = {"DOCKER_HOST": f"unix://{short_dir}/nope-docker.sock"}
    with pytest.raises(EngineUnavailable) as info:
        open_engine(env=env)
    err = info.value
    assert err.tried == (
        f"unix://{short_dir}/buildkitd.sock",
        f"docker://{short_dir}/nope-docker.sock",
        f"docker://{short_dir}/docker.sock",
    )
    for tried in err.tried:
        assert tried in err.message
    assert err.hint is not None and "scripts/engine-up" in err.hint


def test_socket_that_refuses_upgrades_is_unavailable(short_dir: Path) -> None:
    daemon = FakeDockerd(short_dir / "docker.sock", refuse_upgrade=True)
    try:
        with pytest.raises(EngineUnavailable, match="refused the /grpc upgrade"):
            open_engine(f"docker://{daemon.socket_path}", env={})
    finally:
        daemon.close()


def test_closed_client_stops_its_relay(short_dir: Path, grpc_backend: str) -> None:
    daemon = FakeDockerd(short_dir / "docker.sock", backend=grpc_backend)
    try:
        engine = open_engine(f"docker://{daemon.socket_path}", env={})
        relay_path = engine._relay.socket_path if engine._relay else ""
        engine.close()
        engine.close()  # idempotent
        assert relay_path
        assert not Path(relay_path).exists()
    finally:
        daemon.close()
