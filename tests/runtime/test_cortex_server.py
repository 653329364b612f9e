"""The default (Cortex) runtime server, run as the image runs it: a process serving main.py's functions."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "builder" / "recipes" / "scripts" / "cortex_server.py"
APP = REPO / "fixtures" / "apps" / "cortex-default"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port

    def request(
        self, method: str, path: str, body: object = None, accept: str = "application/json", raw: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Accept": accept, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def call(self, name: str, body: object = None, query: str = "") -> tuple[int, dict]:
        status, _, data = self.request("POST", f"/{name}{query}", body)
        return status, json.loads(data)

    def log(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        return err


def _start(app_dir: Path) -> Running:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--app-dir", str(app_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Running(proc, port)


def _wait_ready(running: Running, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert running.proc.poll() is None, running.proc.communicate()[1]
        try:
            if running.request("GET", "/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the runtime did not become ready")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    app_dir = tmp_path_factory.mktemp("cortex")
    shutil.copytree(APP, app_dir, dirs_exist_ok=True)
    running = _start(app_dir)
    _wait_ready(running)
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.communicate()


def test_typed_function_answers_with_run_id_time_and_result(server: Running) -> None:
    status, body = server.call("predict", {"prompt": "hi", "times": 2})
    assert status == 200
    assert body["result"] == {"text": "hi hi", "temperature": None}
    assert len(body["run_id"]) >= 16 and body["run_time_ms"] >= 0


def test_wrong_parameter_type_or_name_is_422_not_500(server: Running) -> None:
    assert server.call("predict", {"prompt": "hi", "times": "two"})[0] == 422
    assert server.call("predict", {"nope": 1})[0] == 422
    assert server.call("predict", [1, 2])[0] == 422
    assert server.request("POST", "/predict", raw=b"{not json")[0] == 400


def test_int_is_accepted_for_a_float_parameter(server: Running) -> None:
    status, body = server.call("predict", {"prompt": "x", "temperature": 1})
    assert status == 200 and body["result"]["temperature"] == 1.0


def test_async_def_function(server: Running) -> None:
    assert server.call("embed", {"text": "a b c"})[1]["result"] == [5, 3]


def test_generator_streams_server_sent_events(server: Running) -> None:
    status, headers, data = server.request("POST", "/stream", {"n": 3}, accept="text/event-stream")
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = [json.loads(line[len("data: ") :]) for line in data.decode().splitlines() if line.startswith("data: ")]
    assert events == [{"token": 0}, {"token": 1}, {"token": 2}]


def test_generator_without_event_stream_returns_a_list(server: Running) -> None:
    assert server.call("stream", {"n": 2})[1]["result"] == [{"token": 0}, {"token": 1}]


def test_private_and_imported_names_are_not_endpoints(server: Running) -> None:
    assert server.call("_helper")[0] == 404
    assert server.call("Optional")[0] == 404  # imported into main.py, not defined there
    assert server.call("sleep")[0] == 404
    assert server.call("missing")[0] == 404


def test_raising_function_is_500_with_its_message(server: Running) -> None:
    status, body = server.call("explode", {"message": "kaput"})
    assert status == 500 and "kaput" in body["error"] and "run_id" in body


def test_returned_status_code_sets_the_http_status(server: Running) -> None:
    status, body = server.call("validate", {"value": -1})
    assert status == 422 and body["result"]["status_code"] == 422
    status, body = server.call("validate", {"value": 3})
    assert status == 200 and body["result"] == {"value": 3}


def test_async_query_answers_202_with_only_a_run_id(server: Running) -> None:
    started = time.monotonic()
    status, body = server.call("slow", {"seconds": 1.0}, query="?async=true")
    assert status == 202 and set(body) == {"run_id"}
    assert time.monotonic() - started < 0.9


def test_health_and_get_on_a_function(server: Running) -> None:
    assert server.request("GET", "/health")[0] == 200
    assert server.request("GET", "/predict")[0] == 405


def test_traceback_of_a_raising_function_goes_to_the_log(tmp_path: Path) -> None:
    shutil.copytree(APP, tmp_path, dirs_exist_ok=True)
    running = _start(tmp_path)
    _wait_ready(running)
    running.call("explode", {"message": "logged-boom"})
    log = running.log()
    assert "Traceback (most recent call last)" in log and "ValueError: logged-boom" in log


def test_not_ready_until_main_is_imported(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import time\ntime.sleep(1.5)\n\ndef f():\n    return 1\n")
    running = _start(tmp_path)
    deadline = time.monotonic() + 10
    while True:
        try:
            status = running.request("GET", "/ready")[0]
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert status == 503
    assert running.request("GET", "/health")[0] == 200
    assert running.call("f")[0] == 503
    _wait_ready(running)
    assert running.call("f")[1]["result"] == 1
    running.log()


def test_import_failure_exits_1_with_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("import not_installed_anywhere\n")
    running = _start(tmp_path)
    assert running.proc.wait(timeout=15) == 1
    err = running.proc.communicate()[1]
    assert "ModuleNotFoundError" in err and "not_installed_anywhere" in err


def test_sigterm_stops_the_server(tmp_path: Path) -> None:
    shutil.copytree(APP, tmp_path, dirs_exist_ok=True)
    running = _start(tmp_path)
    _wait_ready(running)
    running.proc.terminate()
    assert running.proc.wait(timeout=5) == 0
    running.proc.communicate()
