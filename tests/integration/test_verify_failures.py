"""Start failures on the real engines: exit 5 with the reason in words, and a JSON result object on failure."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from builder.api import build
from builder.cli import main
from builder.engines.docker_api import DockerAPI
from builder.verify import docker_for_engine
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network  # a cold engine fetches Debian's Python

CA = "/etc/ssl/certs/ca-certificates.crt"


def _custom_app(tmp_path: Path, name: str, entrypoint: list[str], main_py: str) -> Path:
    app = tmp_path / name
    app.mkdir()
    (app / "main.py").write_text(main_py)
    (app / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "{name}"\npython_version = "3.11"\n\n'
        f"[cerebrium.runtime.custom]\nport = 8000\nentrypoint = {json.dumps(entrypoint)}\n"
    )
    return app


def _build(app: Path, target: EngineTarget, tmp_path: Path) -> str:
    tag = f"builder-verify-fail-{app.name}:{uuid.uuid4().hex[:8]}"
    build(app, engine=target.address, tls=target.tls, tag=tag, cache_dir=tmp_path / "cache", ca_bundle=CA)
    return tag


@pytest.fixture
def docker(engine_target: EngineTarget, monkeypatch: pytest.MonkeyPatch) -> DockerAPI:
    for key, value in engine_target.env.items():
        monkeypatch.setenv(key, value)
    return docker_for_engine(engine_target.address, env=engine_target.env, tls=engine_target.tls)


def test_an_entrypoint_missing_from_the_image_is_exit_5_with_a_clear_reason(
    engine_target: EngineTarget, docker: DockerAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _custom_app(
        tmp_path, "no-uvicorn", ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"], "app = None\n"
    )
    tag = _build(app, engine_target, tmp_path)
    capsys.readouterr()
    assert main(["verify", tag, *engine_target.cli_args]) == 5
    err = capsys.readouterr().err
    assert "the container could not start: its entrypoint program 'uvicorn' is not in the image" in err
    assert "the app printed nothing" in err and "[cerebrium.dependencies.pip]" in err
    assert "400" not in err and "executable file not found" not in err  # not the engine's raw answer
    assert main(["verify", tag, "--format", "json", *engine_target.cli_args]) == 5
    result = json.loads(capsys.readouterr().out)
    assert result["ready"] is False and result["exit_code"] == 5 and result["image"] == tag
    assert "'uvicorn' is not in the image" in result["error"] and result["hint"]


def test_an_app_that_exits_silently_says_it_printed_nothing_and_json_has_the_result(
    engine_target: EngineTarget, docker: DockerAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _custom_app(tmp_path, "silent", ["python", "main.py"], "def predict():\n    return 1\n")
    tag = _build(app, engine_target, tmp_path)
    capsys.readouterr()
    assert main(["verify", str(app), "--tag", tag, "--format", "json", *engine_target.cli_args]) == 5
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["ready"] is False and result["exit_code"] == 5 and result["logs_tail"] == []
    assert "exited with code 0" in result["error"] and result["error"].endswith("the app printed nothing")
    assert "the app printed nothing" in captured.err and "log lines above" not in captured.err


def test_a_crashing_app_json_failure_carries_its_log(
    app_crash_start: Path,
    engine_target: EngineTarget,
    docker: DockerAPI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag = _build(app_crash_start, engine_target, tmp_path)
    capsys.readouterr()
    assert main(["verify", tag, "--format", "json", *engine_target.cli_args]) == 5
    result = json.loads(capsys.readouterr().out)
    assert result["ready"] is False and "exited with code 1" in result["error"]
    assert any("FileNotFoundError" in line for line in result["logs_tail"])
