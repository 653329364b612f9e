"""verify_image's polling logic against a real local HTTP server behind a fake container runtime.

The fake runtime implements the real seam (ContainerRuntime): ``run`` starts an
HTTP server thread on the settings' port, the way a container with host
networking would; the clock is fake so timeouts need no waiting.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
from collections.abc import Iterator

import pytest

from builder.engines.docker_api import ContainerState
from builder.errors import VerifyFailed
from builder.verify import (
    LEFTOVER_AGE,
    OWNER_LABEL,
    VERIFY_LABEL,
    Probe,
    VerifyInterrupted,
    VerifySettings,
    container_spec,
    is_leftover,
    probe,
    resolve_timeout,
    verify_image,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class App:
    """A tiny HTTP app: /ready answers 503 until ``ready_after`` requests were made, /health per ``healthy``."""

    def __init__(self, port: int, *, ready_after: int = 0, healthy: bool = True) -> None:
        self.port, self.ready_after, self.healthy = port, ready_after, healthy
        self.requests: list[str] = []
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.requests.append(self.path)
                if self.path == "/ready":
                    code = 200 if len(app.requests) > app.ready_after else 503
                elif self.path == "/health":
                    code = 200 if app.healthy else 500
                else:
                    code = 404
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeRuntime:
    """ContainerRuntime whose "container" is an in-process App (or nothing, or a crash)."""

    where = "fake://"

    def __init__(self, *, mode: str = "app", exit_code: int = 0, **app_kw: object) -> None:
        self.mode, self.exit_code, self.app_kw = mode, exit_code, app_kw
        self.app: App | None = None
        self.running: set[str] = set()
        self.removed: list[str] = []
        self.states_seen = 0

    def run(self, image: str, settings: VerifySettings) -> str:
        if self.mode == "app":
            self.app = App(settings.port, **self.app_kw)  # type: ignore[arg-type]
        cid = f"c-{image}"
        self.running.add(cid)
        return cid

    def state(self, container_id: str) -> ContainerState:
        self.states_seen += 1
        if self.mode == "crash" and self.states_seen > 1:
            return ContainerState(False, "exited", self.exit_code)
        return ContainerState(container_id in self.running, "running", 0)

    def probe(self, container_id: str, port: int, endpoint: str) -> Probe:
        return probe("127.0.0.1", port, endpoint)

    def remove_leftovers(self) -> list[str]:
        return []

    def logs(self, container_id: str, tail: int) -> list[str]:
        lines = [f"line {i}" for i in range(150)]
        return lines[-tail:]

    def remove(self, container_id: str) -> None:
        self.running.discard(container_id)
        self.removed.append(container_id)
        if self.app is not None:
            self.app.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def test_ready_then_healthy(port: int) -> None:
    runtime = FakeRuntime(ready_after=3)
    clock = FakeClock()
    settings = VerifySettings(port=port, readycheck_endpoint="/ready", healthcheck_endpoint="/health", timeout=60)
    result = verify_image("img", settings, runtime=runtime, clock=clock, sleep=clock.sleep)
    assert result.ready
    assert result.checks == ("GET /ready -> 200", "GET /health -> 200")
    assert result.seconds_to_ready == pytest.approx(3 * settings.interval)
    assert runtime.app is not None
    assert runtime.app.requests == ["/ready"] * 4 + ["/health"]
    assert runtime.removed == ["c-img"]


def test_tcp_connect_when_no_readycheck(port: int) -> None:
    runtime = FakeRuntime()
    result = verify_image("img", VerifySettings(port=port), runtime=runtime)
    assert result.checks == (f"TCP 127.0.0.1:{port} accepted",)
    assert runtime.app is not None and runtime.app.requests == []
    assert runtime.removed == ["c-img"]


def test_timeout_fails_with_last_100_log_lines_and_removes(port: int) -> None:
    runtime = FakeRuntime(healthy=False)
    clock = FakeClock()
    settings = VerifySettings(port=port, readycheck_endpoint="/ready", healthcheck_endpoint="/health", timeout=5)
    with pytest.raises(VerifyFailed) as info:
        verify_image("img", settings, runtime=runtime, clock=clock, sleep=clock.sleep)
    assert "not ready after 5s" in info.value.message
    assert "GET /health -> 500" in info.value.message
    assert len(info.value.logs) == 100 and info.value.logs[-1] == "line 149"
    assert runtime.removed == ["c-img"]


def test_nothing_listening_times_out(port: int) -> None:
    runtime = FakeRuntime(mode="silent")
    clock = FakeClock()
    with pytest.raises(VerifyFailed, match="not ready after 2s"):
        verify_image("img", VerifySettings(port=port, timeout=2), runtime=runtime, clock=clock, sleep=clock.sleep)
    assert runtime.removed == ["c-img"]


def test_early_exit_fails_fast(port: int) -> None:
    runtime = FakeRuntime(mode="crash", exit_code=3)
    clock = FakeClock()
    with pytest.raises(VerifyFailed, match="exited with code 3") as info:
        verify_image("img", VerifySettings(port=port, timeout=600), runtime=runtime, clock=clock, sleep=clock.sleep)
    assert clock.now - 1000.0 < 5  # failed on the second poll, not at the timeout
    assert info.value.logs
    assert runtime.removed == ["c-img"]


def test_remove_runs_even_when_polling_raises(port: int) -> None:
    class Interrupted(FakeRuntime):
        calls = 0

        def probe(self, container_id: str, p: int, endpoint: str) -> Probe:
            self.calls += 1
            if self.calls > 1:
                raise KeyboardInterrupt
            return Probe(False, "free")

    runtime = Interrupted(mode="silent")
    with pytest.raises(KeyboardInterrupt):
        verify_image("img", VerifySettings(port=port), runtime=runtime, sleep=lambda s: None)
    assert runtime.removed == ["c-img"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_remove_the_container(port: int, signum: int) -> None:
    class Signalled(FakeRuntime):
        def probe(self, container_id: str, p: int, endpoint: str) -> Probe:
            os.kill(os.getpid(), signum)  # delivered to this (main) thread before the next bytecode
            return Probe(False, "waiting")

    runtime = Signalled(mode="silent")
    before = signal.getsignal(signum)
    with pytest.raises(VerifyInterrupted) as info:
        verify_image("img", VerifySettings(port=port), runtime=runtime, sleep=lambda s: None)
    assert info.value.signum == signum
    assert runtime.removed == ["c-img"]
    assert signal.getsignal(signum) == before


def test_leftovers_are_removed_before_the_new_container(port: int) -> None:
    order: list[str] = []

    class Leftovers(FakeRuntime):
        def remove_leftovers(self) -> list[str]:
            order.append("leftovers")
            return ["old"]

        def run(self, image: str, settings: VerifySettings) -> str:
            order.append("run")
            return super().run(image, settings)

    verify_image("img", VerifySettings(port=port), runtime=Leftovers())
    assert order == ["leftovers", "run"]


def test_which_containers_are_leftovers() -> None:
    alive = {100}.__contains__
    mine = {"Labels": {OWNER_LABEL: "hostA:100"}, "Created": 0}
    dead = {"Labels": {OWNER_LABEL: "hostA:200"}, "Created": 10**10}
    other_fresh = {"Labels": {OWNER_LABEL: "hostB:200"}, "Created": 10**10 - 5}
    other_old = {"Labels": {OWNER_LABEL: "hostB:200"}, "Created": 10**10 - LEFTOVER_AGE - 1}
    unlabelled_old = {"Labels": {}, "Created": 0}
    now = float(10**10)
    assert [is_leftover(c, now, "hostA", alive) for c in (mine, dead, other_fresh, other_old, unlabelled_old)] == [
        False,
        True,
        False,
        True,
        True,
    ]


def test_container_spec_is_locked_down() -> None:
    spec = container_spec("img", VerifySettings(port=8000, memory_bytes=2 * 1024**3, nano_cpus=2 * 10**9), "none")
    host = spec["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["PidsLimit"] == 4096 and host["Memory"] == 2 * 1024**3 and host["NanoCpus"] == 2 * 10**9
    assert host["NetworkMode"] == "none"
    assert spec["Labels"][VERIFY_LABEL] == "1" and spec["Labels"][OWNER_LABEL].endswith(f":{os.getpid()}")
    low = container_spec("img", VerifySettings(port=80), "bridge")["HostConfig"]
    assert low["CapAdd"] == ["NET_BIND_SERVICE"] and "Memory" not in low


def test_probe_reports_non_2xx_and_refused(port: int) -> None:
    assert not probe("127.0.0.1", port, "/ready").ok
    app = App(port, ready_after=10**6)
    try:
        outcome = probe("127.0.0.1", port, "ready")
        assert (outcome.ok, outcome.detail) == (False, "GET /ready -> 503")
        assert probe("127.0.0.1", port, "/health").ok
    finally:
        app.stop()


@pytest.mark.parametrize(
    ("configured", "requested", "env", "expected"),
    [
        (600, None, {}, 600.0),
        (600, 60, {}, 60.0),
        (600, 830, {}, 830.0),
        (600, 120, {"BUILDER_VERIFY_TIMEOUT": "3"}, 3.0),
        (60, None, {"BUILDER_VERIFY_TIMEOUT": "0.5"}, 0.5),
    ],
)
def test_resolve_timeout(configured: int, requested: float | None, env: dict[str, str], expected: float) -> None:
    assert resolve_timeout(configured, requested, env) == expected


@pytest.mark.parametrize(
    ("requested", "env"),
    [(59, {}), (831, {}), (None, {"BUILDER_VERIFY_TIMEOUT": "x"}), (None, {"BUILDER_VERIFY_TIMEOUT": "0"})],
)
def test_resolve_timeout_rejects(requested: float | None, env: dict[str, str]) -> None:
    from builder.errors import BuilderError

    with pytest.raises(BuilderError):
        resolve_timeout(600, requested, env)


def test_settings_from_image_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDER_VERIFY_TIMEOUT", raising=False)
    config = {
        "ExposedPorts": {"8123/tcp": {}},
        "Labels": {
            "ai.cerebrium.readycheck_endpoint": "/ready",
            "ai.cerebrium.healthcheck_endpoint": "/health",
            "ai.cerebrium.initialization_timeout": "90",
        },
    }
    settings = VerifySettings.from_image(config)
    assert (settings.port, settings.readycheck_endpoint, settings.healthcheck_endpoint, settings.timeout) == (
        8123,
        "/ready",
        "/health",
        90.0,
    )
    assert VerifySettings.from_image({}).port == 8000


def test_a_failing_removal_does_not_hide_the_verify_failure(port: int) -> None:
    from builder.errors import EngineError

    class BrokenRemove(FakeRuntime):
        def remove(self, container_id: str) -> None:
            super().remove(container_id)
            raise EngineError("daemon went away")

    runtime = BrokenRemove(mode="crash", exit_code=2)
    with pytest.raises(VerifyFailed, match="exited with code 2"):
        verify_image("img", VerifySettings(port=port), runtime=runtime, sleep=lambda s: None)
    assert runtime.removed == ["c-img"]
