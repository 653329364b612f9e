"""``builder dev`` on the real engines: edits are rebuilt, replaced and served; failures leave the loop alive.

Each test copies the quickstart app into a temporary directory and gives it a free port (the local
engines have no bridge network, so the app shares the engine host's ports). The loop is driven
through the Python API (``builder.dev``) and, for Ctrl-C, as a ``builder dev`` process; what is left
on the engine is checked through its Docker API.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import builder
from builder.cli import main
from builder.devloop import DEV_LABEL, DevChange, DevFailed, DevPlanned, DevReady, dev_tag
from builder.engines.docker_api import DockerAPI
from builder.engines.events import StepFinished
from builder.verify import docker_for_engine
from tests.integration.conftest import REPO_ROOT, EngineTarget

pytestmark = pytest.mark.network  # a cold engine fetches Python and six

CA = "/etc/ssl/certs/ca-certificates.crt"
QUICKSTART = REPO_ROOT / "fixtures" / "apps" / "quickstart"
WAIT = 240.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app(tmp_path: Path) -> tuple[Path, int]:
    """The quickstart app on a free port, with a per-test app name (so leftovers are per test)."""
    port = free_port()
    target = tmp_path / "app"
    target.mkdir()
    for name in ("main.py", "static"):
        src = QUICKSTART / name
        if src.is_dir():
            (target / name).mkdir()
            for f in src.iterdir():
                (target / name / f.name).write_bytes(f.read_bytes())
        else:
            (target / name).write_text(src.read_text().replace('"8090"', f'"{port}"'))
    toml = (QUICKSTART / "cerebrium.toml").read_text()
    toml = toml.replace("port = 8090", f"port = {port}").replace('name = "quickstart"', f'name = "devtest-{port}"')
    (target / "cerebrium.toml").write_text(toml)
    return target, port


@pytest.fixture
def docker(engine_target: EngineTarget) -> DockerAPI:
    return docker_for_engine(engine_target.address, env=engine_target.env, tls=engine_target.tls)


class Events:
    """Collects the loop's events (from its threads) and waits for the next one of a type."""

    def __init__(self) -> None:
        self.all: list[Any] = []
        self._queue: queue.Queue[Any] = queue.Queue()

    def __call__(self, event: Any) -> None:
        self.all.append(event)
        self._queue.put(event)

    def next(self, *types: type, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {[t.__name__ for t in types]} event in {timeout:g}s; saw {self.all[-30:]}")
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(event, types):
                return event

    def since(self, mark: int) -> list[Any]:
        return self.all[mark:]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def dev_containers(docker: DockerAPI, app_name: str) -> list[str]:
    return [c["Id"] for c in docker.list_containers(label=f"{DEV_LABEL}={app_name}")]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new))


@pytest.fixture
def loop(
    app: tuple[Path, int], engine_target: EngineTarget, tmp_path: Path, docker: DockerAPI
) -> Iterator[tuple[Any, Events]]:
    root, _port = app
    events = Events()
    handle = builder.dev(
        root,
        engine=engine_target.address,
        tls=engine_target.tls,
        ca_bundle=CA,
        cache_dir=tmp_path / "cache",
        on_event=events,
    )
    try:
        yield handle, events
    finally:
        handle.stop()
        assert dev_containers(docker, f"devtest-{_port}") == []


def test_source_edit_is_served_and_a_pip_edit_rebuilds_pip_as_predicted(
    loop: tuple[Any, Events], app: tuple[Path, int]
) -> None:
    handle, events = loop
    root, port = app
    first = events.next(DevReady, DevFailed)
    assert isinstance(first, DevReady), first
    assert first.url == f"http://127.0.0.1:{port}" and handle.url == first.url
    assert get(first.url + "/ready") == "ready\n"

    edit(root / "main.py", 'body = b"ready\\n"', 'body = b"ready, edited\\n"')
    change = events.next(DevChange)
    assert change.paths == ("main.py",)
    planned = events.next(DevPlanned)
    assert "files" in planned.rebuild and "pip" not in planned.rebuild and "main.py" in planned.reason
    ready = events.next(DevReady, DevFailed)
    assert isinstance(ready, DevReady), ready
    assert ready.seconds > 0 and get(ready.url + "/ready") == "ready, edited\n"

    mark = len(events.all)
    nonce = int.from_bytes(os.urandom(4), "big")  # a never-true marker: a requirement set new to the engine
    edit(
        root / "cerebrium.toml", 'six = "==1.16.0"', f'six = "==1.17.0"\nidna = \'==3.7; python_version < "2.{nonce}"\''
    )
    assert events.next(DevChange).paths == ("cerebrium.toml",)
    planned = events.next(DevPlanned)
    assert planned.rebuild[0] == "pip" and "six" in planned.reason
    ready = events.next(DevReady, DevFailed)
    assert isinstance(ready, DevReady), ready
    pip = [e for e in events.since(mark) if isinstance(e, StepFinished) and e.step == "pip"]
    assert pip and pip[-1].cached is False and pip[-1].predicted == "miss"
    assert get(ready.url + "/health") == "ok six=1.17.0\n"


def test_a_broken_build_and_a_crashing_start_leave_the_old_app_answering(
    loop: tuple[Any, Events], app: tuple[Path, int], docker: DockerAPI
) -> None:
    handle, events = loop
    root, port = app
    ready = events.next(DevReady, DevFailed)
    assert isinstance(ready, DevReady), ready

    edit(root / "cerebrium.toml", "shell_commands = [", 'shell_commands = ["echo build-broken-here >&2; exit 3", ')
    failed = events.next(DevFailed, DevReady)
    assert isinstance(failed, DevFailed) and failed.stage == "build", failed
    assert any("build-broken-here" in line for line in failed.logs) and failed.serving
    assert handle.running and get(ready.url + "/ready") == "ready\n"  # the old container still answers

    edit(root / "cerebrium.toml", '"echo build-broken-here >&2; exit 3", ', "")
    assert isinstance(events.next(DevReady, DevFailed), DevReady)

    edit(root / "main.py", "import six\n", 'import six\nraise RuntimeError("crash-at-start-here")\n')
    failed = events.next(DevFailed, DevReady)
    assert isinstance(failed, DevFailed) and failed.stage == "start", failed
    assert "exited with code 1" in failed.message
    assert any("crash-at-start-here" in line for line in failed.logs)
    assert failed.serving and get(ready.url + "/ready") == "ready\n"  # the last good one came back
    assert len(dev_containers(docker, f"devtest-{port}")) == 1

    edit(root / "main.py", 'raise RuntimeError("crash-at-start-here")\n', "")
    assert isinstance(events.next(DevReady, DevFailed), DevReady)
    assert handle.running


@pytest.mark.remote  # the tls engine runs it too: dev's containers through the Engine API over TLS
def test_sync_copies_a_source_edit_and_restarts_the_app(
    app: tuple[Path, int], engine_target: EngineTarget, tmp_path: Path, docker: DockerAPI
) -> None:
    root, port = app
    events = Events()
    with builder.dev(
        root,
        engine=engine_target.address,
        tls=engine_target.tls,
        ca_bundle=CA,
        sync=True,
        cache_dir=tmp_path / "cache",
        on_event=events,
    ) as handle:
        first = events.next(DevReady, DevFailed)
        assert isinstance(first, DevReady), first
        edit(root / "main.py", 'body = b"ready\\n"', 'body = b"ready, synced\\n"')
        planned = events.next(DevPlanned)
        assert planned.sync and planned.rebuild == ()
        ready = events.next(DevReady, DevFailed)
        assert isinstance(ready, DevReady) and ready.synced, ready
        assert ready.container == first.container  # the same container, restarted
        assert get(handle.url + "/ready") == "ready, synced\n"
        # a cerebrium.toml edit is never synced: it rebuilds (after the background build)
        edit(root / "cerebrium.toml", 'readycheck_endpoint = "/ready"', 'readycheck_endpoint = "/health"')
        assert events.next(DevPlanned).sync is False
        rebuilt = events.next(DevReady, DevFailed)
        assert isinstance(rebuilt, DevReady) and not rebuilt.synced and rebuilt.container != first.container
        assert get(handle.url + "/ready") == "ready, synced\n"  # the background-built image holds the edit
    assert dev_containers(docker, f"devtest-{port}") == []


def _read_events(process: subprocess.Popen[str], until: str, timeout: float = WAIT) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        seen.append(event)
        if event.get("event") == until:
            return seen
    raise AssertionError(f"no {until!r} event; saw {seen[-20:]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_removes_every_container_and_a_killed_loop_is_cleaned_up_next_time(
    sig: signal.Signals,
    app: tuple[Path, int],
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    tmp_path: Path,
    docker: DockerAPI,
) -> None:
    root, port = app
    argv = [
        sys.executable,
        "-m",
        "builder",
        "dev",
        str(root),
        "--progress",
        "json",
        "--ca-bundle",
        CA,
        "--cache-dir",
        str(tmp_path / "cache"),
        *engine_target.cli_args,
    ]
    env = {**engine_env, "BUILDER_SERVER": "0"}

    killed = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        events = _read_events(killed, "ready")
    finally:
        killed.kill()  # no chance to clean up: its container is a leftover
        killed.wait()
    assert events[-1]["url"] == f"http://127.0.0.1:{port}" and events[-1]["seconds"] > 0
    assert any(e["event"] == "step" for e in events)
    assert len(dev_containers(docker, f"devtest-{port}")) == 1

    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        events = _read_events(process, "ready")
        assert any(e["event"] == "note" and "left behind" in e["message"] for e in events)
        assert len(dev_containers(docker, f"devtest-{port}")) == 1
        process.send_signal(sig)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert dev_containers(docker, f"devtest-{port}") == []
    assert dev_tag(f"devtest-{port}") in {t for i in docker.list_images() for t in (i.get("RepoTags") or [])}


SECRET_APP = """\
import hashlib, http.server, os
PORT = int(os.environ.get("PORT", "8000"))
SEEN = hashlib.sha256(os.environ.get("API_TOKEN", "").encode()).hexdigest()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = SEEN == os.environ.get("TOKEN_SHA")
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"token ok\\n" if ok else b"token missing\\n")
print("secret-app: starting", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
"""


def test_verify_and_dev_pass_env_file_values_to_the_app_and_print_them_nowhere(
    engine_target: EngineTarget,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    docker: DockerAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    root = tmp_path / "secret"
    root.mkdir()
    (root / "main.py").write_text(SECRET_APP)
    (root / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "envtest-{port}"\npython_version = "3.11"\n\n'
        f'[cerebrium.runtime.custom]\nport = {port}\nentrypoint = ["python", "main.py"]\nreadycheck_endpoint = "/"\n'
    )
    secret = "s3cr3t-" + os.urandom(8).hex()
    env_file = tmp_path / "app.env"
    env_file.write_text(f"# the app's key\nAPI_TOKEN={secret}\n\nHOME_FROM_CALLER\n")
    sha = hashlib.sha256(secret.encode()).hexdigest()
    monkeypatch.setenv("BUILDER_VERIFY_TIMEOUT", "20")
    engine_args = engine_target.cli_args
    tag = f"envtest-{port}:dev"
    assert (
        main(["build", str(root), "--tag", tag, "--ca-bundle", CA, "--cache-dir", str(tmp_path / "c"), *engine_args])
        == 0
    )
    assert (
        main(
            ["verify", str(root), "--tag", tag, "--env-file", str(env_file), "--env", f"TOKEN_SHA={sha}", *engine_args]
        )
        == 0
    )
    assert main(["verify", tag, "--env", f"TOKEN_SHA={sha}", *engine_args]) == 5  # without the file: not ready
    out, err = capfd.readouterr()
    assert "ready: " in out + err and "token missing" not in out + err
    assert secret not in out + err

    events = Events()
    with builder.dev(
        root,
        engine=engine_target.address,
        tls=engine_target.tls,
        ca_bundle=CA,
        cache_dir=tmp_path / "c",
        env={"API_TOKEN": secret, "TOKEN_SHA": sha},
        on_event=events,
    ) as h:
        ready = events.next(DevReady, DevFailed)
        assert isinstance(ready, DevReady), ready
        assert get(h.url + "/") == "token ok\n"
    assert secret not in repr(events.all)
    inspect = [docker.inspect_image(tag), docker.inspect_image(dev_tag(f"envtest-{port}"))]
    assert secret not in json.dumps(inspect)
    assert dev_containers(docker, f"envtest-{port}") == []
