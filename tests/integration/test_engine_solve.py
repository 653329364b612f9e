"""A hand-built LLB solve on the real engine: Status stream, logs, and the cached re-solve."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import uuid
from dataclasses import dataclass, field

import grpc
import pytest

from builder.engines.buildkit._pb import control_pb2, ops_pb2
from builder.engines.buildkit.client import EngineClient

IMAGE = "docker-image://docker.io/library/debian:bookworm-slim"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _definition(command: str) -> tuple[ops_pb2.Definition, str]:
    source = ops_pb2.Op(source=ops_pb2.SourceOp(identifier=IMAGE))
    b0 = source.SerializeToString(deterministic=True)
    run = ops_pb2.Op(
        inputs=[ops_pb2.Input(digest=_digest(b0), index=0)],
        exec=ops_pb2.ExecOp(
            meta=ops_pb2.Meta(args=["/bin/sh", "-c", command], env=[PATH_ENV], cwd="/"),
            mounts=[ops_pb2.Mount(input=0, dest="/", output=0)],
            network=ops_pb2.HOST,
        ),
    )
    b1 = run.SerializeToString(deterministic=True)
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=_digest(b1), index=0)])
    b2 = terminal.SerializeToString(deterministic=True)
    definition = ops_pb2.Definition()
    getattr(definition, "def").extend([b0, b1, b2])  # "def" is a Python keyword
    definition.metadata[_digest(b1)].description["llb.customname"] = "[test] say hi"
    definition.metadata[_digest(b1)].caps["exec.meta.network"] = True
    return definition, _digest(b1)


@dataclass
class Observed:
    vertices: dict[str, control_pb2.Vertex] = field(default_factory=dict)
    logs: list[bytes] = field(default_factory=list)
    error: BaseException | None = None


def _solve(engine: EngineClient, definition: ops_pb2.Definition) -> Observed:
    ref = f"builder-test-{uuid.uuid4().hex}"
    seen = Observed()

    def read_status() -> None:
        try:
            for update in engine.control.Status(control_pb2.StatusRequest(Ref=ref), timeout=300):
                for v in update.vertexes:
                    seen.vertices[v.digest] = v
                seen.logs.extend(log.msg for log in update.logs)
        except grpc.RpcError as exc:
            seen.error = exc

    status = threading.Thread(target=read_status, daemon=True)
    status.start()
    engine.control.Solve(
        control_pb2.SolveRequest(Ref=ref, Definition=definition, Entitlements=["network.host"]), timeout=300
    )
    status.join(60)
    assert seen.error is None, seen.error
    return seen


def test_solve_then_cached_resolve(engine: EngineClient) -> None:
    token = uuid.uuid4().hex
    definition, exec_digest = _definition(f"echo hi {token}")

    first = _solve(engine, definition)
    assert exec_digest in first.vertices, "Status reports the client's own op digests"
    vertex = first.vertices[exec_digest]
    assert vertex.name == "[test] say hi"
    assert not vertex.cached
    assert vertex.completed.seconds > 0 and not vertex.error
    assert any(f"hi {token}".encode() in line for line in first.logs)

    second = _solve(engine, definition)
    assert second.vertices[exec_digest].cached
    assert not any(token.encode() in line for line in second.logs)


def _image_exists(engine_env: dict[str, str], name: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", name],
        env=engine_env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def test_exporters_list_field_is_honoured_exactly_when_detected(
    engine: EngineClient, engine_env: dict[str, str]
) -> None:
    """SolveRequest.Exporters (field 13): exported on engines with the cap, silently dropped on BuildKit 0.8."""
    if engine.kind != "dockerd":
        pytest.skip("checks the result in dockerd's image store")
    name = f"builder-test-exporters-{uuid.uuid4().hex[:12]}:latest"
    definition, _ = _definition("echo exporters-list")
    request = control_pb2.SolveRequest(
        Ref=f"builder-test-{uuid.uuid4().hex}",
        Definition=definition,
        Entitlements=["network.host"],
        Exporters=[control_pb2.Exporter(Type="moby", Attrs={"name": name})],
    )
    engine.control.Solve(request, timeout=300)
    assert _image_exists(engine_env, name) is engine.capabilities.exporters_list_field


def test_unsupported_cache_export_is_rejected_as_detected(engine: EngineClient) -> None:
    """The engine refuses exactly the cache exporters the capabilities leave out."""
    definition, _ = _definition("echo cache-export")
    caps = engine.capabilities
    for cache_type in ("registry", "local"):
        request = control_pb2.SolveRequest(
            Ref=f"builder-test-{uuid.uuid4().hex}",
            Definition=definition,
            Entitlements=["network.host"],
            Cache=control_pb2.CacheOptions(
                Exports=[
                    control_pb2.CacheOptionsEntry(
                        Type=cache_type, Attrs={"ref": "127.0.0.1:9/none", "dest": "/nonexistent"}
                    )
                ]
            ),
        )
        if cache_type in caps.cache_export_types:
            continue  # exporting needs a registry/session this test does not provide
        try:
            engine.control.Solve(request, timeout=300)
        except grpc.RpcError as exc:
            assert "unknown cache exporter" in (exc.details() or "")
        else:
            raise AssertionError(f"{cache_type} cache export was accepted but the capabilities say it is unsupported")
