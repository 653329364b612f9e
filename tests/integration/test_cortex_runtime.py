"""The default (Cortex) runtime on the real engines: build the fixture app, verify it, call every kind of endpoint.

The app's container runs with no network of its own; a second container from the same image joins its
network namespace and makes the calls (so no host port is needed and parallel runs cannot collide).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.api import build
from builder.cli import main
from builder.engines import BuildOptions
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.dockerfile_build import DockerfileSource, build_dockerfile
from builder.engines.docker_api import DockerAPI
from builder.verify import docker_for_engine
from tests.integration.conftest import EngineTarget

pytestmark = pytest.mark.network  # a cold engine fetches Python from PyPI

CA = "/etc/ssl/certs/ca-certificates.crt"
LABEL = "dev.builder.test.cortex"

CLIENT = r"""
import json, os, time, urllib.error, urllib.request

def call(method, path, body=None, accept="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:8000" + path, data=data, method=method,
                                 headers={"Accept": accept, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()

for _ in range(300):
    try:
        if call("GET", "/ready")[0] == 200:
            break
    except OSError:
        pass
    time.sleep(0.1)
out = {
    "predict": call("POST", "/predict", {"prompt": "hi", "times": 2}),
    "predict_bad_type": call("POST", "/predict", {"prompt": "hi", "times": "two"}),
    "embed": call("POST", "/embed", {"text": "a b c"}),
    "stream": call("POST", "/stream", {"n": 3}, accept="text/event-stream"),
    "helper": call("POST", "/_helper", {}),
    "explode": call("POST", "/explode", {"message": "kaboom"}),
    "validate": call("POST", "/validate", {"value": -1}),
    "async": call("POST", "/slow?async=true", {"seconds": 0.1}),
    "health": call("GET", "/health"),
    "main_in_cortex": os.path.isfile("/cortex/main.py") and not os.path.exists("/app/main.py"),
}
time.sleep(0.5)  # the background run finishes and logs
print("RESULT " + json.dumps(out))
"""


@pytest.fixture
def docker(engine_target: EngineTarget) -> Iterator[DockerAPI]:
    api = docker_for_engine(engine_target.address, env=engine_target.env, tls=engine_target.tls)
    yield api
    for container in api.list_containers(label=LABEL):
        api.remove_container(str(container["Id"]))


def _wait_exit(docker: DockerAPI, container_id: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while docker.container_state(container_id).running:
        assert time.monotonic() < deadline, "the client container did not finish"
        time.sleep(0.2)


def _exercise(docker: DockerAPI, image: str) -> tuple[dict[str, list], str]:
    """Run the app with no network, call it from a container in its namespace; the calls' results and the app's log."""
    server = docker.create_container(
        {"Image": image, "Labels": {LABEL: "1"}, "HostConfig": {"NetworkMode": "none"}},
        name=f"builder-cortex-{uuid.uuid4().hex[:10]}",
    )
    docker.start_container(server)
    client = docker.create_container(
        {
            "Image": image,
            "Labels": {LABEL: "1"},
            "Entrypoint": ["/opt/venv/bin/python", "-c", CLIENT],
            "HostConfig": {"NetworkMode": f"container:{server}"},
        },
        name=f"builder-cortex-client-{uuid.uuid4().hex[:10]}",
    )
    docker.start_container(client)
    _wait_exit(docker, client)
    lines = docker.container_logs(client, tail=50)
    result = next((line.removeprefix("RESULT ") for line in lines if line.startswith("RESULT ")), None)
    assert result is not None, "\n".join(lines)
    return json.loads(result), "\n".join(docker.container_logs(server, tail=200))


def test_default_runtime_app_builds_verifies_and_serves_its_functions(
    app_cortex_default: Path,
    engine_target: EngineTarget,
    docker: DockerAPI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag = f"builder-cortex-test:{uuid.uuid4().hex[:8]}"
    _, analysis, _ = build(
        app_cortex_default,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=tag,
        cache_dir=tmp_path / "cache",
        ca_bundle=CA,
    )
    assert [s.id.value for s in analysis.steps] == ["base", "python", "runtime", "files", "config"]
    for key, value in engine_target.env.items():
        monkeypatch.setenv(key, value)
    assert main(["verify", tag, "--format", "json", *engine_target.cli_args]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["ready"] is True and verified["checks"] == ["GET /ready -> 200", "GET /health -> 200"]

    calls, log = _exercise(docker, tag)
    status, _, body = calls["predict"]
    assert status == 200
    answer = json.loads(body)
    assert answer["result"] == {"text": "hi hi", "temperature": None}
    assert answer["run_id"] and isinstance(answer["run_time_ms"], float | int)
    assert calls["predict_bad_type"][0] == 422
    assert calls["embed"][0] == 200 and json.loads(calls["embed"][2])["result"] == [5, 3]
    status, content_type, body = calls["stream"]
    assert status == 200 and content_type.startswith("text/event-stream")
    assert [line for line in body.splitlines() if line] == [f'data: {{"token": {i}}}' for i in range(3)]
    assert calls["helper"][0] == 404
    status, _, body = calls["explode"]
    assert status == 500 and "ValueError: kaboom" in json.loads(body)["error"]
    assert "Traceback (most recent call last)" in log and "ValueError: kaboom" in log
    status, _, body = calls["validate"]
    assert status == 422 and json.loads(body)["result"]["error"] == "value must not be negative"
    status, _, body = calls["async"]
    assert status == 202 and set(json.loads(body)) == {"run_id"}
    assert f"run {json.loads(body)['run_id']}: slow finished" in log
    assert calls["health"][0] == 200
    assert calls["main_in_cortex"] is True
    assert "importing main from /cortex" in log


def test_the_dockerfile_export_of_a_default_runtime_app_builds_the_same_image_and_serves(
    app_cortex_default: Path, engine_target: EngineTarget, engine: EngineClient, docker: DockerAPI, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex[:8]
    ours, theirs = f"builder-cortex-ours:{nonce}", f"builder-cortex-export:{nonce}"
    build(
        app_cortex_default,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=ours,
        cache_dir=tmp_path / "cache",
        ca_bundle=CA,
    )
    assert (
        main(
            [
                "dockerfile",
                str(app_cortex_default),
                "-o",
                str(app_cortex_default),
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    build_dockerfile(
        engine, DockerfileSource.directory(app_cortex_default), BuildOptions(tag=theirs, ca_bundle=Path(CA))
    )
    a, b = (docker.inspect_image(tag)["Config"] for tag in (ours, theirs))
    for key in ("Entrypoint", "WorkingDir", "ExposedPorts", "Labels", "Healthcheck"):
        assert a.get(key) == b.get(key), key
    assert a["Entrypoint"][:2] == ["/opt/venv/bin/python", "/opt/builder/runtime/cortex_server.py"]
    calls, log = _exercise(docker, theirs)  # the export's image serves like builder's
    assert calls["predict"][0] == 200 and calls["main_in_cortex"] is True
    assert "importing main from /cortex" in log
