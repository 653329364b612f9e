"""The remote engine: dockerd 26 over TCP + mutual TLS (``ENGINE=dockerd26 INSTANCE=tls TLS=1 scripts/engine-up``).

Connection failures (wrong CA, no client certificate, plain-HTTP and closed ports) must say what
went wrong, name the address, exit 4 and take less than the connect timeout. Verification over
the remote engine removes its container even when builder is interrupted (SIGTERM) mid-wait,
and ``engine du`` / ``engine prune`` run against it. Prune runs only on this private instance:
the shared engines' cache belongs to everyone testing against them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.cli import main
from builder.engines.buildkit.client import open_engine
from builder.engines.buildkit.housekeeping import disk_usage
from builder.engines.buildkit.tls import TLSConfig
from builder.engines.docker_api import DockerAPI
from builder.errors import EngineUnavailable
from builder.verify import VERIFY_LABEL, docker_for_engine
from tests.integration.conftest import ENGINE_DIR, EngineTarget, _read_env

CA = "/etc/ssl/certs/ca-certificates.crt"
TIMEOUT = 3.0

pytestmark = pytest.mark.remote


def _tls_target() -> EngineTarget:
    path = ENGINE_DIR / "tls" / "env"
    if not path.is_file():
        pytest.fail("no TLS engine: run `ENGINE=dockerd26 INSTANCE=tls TLS=1 scripts/engine-up` (make engine-up does)")
    return EngineTarget("tls", _read_env(path))


@pytest.fixture(scope="module")
def remote() -> EngineTarget:
    return _tls_target()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _other_ca(tmp_path: Path) -> Path:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=other",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-out",
            str(tmp_path / "ca.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return tmp_path / "ca.pem"


def _failure(address: str, tls: TLSConfig) -> tuple[EngineUnavailable, float]:
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as info:
        open_engine(address, tls=tls, env={}, connect_timeout=TIMEOUT)
    return info.value, time.monotonic() - started


def test_remote_engine_answers_over_tls(remote: EngineTarget) -> None:
    with open_engine(remote.address, env=remote.env) as engine:
        assert engine.kind == "dockerd" and engine.tls is not None
        assert engine.workers()


def test_wrong_ca_is_a_clear_error(remote: EngineTarget, tmp_path: Path) -> None:
    assert remote.tls is not None
    error, seconds = _failure(
        remote.address, TLSConfig(ca=_other_ca(tmp_path), cert=remote.tls.cert, key=remote.tls.key)
    )
    assert "certificate was rejected" in error.message and remote.address.split("://")[1] in error.message
    assert seconds < TIMEOUT


def test_a_certificate_for_another_host_is_a_clear_error(remote: EngineTarget) -> None:
    assert remote.tls is not None
    tls = TLSConfig(ca=remote.tls.ca, cert=remote.tls.cert, key=remote.tls.key, server_name="build-2.example")
    error, seconds = _failure(remote.address, tls)
    assert "certificate was rejected" in error.message and "build-2.example" in error.message
    assert seconds < TIMEOUT


def test_plain_http_port_is_a_clear_error(remote: EngineTarget) -> None:
    import http.server
    import threading

    assert remote.tls is not None
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"docker+tcp://127.0.0.1:{server.server_address[1]}"
        error, seconds = _failure(address, remote.tls)
    finally:
        server.shutdown()
        server.server_close()
    assert "did not answer with TLS" in error.message and address in error.message
    assert "plain-HTTP" in (error.hint or "")
    assert seconds < TIMEOUT


def test_no_client_certificate_is_a_clear_error(remote: EngineTarget) -> None:
    assert remote.tls is not None
    error, seconds = _failure(remote.address, TLSConfig(ca=remote.tls.ca))
    assert "refused our TLS client certificate" in error.message
    assert seconds < TIMEOUT


def test_closed_port_is_a_clear_error(remote: EngineTarget) -> None:
    assert remote.tls is not None
    address = f"docker+tcp://127.0.0.1:{_free_port()}"
    error, seconds = _failure(address, remote.tls)
    assert "connection refused" in error.message and address in error.message
    assert seconds < TIMEOUT


def test_a_port_that_never_answers_times_out(remote: EngineTarget) -> None:
    assert remote.tls is not None
    with socket.socket() as silent:  # accepts the TCP connection, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        address = f"docker+tcp://127.0.0.1:{silent.getsockname()[1]}"
        error, seconds = _failure(address, remote.tls)
    assert f"no TLS answer within {TIMEOUT:g} s" in error.message
    assert seconds < TIMEOUT + 2


def test_cli_exit_4_and_tcp_without_tls_is_refused(
    remote: EngineTarget, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("BUILDKIT_HOST", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(key, raising=False)
    assert main(["engine", "info", "--engine", remote.address]) == 2  # no TLS settings, no --insecure
    assert "--insecure" in capsys.readouterr().err
    assert remote.tls is not None
    code = main(
        [
            "engine",
            "info",
            "--engine",
            remote.address,
            "--tls-ca",
            str(_other_ca(tmp_path)),
            "--tls-cert",
            str(remote.tls.cert),
            "--tls-key",
            str(remote.tls.key),
            "--connect-timeout",
            "3",
        ]
    )
    assert code == 4
    assert "certificate was rejected" in capsys.readouterr().err


@pytest.fixture(scope="module")
def slow_image(remote: EngineTarget, app_slow_start_module: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    tag = f"builder-remote-slow:{uuid.uuid4().hex[:8]}"
    build(
        app_slow_start_module,
        engine=remote.address,
        tls=remote.tls,
        tag=tag,
        cache_dir=tmp_path_factory.mktemp("c"),
        ca_bundle=CA,
    )
    return tag


@pytest.fixture(scope="module")
def app_slow_start_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    dest = tmp_path_factory.mktemp("apps") / "slow_start"
    shutil.copytree(Path(__file__).resolve().parents[2] / "fixtures" / "apps" / "slow-start", dest)
    return dest


@pytest.mark.parametrize("served", [False, True], ids=["in-process", "served"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_verify_over_the_remote_engine_cleans_up_after_a_signal(
    remote: EngineTarget, slow_image: str, app_slow_start_module: Path, tmp_path: Path, served: bool, signum: int
) -> None:
    docker = docker_for_engine(remote.address, env=remote.env)
    env = {
        k: v
        for k, v in {**os.environ, **remote.env}.items()
        if not k.startswith("BUILDER_SERVER") and k != "BUILDER_VERIFY_TIMEOUT"
    }
    if served:
        server_dir = tmp_path / "srv"
        server_dir.mkdir(mode=0o700)
        env.update(BUILDER_SERVER="auto", BUILDER_SERVER_DIR=str(server_dir))
        started = subprocess.run(
            [sys.executable, "-m", "builder", "server", "start"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert started.returncode == 0, started.stderr
    else:
        env["BUILDER_SERVER"] = "off"
    child = subprocess.Popen(
        [sys.executable, "-m", "builder", "verify", str(app_slow_start_module), "--tag", slow_image],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not _verify_containers(docker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _verify_containers(docker), "the verification container never started"
        child.send_signal(signum)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
        if served:
            subprocess.run(
                [sys.executable, "-m", "builder", "server", "stop"],
                env=env,
                capture_output=True,
                check=False,
                timeout=60,
            )
    assert child.returncode != 0
    assert _verify_containers(docker) == []


def _verify_containers(docker: DockerAPI) -> list[str]:
    return [c["Id"] for c in docker.list_containers(label=VERIFY_LABEL)]


def test_engine_du_matches_docker_system_df(remote: EngineTarget) -> None:
    with open_engine(remote.address, env=remote.env) as engine:
        usage = disk_usage(engine)
    env = {**os.environ, **remote.env}
    out = subprocess.run(
        ["docker", "system", "df", "--format", "{{.Type}}\t{{.Size}}"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("Build Cache"))
    docker_bytes = _parse_docker_size(line.split("\t")[1])
    assert abs(usage.total - docker_bytes) <= max(0.1 * docker_bytes, 1000)


def _parse_docker_size(text: str) -> float:
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise AssertionError(text)


def test_prune_then_plan_predicts_misses_and_build_builds(
    remote: EngineTarget,
    app_build_basic: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in remote.env.items():
        monkeypatch.setenv(key, value)
    # Layers that tagged images hold outlive a build-cache prune on dockerd: drop the images earlier
    # tests tagged on this private engine, so the prune can free every layer of the app.
    docker = docker_for_engine(remote.address, env=remote.env)
    for image in docker.list_images(label="ai.cerebrium.app"):
        docker.request("DELETE", f"/images/{image['Id']}", query={"force": "1"})
    cache = str(tmp_path / "cache")
    build(app_build_basic, engine=remote.address, tls=remote.tls, cache_dir=cache, ca_bundle=CA)
    assert main(["engine", "prune", "--keep-storage", "0", "--all", "--cache-dir", cache]) == 0
    assert "total freed:" in capsys.readouterr().out
    assert main(["plan", str(app_build_basic), "--cache-dir", cache, "--format", "json"]) in (0, 3)
    import json

    plan = json.loads(capsys.readouterr().out)
    statuses = {s["id"]: s for s in plan["steps"]}
    layer_steps = [k for k in statuses if k != "base"]  # dockerd keeps the base image in its image store
    assert all(statuses[k]["status"] == "miss" for k in layer_steps)
    assert all("the engine pruned it" in statuses[k]["reason"] for k in layer_steps)
    result, _, _ = build(app_build_basic, engine=remote.address, tls=remote.tls, cache_dir=cache, ca_bundle=CA)
    observed = {s.step: s.cached for s in result.steps}
    assert all(not observed[k] for k in layer_steps if k in observed and k != "config"), observed
    assert result.mismatches == ()
