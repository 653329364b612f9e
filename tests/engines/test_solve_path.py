"""The one solve path, without an engine: cancel, timeout and failure mapping for plan and Dockerfile builds.

The fake engine below implements the gRPC calls run_solve makes (Control.Solve
and Status, LLBBridge.Solve and Return) with futures that never finish on
their own, so the only way out of a build is the path under test.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from builder.config import load_config
from builder.engines import BuildOptions
from builder.engines.buildkit._pb import control_pb2, gateway_pb2, ops_pb2
from builder.engines.buildkit.caps import derive_capabilities
from builder.engines.buildkit.dockerfile_build import (
    DockerfileJob,
    DockerfileSource,
    build_dockerfile,
    frontend_inputs,
    frontend_options,
    plan_source,
)
from builder.engines.buildkit.dockerfile_progress import InstructionTracker
from builder.engines.buildkit.export import plan_export
from builder.engines.buildkit.session import SyncedDir
from builder.engines.buildkit.solve import SolveSpec, run_solve
from builder.errors import SolveFailed
from builder.plan.make import make_plan

DOCKERD26 = derive_capabilities(
    kind="dockerd",
    buildkit_version="v0.0.0+unknown",
    daemon_version="26.1.5",
    llb_caps=["exec.meta.base", "file.base", "mergeop", "exporter.multiple"],
)


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Pending:
    """A grpc future that finishes only when told to (or fails when cancelled)."""

    def __init__(self, value: Any = None, error: BaseException | None = None, after: float | None = None) -> None:
        self.cancelled = threading.Event()
        self._value, self._error = value, error
        self._ready_at = time.monotonic() + after if after is not None else None

    def result(self, timeout: float | None = None) -> Any:
        if self.cancelled.wait(timeout or 0):
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")
        if self._ready_at is not None and time.monotonic() >= self._ready_at:
            if self._error is not None:
                raise self._error
            return self._value
        raise grpc.FutureTimeoutError()

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


class StatusCall:
    """``Control.Status``: yields the given responses, then blocks until cancelled."""

    def __init__(self, responses: list[control_pb2.StatusResponse], *, block: bool = True) -> None:
        self.responses = responses
        self.block = block  # False: the stream ends after the responses, as when the build is over
        self.cancelled = threading.Event()

    def __iter__(self) -> Any:
        yield from self.responses
        if self.block:
            self.cancelled.wait(30)
            raise FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class FakeEngine:
    """Records every call; ``bridge_solves`` are the futures LLBBridge.Solve hands out, in order."""

    bridge_solves: list[Pending]
    control_solve: Pending = field(default_factory=Pending)
    status: StatusCall = field(default_factory=lambda: StatusCall([]))
    address: str = "docker:///fake.sock"
    kind: str = "dockerd"
    requests: list[Any] = field(default_factory=list)
    returns: list[gateway_pb2.ReturnRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.control = SimpleNamespace(Solve=SimpleNamespace(future=self._control_solve), Status=self._status)
        self.bridge = SimpleNamespace(Solve=SimpleNamespace(future=self._bridge_solve), Return=self._return)

    def _control_solve(self, request: Any, **_: Any) -> Pending:
        self.requests.append(request)
        return self.control_solve

    def _status(self, request: Any) -> StatusCall:
        return self.status

    def _bridge_solve(self, request: Any, **_: Any) -> Pending:
        self.requests.append(request)
        return self.bridge_solves.pop(0)

    def _return(self, request: gateway_pb2.ReturnRequest, **_: Any) -> None:
        self.returns.append(request)


def dockerfile_spec(timeout: float | None = None) -> tuple[SolveSpec, DockerfileJob]:
    source = DockerfileSource(SyncedDir(Path("/nonexistent"), ()), "FROM scratch\n")
    job = DockerfileJob(frontend_options(source, "host"), frontend_inputs(source, "k"))
    export = plan_export(DOCKERD26, BuildOptions(tag="app:1"), None)
    return SolveSpec(export, "sid", ("network.host",), job=job, timeout=timeout), job


def test_cancel_stops_a_dockerfile_build_on_the_engine() -> None:
    frontend = Pending()  # the frontend never finishes on its own
    engine = FakeEngine([frontend])
    spec, _ = dockerfile_spec()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SolveFailed, match="cancelled"):
        run_solve(engine, spec, InstructionTracker(), stop)  # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    # Every call of the build is cancelled: the control solve, the frontend solve and the status stream.
    assert frontend.cancelled.is_set() and engine.control_solve.cancelled.is_set()
    assert engine.status.cancelled.is_set()
    request = engine.requests[1]
    assert request.Frontend == "dockerfile.v0" and set(request.FrontendInputs) == {"context", "dockerfile"}


def test_timeout_stops_a_dockerfile_build_like_a_plan_build() -> None:
    frontend = Pending()
    engine = FakeEngine([frontend])
    spec, _ = dockerfile_spec(timeout=0.5)
    with pytest.raises(SolveFailed, match="timed out after 0.5 s") as info:
        run_solve(engine, spec, InstructionTracker())  # type: ignore[arg-type]
    assert info.value.hint and "--timeout" in info.value.hint
    assert frontend.cancelled.is_set() and engine.control_solve.cancelled.is_set()


def test_failed_instruction_is_named_and_the_error_returned_to_the_waiting_solve() -> None:
    failed = control_pb2.Vertex(digest="d", name="[2/2] RUN false", error="process did not complete: exit code 1")
    failed.started.seconds, failed.completed.seconds = 1, 2
    log = control_pb2.VertexLog(vertex="d", stream=2, msg=b"boom\n")
    engine = FakeEngine(
        [Pending(error=FakeRpcError(grpc.StatusCode.UNKNOWN, "exit code 1"), after=0.3)],
        status=StatusCall([control_pb2.StatusResponse(vertexes=[failed], logs=[log])], block=False),
    )
    spec, _ = dockerfile_spec()
    with pytest.raises(SolveFailed) as info:
        run_solve(engine, spec, InstructionTracker())  # type: ignore[arg-type]
    error = info.value
    assert str(error.message).startswith("step dockerfile failed: [2/2] RUN false")
    assert error.failure is not None and error.failure.step_id == "dockerfile"
    assert error.failure.command == "[2/2] RUN false" and error.failure.log_tail == ("boom",)
    assert "Dockerfile instruction" in (error.hint or "")
    # The bridge told the waiting Control/Solve why, so it ends too.
    (returned,) = engine.returns
    assert returned.HasField("error") and not returned.HasField("result")
    assert returned.error.message == "exit code 1"


def test_a_finished_dockerfile_job_returns_the_amended_config_and_the_config_layer() -> None:
    src = ops_pb2.Op(source=ops_pb2.SourceOp(identifier="docker-image://docker.io/library/busybox:latest"))
    data = src.SerializeToString(deterministic=True)
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=digest, index=0)]).SerializeToString(deterministic=True)
    first = gateway_pb2.SolveResponse()
    first.result.ref.id = "frontend-ref"
    getattr(getattr(first.result.ref, "def"), "def").extend([data, terminal])
    first.result.metadata["containerimage.config"] = b'{"config":{"Cmd":["sh"]}}'
    second = gateway_pb2.SolveResponse()
    second.result.ref.id = "layered-ref"
    response = control_pb2.SolveResponse(ExporterResponse={"containerimage.digest": "sha256:abc"})
    engine = FakeEngine(
        [Pending(first, after=0), Pending(second, after=0)],
        control_solve=Pending(response, after=0.5),
        status=StatusCall([], block=False),
    )
    spec, job = dockerfile_spec()
    job.config_file = ("/app/cerebrium.toml", "x = 1\n")
    assert run_solve(engine, spec, InstructionTracker()) == {"containerimage.digest": "sha256:abc"}  # type: ignore[arg-type]
    (returned,) = engine.returns
    assert returned.result.ref.id == "layered-ref"
    assert b'"Cmd":["sh"]' in returned.result.metadata["containerimage.config"]
    assert job.config["config"]["Cmd"] == ["sh"]


def test_dockerfile_inputs_hold_only_the_planned_text_and_generated_files() -> None:
    source = DockerfileSource(
        SyncedDir(Path("/p"), ()),
        "FROM scratch\nCOPY requirements.txt /\n",
        "Dockerfile.prod",
        generated=(("requirements.txt", "six==1.16.0\n"),),
    )
    inputs = frontend_inputs(source, "builder-app")
    assert inputs == frontend_inputs(source, "builder-app")  # deterministic
    ops = {name: [ops_pb2.Op.FromString(b) for b in getattr(d.to_pb(), "def")] for name, d in inputs.items()}
    dockerfile_files = [a.mkfile for op in ops["dockerfile"] if op.HasField("file") for a in op.file.actions]
    assert [(f.path, f.data) for f in dockerfile_files] == [("/Dockerfile.prod", source.dockerfile.encode())]
    assert not any(op.HasField("source") for op in ops["dockerfile"])  # nothing read from the host
    sources = [op.source.identifier for op in ops["context"] if op.HasField("source")]
    assert sources == ["local://context"]
    generated = [
        (a.mkfile.path, a.mkfile.data) for op in ops["context"] if op.HasField("file") for a in op.file.actions
    ]
    assert generated == [("/requirements.txt", b"six==1.16.0\n")]


def test_a_dockerfile_build_offers_the_engine_only_the_planned_context(
    app_dockerfile_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding: the whole Dockerfile directory was served as local://dockerfile (.env, .git/config…)."""
    docker = app_dockerfile_app / "docker"
    (docker / ".env").write_text("API_KEY=secret\n")
    (docker / ".git").mkdir()
    (docker / ".git" / "config").write_text("[remote]\n")
    (docker / "Dockerfile.dockerignore").write_text("*\n")
    plan = make_plan(load_config(app_dockerfile_app))
    seen: dict[str, Any] = {}

    def fake_solve(client: Any, session: Any, export: Any, tracker: Any, **kw: Any) -> Any:
        seen["session"], seen["export"], seen["job"] = session, export, kw["job"]
        raise SolveFailed("stop here")

    import builder.engines.buildkit.dockerfile_build as module

    monkeypatch.setattr(module, "solve_in_session", fake_solve)

    class Client:
        kind = "dockerd"
        capabilities = DOCKERD26

    with pytest.raises(SolveFailed):
        build_dockerfile(Client(), plan_source(plan, app_dockerfile_app), BuildOptions(tag="a:1"))  # type: ignore[arg-type]
    dirs = seen["session"].dirs
    assert list(dirs) == ["context"]
    offered = sorted(e.relpath for e in dirs["context"].entries if not e.is_dir)
    # Exactly the planned context (include/exclude): no .env, no .git/config, nothing named "dockerfile".
    assert offered == ["app.py", "docker/Dockerfile", "docker/Dockerfile.dockerignore"]
    assert offered == [e.path for e in plan.step("dockerfile").inputs.context.entries]
    assert any("Dockerfile.dockerignore is not applied" in n.message for n in plan.notes)
    assert seen["export"].route == "gateway"
    assert set(seen["job"].inputs) == {"context", "dockerfile"}
