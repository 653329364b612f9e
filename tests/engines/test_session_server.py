"""The session server over a real Control.Session byte stream, with a loopback daemon."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from builder.engines.buildkit._pb import auth_pb2, control_pb2, control_pb2_grpc, filesync_pb2, fsutil_pb2, secrets_pb2
from builder.engines.buildkit.session import (
    CA_BUNDLE_SECRET_ID,
    DiffCopyReceiver,
    DiffCopySender,
    DirectoryOutput,
    FileSendProvider,
    FileSyncProvider,
    SecretsProvider,
    Session,
    SessionError,
    SyncedDir,
    TarballOutput,
    TransferError,
    walk_directory,
)
from builder.engines.buildkit.session.loopback import AttachedSession, LoopbackDaemon
from builder.engines.buildkit.session.relay import docker_session_upgrade
from builder.engines.buildkit.session.stream import ClientCallStream
from builder.errors import ConfigError

FILESYNC = "/moby.filesync.v1.FileSync/DiffCopy"
FILESEND = "/moby.filesync.v1.FileSend/DiffCopy"
HEALTH = "/grpc.health.v1.Health/Check"
SECRET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"


@pytest.fixture(params=["h2", "grpcio"])
def impl(request: pytest.FixtureRequest) -> str:
    """Every test runs with both gRPC server implementations."""
    return str(request.param)


@pytest.fixture
def start(impl: str) -> Callable[..., Session]:
    return functools.partial(Session.start, implementation=impl)


@pytest.fixture
def daemon() -> Iterator[LoopbackDaemon]:
    with LoopbackDaemon() as d:
        yield d


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.py").write_text("print('hi')\n")
    (root / "big.bin").write_bytes(os.urandom(300_000))
    (root / "notes.md").write_text("# notes\n")
    return root


def pull_dir(peer: AttachedSession, name: str, dest: Path, metadata: tuple[tuple[str, str], ...] = ()) -> None:
    """Do what the daemon does for local://<name>: call DiffCopy and receive."""
    stream = ClientCallStream(
        peer.channel.stream_stream(FILESYNC), fsutil_pb2.Packet.FromString, metadata=(("dir-name", name), *metadata)
    )
    DiffCopyReceiver(dest).run(stream)
    stream.close()


def test_headers_list_every_served_method(daemon: LoopbackDaemon, project: Path, start: Callable[..., Session]) -> None:
    secrets = SecretsProvider({"k": b"v"})
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with start(daemon.channel(), files, secrets, name="demo", shared_key="sk") as session:
        assert session.methods() == (HEALTH, SECRET, FILESYNC)
        peer = daemon.attached(session.id)
        assert peer.header("x-docker-expose-session-uuid") == [session.id]
        assert peer.header("x-docker-expose-session-name") == ["demo"]
        assert peer.header("x-docker-expose-session-sharedkey") == ["sk"]
        assert peer.header("x-docker-expose-session-grpc-method") == [HEALTH, SECRET, FILESYNC]
        assert peer.check_health() == 1


def test_default_shared_key_is_stable_per_project(project: Path, tmp_path: Path) -> None:
    one = Session([FileSyncProvider({"context": SyncedDir.whole(project)})])
    two = Session([FileSyncProvider({"context": SyncedDir.whole(project)})])
    other = Session([FileSyncProvider({"context": SyncedDir(tmp_path, ())})])
    assert one.shared_key == two.shared_key != other.shared_key
    assert one.id != two.id


def test_local_source_is_served_through_the_session(
    daemon: LoopbackDaemon, project: Path, tmp_path: Path, start: Callable[..., Session]
) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with start(daemon.channel(), files) as session:
        peer = daemon.attached(session.id)
        pull_dir(peer, "context", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == (project / "big.bin").read_bytes()
    assert [e.relpath for e in walk_directory(tmp_path / "out")] == [e.relpath for e in walk_directory(project)]
    (report,) = files.transfers
    assert report.dir_name == "context"
    assert report.complete
    assert sorted(report.requested) == ["big.bin", "notes.md", "src/main.py"]


def test_include_and_exclude_metadata_are_honoured(
    daemon: LoopbackDaemon, project: Path, tmp_path: Path, start: Callable[..., Session]
) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with start(daemon.channel(), files) as session:
        peer = daemon.attached(session.id)
        metadata = (("include-patterns", "src"), ("include-patterns", "notes%2Emd"), ("include-patterns-encoded", "1"))
        pull_dir(peer, "context", tmp_path / "out", (*metadata, ("exclude-patterns", "**/*.py")))
    assert [e.relpath for e in walk_directory(tmp_path / "out")] == ["notes.md", "src"]


def test_unknown_directory_is_not_found(
    daemon: LoopbackDaemon, project: Path, tmp_path: Path, start: Callable[..., Session]
) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with start(daemon.channel(), files) as session:
        peer = daemon.attached(session.id)
        with pytest.raises(TransferError, match="NOT_FOUND"):
            pull_dir(peer, "other", tmp_path / "out")


def test_health_answers_while_a_transfer_is_in_flight(
    daemon: LoopbackDaemon, project: Path, start: Callable[..., Session]
) -> None:
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with start(daemon.channel(), files) as session:
        peer = daemon.attached(session.id)
        stream = ClientCallStream(
            peer.channel.stream_stream(FILESYNC), fsutil_pb2.Packet.FromString, metadata=(("dir-name", "context"),)
        )
        assert stream.recv() is not None  # the transfer has started and now waits for us
        assert peer.check_health() == 1
        stream.call.cancel()


def test_unserved_methods_are_unimplemented(daemon: LoopbackDaemon, start: Callable[..., Session]) -> None:
    with start(daemon.channel()) as session:
        peer = daemon.attached(session.id)
        credentials = peer.channel.unary_unary(
            "/moby.filesync.v1.Auth/Credentials",
            request_serializer=auth_pb2.CredentialsRequest.SerializeToString,
            response_deserializer=auth_pb2.CredentialsResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as info:
            credentials(auth_pb2.CredentialsRequest(Host="docker.io"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def get_secret(peer: AttachedSession, secret_id: str) -> bytes:
    call = peer.channel.unary_unary(
        SECRET,
        request_serializer=secrets_pb2.GetSecretRequest.SerializeToString,
        response_deserializer=secrets_pb2.GetSecretResponse.FromString,
    )
    return bytes(call(secrets_pb2.GetSecretRequest(ID=secret_id), timeout=10).data)


def test_secrets_found_and_not_found(daemon: LoopbackDaemon, tmp_path: Path, start: Callable[..., Session]) -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "ca.pem").write_bytes(pem)
    provider = SecretsProvider.with_ca_bundle(tmp_path / "ca.pem")
    with start(daemon.channel(), provider) as session:
        peer = daemon.attached(session.id)
        assert get_secret(peer, CA_BUNDLE_SECRET_ID) == pem
        with pytest.raises(grpc.RpcError) as info:
            get_secret(peer, "nope")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert provider.requested == [CA_BUNDLE_SECRET_ID, "nope"]


def test_ca_bundle_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the CA bundle") as info:
        SecretsProvider.with_ca_bundle(tmp_path / "missing.pem")
    assert info.value.file == str(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="no PEM certificate"):
        SecretsProvider.with_ca_bundle(tmp_path / "junk.pem")


@pytest.mark.parametrize("kind", ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])
def test_a_ca_bundle_holding_a_private_key_is_refused(tmp_path: Path, kind: str) -> None:
    """The bundle reaches every install step's processes: a key pasted into it must never be offered."""
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "mixed.pem").write_text(cert + f"-----BEGIN {kind}-----\nMIIE\n-----END {kind}-----\n")
    with pytest.raises(ConfigError, match="holds a private key") as info:
        SecretsProvider.with_ca_bundle(tmp_path / "mixed.pem")
    assert info.value.file == str(tmp_path / "mixed.pem") and "MIIE" not in str(info.value)
    (tmp_path / "certs.pem").write_text(cert + "# a PUBLIC KEY is fine\n")
    assert SecretsProvider.with_ca_bundle(tmp_path / "certs.pem") is not None


def send_bytes(peer: AttachedSession, chunks: list[bytes], metadata: tuple[tuple[str, str], ...] = ()) -> grpc.Call:
    call = peer.channel.stream_stream(FILESEND)
    responses = call(iter([filesync_pb2.BytesMessage(data=c).SerializeToString() for c in chunks]), metadata=metadata)
    assert list(responses) == []
    return responses  # type: ignore[return-value]


def test_tarball_export_is_written_whole(daemon: LoopbackDaemon, tmp_path: Path, start: Callable[..., Session]) -> None:
    target = TarballOutput(tmp_path / "out" / "image.tar")
    chunks = [os.urandom(n) for n in (1, 32 * 1024, 0, 100_000)]
    with start(daemon.channel(), FileSendProvider(target)) as session:
        peer = daemon.attached(session.id)
        call = send_bytes(peer, chunks, (("exporter-md-containerimage.digest", "sha256:abc"),))
        assert call.code() == grpc.StatusCode.OK
    assert (tmp_path / "out" / "image.tar").read_bytes() == b"".join(chunks)
    assert target.done and target.bytes_written == sum(map(len, chunks))
    assert target.metadata == {"containerimage.digest": "sha256:abc"}
    assert os.listdir(tmp_path / "out") == ["image.tar"]


def test_interrupted_tarball_export_leaves_no_file(
    daemon: LoopbackDaemon, tmp_path: Path, start: Callable[..., Session]
) -> None:
    target = TarballOutput(tmp_path / "image.tar")
    gate = threading.Event()

    def requests() -> Iterator[bytes]:
        yield filesync_pb2.BytesMessage(data=b"partial").SerializeToString()
        gate.wait(10)

    with start(daemon.channel(), FileSendProvider(target)) as session:
        peer = daemon.attached(session.id)
        call = peer.channel.stream_stream(FILESEND)(requests())
        while target.bytes_written == 0:
            threading.Event().wait(0.01)
        call.cancel()
        gate.set()
    assert not target.done
    # The handler's thread removes its temporary file once grpcio ends the cancelled call's iterator,
    # which can come a moment after the session has closed on a loaded machine.
    deadline = time.monotonic() + 10
    while os.listdir(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert os.listdir(tmp_path) == []


def test_local_export_is_received_into_a_directory(
    daemon: LoopbackDaemon, project: Path, tmp_path: Path, start: Callable[..., Session]
) -> None:
    target = DirectoryOutput(tmp_path / "export")
    with start(daemon.channel(), FileSendProvider(target)) as session:
        peer = daemon.attached(session.id)
        stream = ClientCallStream(peer.channel.stream_stream(FILESEND), fsutil_pb2.Packet.FromString)
        DiffCopySender(project, walk_directory(project)).run(stream)  # the daemon is the sender here
        stream.close()
    assert target.done
    assert target.paths == ["big.bin", "notes.md", "src", "src/main.py"]
    assert (tmp_path / "export" / "big.bin").read_bytes() == (project / "big.bin").read_bytes()


def test_second_output_is_chosen_by_exporter_id(
    daemon: LoopbackDaemon, tmp_path: Path, start: Callable[..., Session]
) -> None:
    first, second = TarballOutput(tmp_path / "a.tar"), TarballOutput(tmp_path / "b.tar")
    with start(daemon.channel(), FileSendProvider(first, second)) as session:
        peer = daemon.attached(session.id)
        send_bytes(peer, [b"B"], (("buildkit-attachable-exporter-id", "1"),))
    assert not first.done
    assert (tmp_path / "b.tar").read_bytes() == b"B"


def test_close_ends_the_session_and_removes_the_socket(daemon: LoopbackDaemon, start: Callable[..., Session]) -> None:
    session = start(daemon.channel())
    peer = daemon.attached(session.id)
    server_dir = os.path.dirname(session._server.path) if session._server else None
    assert server_dir is None or os.path.isdir(server_dir)
    session.close()
    assert peer.closed.wait(10)
    assert server_dir is None or not os.path.exists(server_dir)
    session.close()  # idempotent


def test_engine_without_sessions_fails_clearly(tmp_path: Path, start: Callable[..., Session]) -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))  # answers every method with UNIMPLEMENTED
    server.add_insecure_port(f"unix:{tmp_path}/c.sock")
    server.start()
    try:
        with (
            grpc.insecure_channel(f"unix:{tmp_path}/c.sock") as channel,
            pytest.raises(SessionError, match="did not attach"),
        ):
            start(channel)
    finally:
        server.stop(None)


def test_upgraded_socket_transport(tmp_path: Path, project: Path, impl: str) -> None:
    """The /session route: the daemon's HTTP/2 client arrives on a raw socket we relay."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "d.sock"))
    listener.listen(1)
    seen: list[tuple[str, str]] = []
    daemon_channel = grpc.insecure_channel(f"unix:{tmp_path}/d.sock")

    def open_socket(headers: list[tuple[str, str]]) -> tuple[socket.socket, bytes]:
        seen.extend(headers)
        grpc.channel_ready_future(daemon_channel)  # the "daemon" dials and sends its preface
        conn, _ = listener.accept()
        return conn, b""

    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with Session.start_upgraded(open_socket, files, implementation=impl) as session:
        assert ("x-docker-expose-session-uuid", session.id) in seen
        peer = AttachedSession(tuple(seen), str(tmp_path / "unused"))
        peer.channel = daemon_channel
        assert peer.check_health() == 1
        pull_dir(peer, "context", tmp_path / "out")
    daemon_channel.close()
    listener.close()
    assert (tmp_path / "out" / "src" / "main.py").read_text() == "print('hi')\n"


def test_control_stub_works_like_a_channel(daemon: LoopbackDaemon, start: Callable[..., Session]) -> None:
    stub = control_pb2_grpc.ControlStub(daemon.channel())
    with start(stub) as session:
        assert daemon.attached(session.id).check_health() == 1
    assert control_pb2.BytesMessage(data=b"x").SerializeToString() == b"\n\x01x"


def test_large_messages_both_ways(daemon: LoopbackDaemon, tmp_path: Path, start: Callable[..., Session]) -> None:
    """Messages far above HTTP/2's 16 KiB frames and 64 KiB default windows (flow control both ways)."""
    big_secret = os.urandom(400 * 1024)
    target = TarballOutput(tmp_path / "big.tar")
    chunks = [os.urandom(3 * 1024 * 1024) for _ in range(3)]
    with start(daemon.channel(), SecretsProvider({"big": big_secret}), FileSendProvider(target)) as session:
        peer = daemon.attached(session.id)
        assert get_secret(peer, "big") == big_secret
        send_bytes(peer, chunks)
    assert target.path.read_bytes() == b"".join(chunks)


class Exploding:
    """An attachable whose handler fails with a bug."""

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        def boom(request: bytes, context: grpc.ServicerContext) -> bytes:
            raise RuntimeError("bug in a handler")

        return {"/test.Boom/Now": grpc.unary_unary_rpc_method_handler(boom)}


def test_a_failing_handler_fails_only_its_call(daemon: LoopbackDaemon, start: Callable[..., Session]) -> None:
    with start(daemon.channel(), Exploding()) as session:
        peer = daemon.attached(session.id)
        with pytest.raises(grpc.RpcError) as info:
            peer.channel.unary_unary("/test.Boom/Now")(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
        assert peer.check_health() == 1


@pytest.mark.parametrize("max_chunk", [1, 7, 1000])
def test_chunk_boundaries_mean_nothing(tmp_path: Path, project: Path, impl: str, max_chunk: int) -> None:
    """The daemon may slice its HTTP/2 bytes anywhere, down to one byte per BytesMessage."""
    (project / "big.bin").write_bytes(os.urandom(20_000))  # keep the 1-byte case quick
    files = FileSyncProvider({"context": SyncedDir.whole(project)})
    with (
        LoopbackDaemon(max_chunk=max_chunk) as daemon,
        Session.start(daemon.channel(), files, implementation=impl) as s,
    ):
        peer = daemon.attached(s.id)
        assert peer.check_health() == 1
        pull_dir(peer, "context", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == (project / "big.bin").read_bytes()


def fake_dockerd(tmp_path: Path, reply: bytes) -> tuple[str, list[bytes], threading.Thread]:
    """A one-shot unix-socket server that records the request and answers ``reply``."""
    path = str(tmp_path / "docker.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        seen.append(data)
        conn.sendall(reply)
        conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return path, seen, thread


def test_docker_session_upgrade_sends_canonical_headers(tmp_path: Path) -> None:
    path, seen, thread = fake_dockerd(tmp_path, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\nPRI-early")
    sock, early = docker_session_upgrade(
        path, [("x-docker-expose-session-uuid", "abc"), ("x-docker-expose-session-grpc-method", "/a/B")]
    )
    sock.close()
    thread.join(5)
    request = seen[0].decode()
    assert request.startswith("POST /session HTTP/1.1\r\n")
    assert "Upgrade: h2c\r\n" in request and "Connection: Upgrade\r\n" in request
    assert "X-Docker-Expose-Session-Uuid: abc\r\n" in request
    assert "X-Docker-Expose-Session-Grpc-Method: /a/B\r\n" in request
    assert early == b"PRI-early"


def test_docker_session_refusal_and_bad_headers(tmp_path: Path) -> None:
    path, _, thread = fake_dockerd(tmp_path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ConnectionError, match="404"):
        docker_session_upgrade(path, [])
    thread.join(5)
    with pytest.raises(ConnectionError, match="invalid session header"):
        docker_session_upgrade(path, [("x-evil", "a\r\nInjected: 1")])
    with pytest.raises(SessionError, match="could not open a session"):
        Session.start_docker(str(tmp_path / "nothing.sock"))
