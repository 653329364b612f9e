"""Solve plumbing without an engine: export shapes per capability, Status → events, writers, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from builder.api import plan_project
from builder.cli import main
from builder.cli.progress import JsonWriter, PlainWriter
from builder.engines import BuildOptions, OutputSpec
from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.caps import derive_capabilities
from builder.engines.buildkit.convert import convert_plan
from builder.engines.buildkit.export import plan_export
from builder.engines.buildkit.progress import TAIL_LINES, ProgressTracker
from builder.engines.buildkit.solve import SolveSpec, _control_request, definition_job
from builder.engines.events import (
    BuildFinished,
    Mismatch,
    StepFinished,
    StepLog,
    StepStarted,
)
from builder.errors import EngineUnsupported
from builder.plan.model import StepKind

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"
DOCKERD20 = derive_capabilities(
    kind="dockerd",
    buildkit_version=None,
    daemon_version="20.10.24",
    llb_caps=["exec.meta.base", "file.base"],
)
DOCKERD26 = derive_capabilities(
    kind="dockerd",
    buildkit_version="v0.0.0+unknown",
    daemon_version="26.1.5",
    llb_caps=["exec.meta.base", "file.base", "mergeop", "exporter.multiple"],
)
BUILDKITD = derive_capabilities(
    kind="buildkitd",
    buildkit_version="v0.13.2",
    daemon_version=None,
    llb_caps=["exec.meta.base", "file.base", "mergeop", "exporter.multiple"],
)
CONFIG = b'{"config":{}}'


def test_dockerd_tag_uses_moby_through_the_gateway() -> None:
    for caps in (DOCKERD20, DOCKERD26):
        plan = plan_export(caps, BuildOptions(tag="app:1"), CONFIG)
        assert plan.route == "gateway"
        assert [(e.type, dict(e.attrs)) for e in plan.exporters] == [("moby", {"name": "app:1"})]


def test_buildkitd_tag_puts_config_in_the_image_exporter() -> None:
    plan = plan_export(BUILDKITD, BuildOptions(tag="reg/app:1", push=True), CONFIG)
    assert plan.route == "direct"
    (exporter,) = plan.exporters
    assert exporter.type == "image"
    assert dict(exporter.attrs) == {
        "name": "reg/app:1",
        "push": "true",
        "containerimage.config": CONFIG.decode(),
    }


def test_unsupported_outputs_name_the_engine() -> None:
    with pytest.raises(EngineUnsupported, match="oci"):
        plan_export(DOCKERD20, BuildOptions(output=OutputSpec("oci", Path("x"))), CONFIG)
    with pytest.raises(EngineUnsupported, match="one output per build"):
        plan_export(
            DOCKERD20,
            BuildOptions(tag="a", output=OutputSpec("tar", Path("x"))),
            CONFIG,
        )
    with pytest.raises(EngineUnsupported, match="--tag"):
        plan_export(BUILDKITD, BuildOptions(push=True), CONFIG)


def test_two_outputs_use_the_exporters_list_where_it_exists() -> None:
    plan = plan_export(
        BUILDKITD,
        BuildOptions(tag="a", output=OutputSpec("oci", Path("x.tar"))),
        CONFIG,
    )
    assert plan.use_list and [e.type for e in plan.exporters] == ["image", "oci"]
    definition = convert_plan(plan_project(APPS / "minimal", record=False)[0]).definition
    request = _control_request("r", SolveSpec(plan, "sid", ("network.host",), definition=definition))
    assert [e.Type for e in request.Exporters] == [
        "image",
        "oci",
    ] and request.Exporter == ""
    assert request.HasField("Definition")
    single = plan_export(DOCKERD20, BuildOptions(tag="a"), CONFIG)
    job = definition_job(definition, CONFIG)
    gateway = _control_request("r", SolveSpec(single, "sid", (), definition=definition, job=job))
    assert gateway.Exporter == "moby" and dict(gateway.ExporterAttrs) == {"name": "a"}
    assert not gateway.HasField("Definition") and len(gateway.Exporters) == 0
    # Builds stay out of the engine's build history unless asked (the field is "internal").
    assert request.Internal and gateway.Internal
    kept = _control_request("r", SolveSpec(single, "sid", (), job=job, engine_history=True))
    assert not kept.Internal
    # Each route needs what it sends: a Definition (direct) or a bridge job (gateway).
    with pytest.raises(ValueError, match="gateway solve needs a job"):
        SolveSpec(single, "sid", definition=definition)
    with pytest.raises(ValueError, match="direct solve needs a definition"):
        SolveSpec(plan, "sid", job=job)


def test_output_spec_parsing() -> None:
    assert OutputSpec.parse("type=oci,dest=out.tar") == OutputSpec("oci", Path("out.tar"))
    for bad in ("type=zip,dest=x", "type=oci"):
        with pytest.raises(ValueError):
            OutputSpec.parse(bad)


# --- Status stream → events ---------------------------------------------------------------------


def _ts(seconds: float) -> dict[str, int]:
    return {"seconds": int(seconds), "nanos": int((seconds % 1) * 1e9)}


def _vertex(
    digest: str,
    name: str,
    *,
    cached: bool = False,
    started: float | None = None,
    completed: float | None = None,
    error: str = "",
) -> control_pb2.Vertex:
    v = control_pb2.Vertex(digest=digest, name=name, cached=cached, error=error)
    if started is not None:
        v.started.FromNanoseconds(int(started * 1e9))
    if completed is not None:
        v.completed.FromNanoseconds(int(completed * 1e9))
    return v


def tracker_for(
    app: str = "build-basic",
) -> tuple[ProgressTracker, list[object], dict[StepKind, str], dict[str, str]]:
    plan = plan_project(APPS / app, record=False)[0]
    converted = convert_plan(plan)
    events: list[object] = []
    tracker = ProgressTracker(converted, events.append, {"pip": "miss", "apt": "hit"})
    mains = dict(converted.step_digests)
    return tracker, events, mains, converted.definition.names()


def test_vertices_map_to_steps_with_cached_flags_and_durations() -> None:
    tracker, events, mains, names = tracker_for()
    pip, apt = mains[StepKind.PIP], mains[StepKind.APT]
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[
                _vertex(apt, names[apt], cached=True, started=10, completed=10),
                _vertex(pip, names[pip], started=11),
            ]
        )
    )
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[_vertex(pip, names[pip], started=11, completed=14.5)],
            logs=[
                control_pb2.VertexLog(vertex=pip, stream=1, msg=b"UV_PIP_INSTALL_STARTED\npart"),
                control_pb2.VertexLog(vertex=pip, stream=1, msg=b"ial line\n"),
            ],
        )
    )
    tracker.flush()
    finished = {e.step: e for e in events if isinstance(e, StepFinished)}
    assert finished["apt"].cached and finished["apt"].predicted == "hit"
    assert not finished["pip"].cached and finished["pip"].seconds == pytest.approx(3.5)
    assert finished["pip"].predicted == "miss"
    assert [e.line for e in events if isinstance(e, StepLog)] == [
        "UV_PIP_INSTALL_STARTED",
        "partial line",
    ]
    assert [e.step for e in events if isinstance(e, StepStarted)] == ["pip"]  # cached steps never "start"
    observed = tracker.observations()
    assert observed[StepKind.PIP].cached is False and observed[StepKind.SHELL].seen is False


def test_unknown_digest_is_matched_by_name() -> None:
    tracker, events, mains, names = tracker_for()
    shell = mains[StepKind.SHELL]
    tracker.feed(
        control_pb2.StatusResponse(vertexes=[_vertex("sha256:" + "0" * 64, names[shell], started=1, completed=2)])
    )
    assert [e.step for e in events if isinstance(e, StepFinished)] == ["shell"]


def test_failed_step_and_its_tail() -> None:
    tracker, _events, mains, names = tracker_for()
    shell = mains[StepKind.SHELL]
    lines = "".join(f"line {i}\n" for i in range(120)).encode()
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[
                _vertex(shell, names[shell], started=1, completed=2, error="exit code: 3"),
                _vertex(
                    mains[StepKind.CONFIG],
                    names[mains[StepKind.CONFIG]],
                    error="context canceled",
                ),
            ],
            logs=[control_pb2.VertexLog(vertex=shell, stream=2, msg=lines)],
        )
    )
    step, error = tracker.failed_step()
    assert step is StepKind.SHELL and error == "exit code: 3"
    tail = tracker.tail(StepKind.SHELL)
    assert len(tail) == TAIL_LINES and tail[-1] == "line 119"


def test_base_image_that_pulled_nothing_counts_as_cached() -> None:
    tracker, _events, mains, names = tracker_for()
    base = mains[StepKind.BASE]
    tracker.feed(control_pb2.StatusResponse(vertexes=[_vertex(base, names[base], started=1, completed=1.1)]))
    assert tracker.observations()[StepKind.BASE].cached
    tracker2, _e, _m, _n = tracker_for()
    tracker2.feed(
        control_pb2.StatusResponse(
            statuses=[control_pb2.VertexStatus(ID="layer", vertex=base, current=5, total=10)],
            vertexes=[_vertex(base, names[base], started=1, completed=3)],
        )
    )
    assert not tracker2.observations()[StepKind.BASE].cached


def test_a_base_image_seen_done_before_its_pull_is_reported_counts_as_pulled() -> None:
    """Only BuildKit's own cached flag sticks: an image source inferred cached (no transfer seen yet) that then
    reports layer downloads was pulled, so it is a miss (BuildKit 0.8 sends the vertex again with its pull)."""
    tracker, _events, mains, names = tracker_for()
    base = mains[StepKind.BASE]
    tracker.feed(control_pb2.StatusResponse(vertexes=[_vertex(base, names[base], started=1, completed=1.1)]))
    tracker.feed(
        control_pb2.StatusResponse(
            vertexes=[_vertex(base, names[base], started=1.2)],
            statuses=[control_pb2.VertexStatus(ID="layer", vertex=base, current=5, total=10)],
        )
    )
    tracker.feed(control_pb2.StatusResponse(vertexes=[_vertex(base, names[base], started=1.2, completed=3)]))
    assert not tracker.observations()[StepKind.BASE].cached


def test_layers_fetched_for_a_cache_hit_do_not_make_it_run() -> None:
    """The image exporter unpacking a --cache-from hit re-reports its vertex as started, uncached: still a hit."""
    tracker, events, mains, names = tracker_for()
    config = mains[StepKind.CONFIG]
    tracker.feed(
        control_pb2.StatusResponse(vertexes=[_vertex(config, names[config], cached=True, started=10, completed=10.4)])
    )
    tracker.feed(  # BuildKit's lazy-blob pull, under the vertex's digest, during "unpacking to NAME"
        control_pb2.StatusResponse(
            vertexes=[_vertex(config, names[config], started=10.5)],
            statuses=[control_pb2.VertexStatus(ID="sha256:" + "a" * 64, vertex=config, current=9, total=9)],
        )
    )
    tracker.feed(control_pb2.StatusResponse(vertexes=[_vertex(config, names[config], started=10.5, completed=10.6)]))
    seen = tracker.observations()[StepKind.CONFIG]
    assert seen.cached and seen.seconds == pytest.approx(0.4)
    assert [e.step for e in events if isinstance(e, StepStarted)] == []
    assert [(e.step, e.cached) for e in events if isinstance(e, StepFinished)] == [("config", True)]


def test_a_cache_load_that_failed_then_ran_counts_as_run() -> None:
    tracker, _events, mains, names = tracker_for()
    config = mains[StepKind.CONFIG]
    failed_load = _vertex(config, names[config], cached=True, started=10, completed=10.1, error="blob not found")
    tracker.feed(control_pb2.StatusResponse(vertexes=[failed_load]))
    tracker.feed(control_pb2.StatusResponse(vertexes=[_vertex(config, names[config], started=10.2, completed=11)]))
    assert not tracker.observations()[StepKind.CONFIG].cached


# --- writers and exit codes ---------------------------------------------------------------------


def test_json_writer_lines() -> None:
    stream = io.StringIO()
    writer = JsonWriter(stream)
    writer(StepLog("pip", "UV_PIP_INSTALL_STARTED"))
    writer(StepFinished("pip", "[pip] x", False, 1.5, "miss"))
    writer(BuildFinished("app:1", 3.0, (Mismatch("pip", "sha256:k", "hit", False, "sha256:v"),)))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {"event": "log", "id": "pip", "line": "UV_PIP_INSTALL_STARTED"},
        {
            "event": "step",
            "id": "pip",
            "cached": False,
            "seconds": 1.5,
            "predicted": "miss",
        },
        {
            "event": "done",
            "image": "app:1",
            "seconds": 3.0,
            "mismatches": [
                {
                    "id": "pip",
                    "key": "sha256:k",
                    "predicted": "hit",
                    "cached": False,
                    "vertex": "sha256:v",
                }
            ],
        },
    ]


def test_plain_writer_numbers_steps() -> None:
    stream = io.StringIO()
    writer = PlainWriter(stream)
    writer(StepStarted("pip", "[pip] uv pip install -r requirements.txt"))
    writer(StepLog("pip", "hello"))
    writer(StepFinished("pip", "[pip] x", False, 2.0))
    writer(StepFinished("files", "[files] copy", True, 0.0))
    assert stream.getvalue().splitlines() == [
        "#1 [pip] uv pip install -r requirements.txt",
        "#1 hello",
        "#1 DONE 2.0s",
        "#2 [files] copy CACHED",
    ]


def test_unreachable_engine_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "build",
            str(APPS / "minimal"),
            "--engine",
            f"unix://{tmp_path}/nothing.sock",
            "--cache-dir",
            str(tmp_path / "c"),
            "--progress",
            "plain",
        ]
    )
    assert code == 4
    err = capsys.readouterr().err
    assert "nothing.sock" in err and "hint:" in err


def test_rich_writer_renders_without_a_terminal() -> None:
    from builder.cli.progress import RichWriter
    from builder.engines.events import BuildStarted

    writer = RichWriter()
    writer.console.file = io.StringIO()
    writer(BuildStarted("app", ("base", "pip"), "dockerd"))
    writer(StepStarted("pip", "[pip] x"))
    writer(StepLog("pip", "downloading"))
    writer(StepFinished("pip", "[pip] x", False, 2.0, "miss"))
    writer(BuildFinished("app:1", 2.5, ()))
    writer.close()
    assert writer.rows["pip"][:2] == ["[green]done[/]", "2.0s"]
    assert writer.rows["base"][0] == "waiting"


def test_session_entries_carry_current_stats_and_links(tmp_path: Path) -> None:
    import os

    from builder.engines.buildkit.engine import synced_entries
    from builder.errors import PlanError
    from builder.plan.model import FileEntry, FileManifest

    (tmp_path / "a.py").write_text("x = 1\n")
    os.symlink("a.py", tmp_path / "link")
    os.utime(tmp_path / "a.py", ns=(1_000_000_000, 1_234_567_890_123))
    manifest = FileManifest.of(
        [
            FileEntry("a.py", "file", 6, "blake3:00"),
            FileEntry("link", "symlink", 4, "a.py"),
        ]
    )
    entries = {e.relpath: e for e in synced_entries(tmp_path, manifest)}
    assert entries["a.py"].mtime_ns == 1_234_567_890_123 and entries["a.py"].size == 6
    assert entries["link"].is_symlink and entries["link"].link_target == "a.py"
    (tmp_path / "a.py").unlink()
    with pytest.raises(PlanError, match="a.py"):
        synced_entries(tmp_path, manifest)


def test_session_entries_describe_files_as_the_plan_observed_them(tmp_path: Path) -> None:
    import os
    import stat

    from builder.engines.buildkit.engine import synced_entries
    from builder.plan.fileset import FileRules, select_files

    (tmp_path / "run.sh").write_text("echo hi\n")
    os.chmod(tmp_path / "run.sh", 0o750)
    (tmp_path / "a.py").write_text("x = 1\n")
    os.symlink("a.py", tmp_path / "link")
    manifest = select_files(tmp_path, FileRules(include=("*",), exclude=())).manifest
    seen = {w[0]: w for w in manifest.observed}  # type: ignore[union-attr]
    assert [w[0] for w in manifest.observed] == [e.path for e in manifest.entries]  # type: ignore[union-attr]
    for path in ("run.sh", "a.py"):  # the walk's observation is the file's real stat
        st = os.lstat(tmp_path / path)
        assert seen[path][1:] == (st.st_size, st.st_mtime_ns, st.st_ino, stat.S_IMODE(st.st_mode))
    assert seen["link"][1] == -1
    assert manifest == type(manifest).of(manifest.entries)  # an observation is not part of the value

    planned_mtime = seen["a.py"][2]
    os.utime(tmp_path / "a.py", ns=(1, 2))  # changed after planning: BuildKit is told what the plan saw
    entries = {e.relpath: e for e in synced_entries(tmp_path, manifest)}
    assert entries["a.py"].mtime_ns == planned_mtime
    assert entries["run.sh"].mode == 0o750 and entries["run.sh"].size == 8
    assert entries["link"].is_symlink and entries["link"].link_target == "a.py"  # links are read now
