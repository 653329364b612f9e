"""Startup verification on the real engine: ready, too slow, crashing — and never a container left behind.

Each app is built with ``builder build`` on the engine under test, then
started through the engine's Docker API (host networking).  The slow app uses
the test-only ``BUILDER_VERIFY_TIMEOUT`` so the timeout case takes seconds.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.cli import main
from builder.config import load_config
from builder.engines.docker_api import DockerAPI
from builder.errors import VerifyFailed
from builder.verify import VERIFY_LABEL, VerifySettings, docker_for_engine, verify_image
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network  # the python/pip steps fetch from Debian and PyPI on a cold engine

CA = "/etc/ssl/certs/ca-certificates.crt"


def build_tagged(app: Path, target: EngineTarget, tmp_path: Path) -> str:
    tag = f"builder-verify-test-{app.name}:{uuid.uuid4().hex[:8]}"
    build(app, engine=target.address, tls=target.tls, tag=tag, cache_dir=tmp_path / "cache", ca_bundle=CA)
    return tag


@pytest.fixture
def docker(engine_target: EngineTarget) -> DockerAPI:
    return docker_for_engine(engine_target.address, env=engine_target.env)


def leftovers(docker: DockerAPI) -> list[str]:
    return [c["Id"] for c in docker.list_containers(label=VERIFY_LABEL)]


def test_good_app_becomes_ready_and_reports_its_time(
    app_quickstart: Path, engine_target: EngineTarget, docker: DockerAPI, tmp_path: Path
) -> None:
    tag = build_tagged(app_quickstart, engine_target, tmp_path)
    result = verify_image(tag, VerifySettings.from_config(load_config(app_quickstart)), docker=docker)
    assert result.ready and result.seconds_to_ready > 0
    assert result.checks == ("GET /ready -> 200", "GET /health -> 200")
    assert any("listening on :8090" in line for line in result.logs_tail)
    assert leftovers(docker) == []


def test_slow_app_times_out_with_its_logs(
    app_slow_start: Path,
    engine_target: EngineTarget,
    docker: DockerAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = build_tagged(app_slow_start, engine_target, tmp_path)
    monkeypatch.setenv("BUILDER_VERIFY_TIMEOUT", "4")
    settings = VerifySettings.from_config(load_config(app_slow_start))
    assert settings.timeout == 4.0
    with pytest.raises(VerifyFailed, match=r"not ready after 4s \(last check: GET /ready") as info:
        verify_image(tag, settings, docker=docker)
    assert any("warming up the model cache" in line for line in info.value.logs)
    assert leftovers(docker) == []


def test_crashing_app_fails_fast_with_its_logs(
    app_crash_start: Path, engine_target: EngineTarget, docker: DockerAPI, tmp_path: Path
) -> None:
    tag = build_tagged(app_crash_start, engine_target, tmp_path)
    settings = VerifySettings.from_config(load_config(app_crash_start))
    assert settings.timeout == 600.0  # it must fail on the exit, not on the timeout
    with pytest.raises(VerifyFailed, match="exited with code 1") as info:
        verify_image(tag, settings, docker=docker)
    logs = "\n".join(info.value.logs)
    assert "crash-start: loading /models/weights.bin" in logs and "FileNotFoundError" in logs
    assert leftovers(docker) == []


@pytest.mark.remote  # the tls engine runs it too: the Engine API (verify's container) over TLS
def test_cli_verify_exit_codes(
    app_crash_start: Path,
    app_quickstart: Path,
    engine_target: EngineTarget,
    docker: DockerAPI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in engine_target.env.items():
        monkeypatch.setenv(key, value)
    good = build_tagged(app_quickstart, engine_target, tmp_path)
    bad = build_tagged(app_crash_start, engine_target, tmp_path)
    assert main(["verify", good]) == 0
    assert f"ready: {good} in " in capsys.readouterr().out
    assert main(["verify", str(app_crash_start), "--tag", bad]) == 5
    err = capsys.readouterr().err
    assert "exited with code 1" in err and "  | FileNotFoundError" in err
    assert leftovers(docker) == []


def test_missing_image_is_a_verify_failure(
    engine_target: EngineTarget, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in engine_target.env.items():
        monkeypatch.setenv(key, value)
    assert main(["verify", f"builder-no-such-image-{os.getpid()}:x"]) == 5
    assert "no image" in capsys.readouterr().err


def test_build_verify_flag(
    app_quickstart: Path,
    app_crash_start: Path,
    engine_target: EngineTarget,
    docker: DockerAPI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = [
        *engine_target.cli_args,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--ca-bundle",
        CA,
        "--progress",
        "plain",
        "--verify",
    ]
    tag = f"builder-verify-flag:{uuid.uuid4().hex[:8]}"
    assert main(["build", str(app_quickstart), "--tag", tag, *common]) == 0
    assert f"ready: {tag} in " in capsys.readouterr().out
    assert main(["build", str(app_crash_start), "--tag", tag + "-crash", *common]) == 5
    assert "FileNotFoundError" in capsys.readouterr().err
    assert main(["build", str(app_quickstart), *common]) == 2  # --verify without --tag
    assert leftovers(docker) == []
