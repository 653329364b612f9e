"""dockerfile_path builds, the pure parts: config amendment, frontend options, instruction progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.config import load_config
from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.dockerfile_build import DockerfileSource, frontend_options, plan_source
from builder.engines.buildkit.dockerfile_progress import InstructionTracker, is_instruction
from builder.engines.buildkit.image_amend import ConfigPatch, amend_config
from builder.engines.events import EngineProgress, StepFinished, StepLog, StepStarted
from builder.plan.make import make_plan
from builder.plan.steps.config import HealthCheck

BASE = {
    "architecture": "amd64",
    "os": "linux",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "APP_GREETING=hello"],
        "Cmd": ["python3", "app.py"],
        "WorkingDir": "/srv",
        "ExposedPorts": {"9000/tcp": {}},
        "Labels": {"maintainer": "me", "x": "1"},
    },
}


def test_amend_merges_ports_labels_env_and_sets_healthcheck() -> None:
    patch = ConfigPatch(
        exposed_ports=("8093/tcp",),
        healthcheck=HealthCheck(("CMD", "true"), 10, 5, 60, 3),
        labels=(("x", "2"), ("ai.cerebrium.app", "a")),
        env=(("PYTHONUNBUFFERED", "1"),),
    )
    doc = amend_config(BASE, patch)
    config = doc["config"]
    assert config["ExposedPorts"] == {"9000/tcp": {}, "8093/tcp": {}}
    assert config["Labels"] == {"maintainer": "me", "x": "2", "ai.cerebrium.app": "a"}
    assert config["Env"] == ["PATH=/usr/bin:/bin", "APP_GREETING=hello", "PYTHONUNBUFFERED=1"]
    assert config["Healthcheck"] == {
        "Test": ["CMD", "true"],
        "Interval": 10 * 10**9,
        "Timeout": 5 * 10**9,
        "StartPeriod": 60 * 10**9,
        "Retries": 3,
    }
    assert (config["Cmd"], config["WorkingDir"]) == (["python3", "app.py"], "/srv")  # the Dockerfile's own
    assert BASE["config"]["ExposedPorts"] == {"9000/tcp": {}}  # the input is not modified


def test_amend_entrypoint_replaces_cmd_and_workdir() -> None:
    doc = amend_config(
        BASE, ConfigPatch(entrypoint=("python", "main.py"), cmd=(), working_dir="/app", env=(("APP_GREETING", "hi"),))
    )
    config = doc["config"]
    assert (config["Entrypoint"], config["Cmd"], config["WorkingDir"]) == (["python", "main.py"], [], "/app")
    assert config["Env"] == ["PATH=/usr/bin:/bin", "APP_GREETING=hi"]


def test_empty_patch_keeps_the_config() -> None:
    assert amend_config(BASE, ConfigPatch()) == BASE
    assert amend_config({}, ConfigPatch())["config"] == {}


def test_frontend_options(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.prod").write_text("FROM scratch\n")
    source = DockerfileSource.directory(tmp_path, "Dockerfile.prod")
    assert frontend_options(source, "host") == {"filename": "Dockerfile.prod", "force-network-mode": "host"}
    with_args = DockerfileSource(source.context, "FROM scratch\n", "Dockerfile", (("V", "1"),))
    assert frontend_options(with_args, None) == {"filename": "Dockerfile", "build-arg:V": "1"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("[1/3] FROM docker.io/library/debian:bookworm-slim", True),
        ("[stage-0 2/8] RUN --mount=type=cache ...", True),
        ("[builder 10/12] COPY . /src", True),
        ("[internal] load build definition from Dockerfile", False),
        ("exporting to image", False),
        ("[pip] uv pip install", False),
    ],
)
def test_is_instruction(name: str, expected: bool) -> None:
    assert is_instruction(name) is expected


def vertex(
    digest: str, name: str, *, started: int = 0, completed: int = 0, cached: bool = False, error: str = ""
) -> control_pb2.Vertex:
    v = control_pb2.Vertex(digest=digest, name=name, cached=cached, error=error)
    if started:
        v.started.seconds = started
    if completed:
        v.completed.seconds = completed
    return v


def test_tracker_reports_instructions_logs_and_engine_work() -> None:
    events: list[object] = []
    tracker = InstructionTracker(events.append)
    tracker.feed(
        control_pb2.StatusResponse(vertexes=[vertex("a", "[internal] load .dockerignore", started=1, completed=2)])
    )
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[
                vertex("b", "[1/2] FROM debian", cached=True, completed=3),
                vertex("c", "[2/2] RUN make", started=3),
            ]
        )
    )
    tracker.feed(control_pb2.StatusResponse(logs=[control_pb2.VertexLog(vertex="c", stream=1, msg=b"ok\nbuilt\n")]))
    tracker.feed(control_pb2.StatusResponse(vertexes=[vertex("c", "[2/2] RUN make", started=3, completed=7)]))
    assert events == [
        EngineProgress("[internal] load .dockerignore", True, False, 1.0),
        StepFinished("dockerfile", "[1/2] FROM debian", True, 0.0, None, None),
        StepStarted("dockerfile", "[2/2] RUN make"),
        StepLog("dockerfile", "ok", 1),
        StepLog("dockerfile", "built", 1),
        StepFinished("dockerfile", "[2/2] RUN make", False, 4.0, None, None),
    ]
    assert [v.name for v in tracker.instructions()] == ["[1/2] FROM debian", "[2/2] RUN make"]
    assert tracker.failed() is None


def test_tracker_finds_the_failed_instruction() -> None:
    tracker = InstructionTracker()
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[vertex("c", "[2/2] RUN false", started=1, completed=2, error="exit code: 1")]
        )
    )
    failed = tracker.failed()
    assert failed is not None and failed.name == "[2/2] RUN false"


def test_plan_source_serves_exactly_the_selected_context(app_dockerfile_app: Path) -> None:
    plan = make_plan(load_config(app_dockerfile_app))
    source = plan_source(plan, app_dockerfile_app)
    assert source.filename == "Dockerfile"
    assert source.dockerfile == (app_dockerfile_app / "docker" / "Dockerfile").read_text()
    files = sorted(e.relpath for e in source.context.entries if not e.is_dir)
    assert files == ["app.py", "docker/Dockerfile"]  # notes/ excluded, cerebrium.toml never in the context
    patch = ConfigPatch.from_plan(plan)
    assert patch.exposed_ports == ("8093/tcp",) and patch.entrypoint is None
    assert patch.healthcheck is None  # nothing can be assumed to run inside a user's image


def test_config_layer_goes_on_the_result_vertex() -> None:
    import hashlib

    from builder.engines.buildkit._pb import ops_pb2
    from builder.engines.buildkit.config_layer import with_config_file

    def dg(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    source = ops_pb2.Op(source=ops_pb2.SourceOp(identifier="docker-image://docker.io/library/debian:bookworm-slim"))
    source.platform.OS, source.platform.Architecture = "linux", "amd64"
    src = source.SerializeToString(deterministic=True)
    terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=dg(src), index=0)]).SerializeToString(deterministic=True)
    definition = ops_pb2.Definition()
    getattr(definition, "def").extend([src, terminal])
    definition.metadata[dg(src)].description["llb.customname"] = "[1/1] FROM debian"
    out = with_config_file(definition, "/app/cerebrium.toml", "x = 1\n")
    assert out is not None
    ops = [ops_pb2.Op.FromString(b) for b in getattr(out, "def")]
    assert len(ops) == 3 and ops[0] == source
    layer, end = ops[1], ops[2]
    assert [(i.digest, i.index) for i in layer.inputs] == [(dg(src), 0)]
    assert [a.mkdir.path for a in layer.file.actions[:1]] == ["/app"]
    assert (layer.file.actions[1].mkfile.path, layer.file.actions[1].mkfile.data) == ("/app/cerebrium.toml", b"x = 1\n")
    assert layer.platform.Architecture == "amd64"
    layer_digest = dg(getattr(out, "def")[1])
    assert [i.digest for i in end.inputs] == [layer_digest]
    assert out.metadata[layer_digest].description["llb.customname"].startswith("[config] ")
    assert out.metadata[dg(src)].description["llb.customname"] == "[1/1] FROM debian"
    assert with_config_file(ops_pb2.Definition(), "/app/c.toml", "") is None


def test_directory_source_serves_what_its_dockerignore_leaves(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / ".env").write_text("API_KEY=x\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("")
    (tmp_path / "src" / "b.pyc").write_text("")
    (tmp_path / ".dockerignore").write_text("# secrets\n.env\n**/*.pyc\n")
    source = DockerfileSource.directory(tmp_path)
    served = sorted(e.relpath for e in source.context.entries if not e.is_dir)
    assert served == [".dockerignore", "Dockerfile", "main.py", "src/a.py"]
    assert source.dockerfile == "FROM scratch\nCOPY . /\n"
    # A Dockerfile-specific ignore file wins over .dockerignore, as in BuildKit.
    (tmp_path / "Dockerfile.dockerignore").write_text("*\n!Dockerfile\n!main.py\n")
    served = sorted(e.relpath for e in DockerfileSource.directory(tmp_path).context.entries if not e.is_dir)
    assert served == ["Dockerfile", "main.py"]
