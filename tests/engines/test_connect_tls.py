"""tcp:// engines with TLS: CA, client certificate and --tls-server-name, against a local grpc server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from builder.cli.errors import EXIT_ENGINE_UNAVAILABLE, EXIT_INVALID, exit_code_for
from builder.engines.buildkit._pb import control_pb2, control_pb2_grpc, worker_pb2
from builder.engines.buildkit.address import EngineAddressError
from builder.engines.buildkit.client import open_engine
from builder.engines.buildkit.connect import TLSConfig
from builder.engines.buildkit.tls import TLSRequired
from builder.errors import EngineUnavailable

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 'buildkit.test' and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        cwd=d,
    )
    for name, cn in (("server", "buildkit.test"), ("client", "builder-client")):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={cn}",
            cwd=d,
        )
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{cn}\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


class _Control(control_pb2_grpc.ControlServicer):
    def ListWorkers(
        self, request: control_pb2.ListWorkersRequest, context: grpc.ServicerContext
    ) -> control_pb2.ListWorkersResponse:
        return control_pb2.ListWorkersResponse(record=[worker_pb2.WorkerRecord(ID="tls-worker")])


@pytest.fixture(scope="module")
def tls_server(pki: Path) -> Iterator[int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    control_pb2_grpc.add_ControlServicer_to_server(_Control(), server)
    creds = grpc.ssl_server_credentials(
        [((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    yield port
    server.stop(None)


def _tls(pki: Path, server_name: str | None = "buildkit.test") -> TLSConfig:
    return TLSConfig(ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client.key", server_name=server_name)


def test_tls_with_client_certificate_and_server_name(pki: Path, tls_server: int) -> None:
    with open_engine(f"tcp://127.0.0.1:{tls_server}", tls=_tls(pki), env={}) as engine:
        assert engine.kind == "buildkitd"
        assert [w.id for w in engine.workers()] == ["tls-worker"]


def test_tls_with_the_wrong_server_name_fails(pki: Path, tls_server: int) -> None:
    with pytest.raises(EngineUnavailable) as info:
        open_engine(f"tcp://127.0.0.1:{tls_server}", tls=_tls(pki, "someone.else"), env={})
    assert f"tcp://127.0.0.1:{tls_server}" in str(info.value)


def test_plain_tcp_to_a_tls_server_fails(tls_server: int) -> None:
    with pytest.raises(EngineUnavailable):
        open_engine(f"tcp://127.0.0.1:{tls_server}", tls=TLSConfig(insecure=True), env={}, connect_timeout=3)


def test_tcp_without_tls_settings_is_refused_before_any_connection() -> None:
    # port 9 on a TEST-NET address: a connection attempt would hang, the refusal is immediate
    with pytest.raises(TLSRequired) as info:
        open_engine("tcp://192.0.2.1:9", env={})
    assert "tcp://192.0.2.1:9" in info.value.message
    assert "--insecure" in (info.value.hint or "")
    assert exit_code_for(info.value) == EXIT_INVALID


def test_tls_settings_come_from_the_buildkit_environment(pki: Path, tls_server: int) -> None:
    env = {
        "BUILDKIT_TLS_CA": str(pki / "ca.pem"),
        "BUILDKIT_TLS_CERT": str(pki / "client.pem"),
        "BUILDKIT_TLS_KEY": str(pki / "client.key"),
        "BUILDKIT_TLS_SERVER_NAME": "buildkit.test",
    }
    with open_engine(f"tcp://127.0.0.1:{tls_server}", env=env) as engine:
        assert engine.tls is not None and engine.tls.ca == pki / "ca.pem"
        assert [w.id for w in engine.workers()] == ["tls-worker"]


def test_a_wrong_server_name_says_the_certificate_was_rejected(pki: Path, tls_server: int) -> None:
    with pytest.raises(EngineUnavailable) as info:
        open_engine(f"tcp://127.0.0.1:{tls_server}", tls=_tls(pki, "someone.else"), env={}, connect_timeout=3)
    assert "certificate" in str(info.value)
    assert exit_code_for(info.value) == EXIT_ENGINE_UNAVAILABLE


def test_insecure_and_tls_files_together_are_refused(pki: Path) -> None:
    with pytest.raises(EngineAddressError):
        TLSConfig(ca=pki / "ca.pem", insecure=True)
    with pytest.raises(EngineAddressError):
        TLSConfig(cert=pki / "client.pem")
