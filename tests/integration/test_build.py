"""`builder build` against the real engine(s): build, run, rebuild cached, change pip, fail a step.

The base + python layers are shared with every other build through the
engine's cache; each test makes its pip set unique (a requirement behind a
never-true marker carrying a nonce) so the pip step really executes once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from builder.api import build
from builder.engines.events import Event, StepFinished, StepLog
from builder.errors import ConfigError, EngineUnsupported, SolveFailed
from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"


def make_unique(app: Path, six: str = "1.16.0") -> None:
    """Point the app at a requirements file whose set is new to the engine (nonce behind a false marker)."""
    nonce = uuid.uuid4().int % 10**9
    (app / "requirements.txt").write_text(f'six=={six}\nidna==3.7; python_version < "2.{nonce}"\n')
    text = (app / "cerebrium.toml").read_text()
    text = text.replace('[cerebrium.dependencies.pip]\nsix = "==1.16.0"\n', "")
    if "[cerebrium.dependencies.paths]" not in text:
        text += '\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    (app / "cerebrium.toml").write_text(text)


def run_build(app: Path, target: EngineTarget, cache: Path, **kwargs: Any) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    result, _, _ = build(
        app,
        engine=target.address,
        tls=target.tls,
        cache_dir=cache,
        ca_bundle=CA,
        on_event=events.append,
        **kwargs,
    )
    return result, events


def markers(events: list[Event]) -> list[str]:
    return [
        e.line for e in events if isinstance(e, StepLog) and e.line in ("UV_PIP_INSTALL_STARTED", "PIP_INSTALL_STARTED")
    ]


def docker(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["docker", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_health(port: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.remote  # the tls engine runs it too: a whole build and rebuild over TLS
def test_build_run_rebuild_and_change_pip(
    app_build_basic: Path,
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    tag = f"builder-test/build-basic:{uuid.uuid4().hex[:8]}"
    make_unique(app_build_basic)

    first, events = run_build(app_build_basic, engine_target, cache, tag=tag)
    assert not first.step("pip").cached
    assert markers(events) == ["UV_PIP_INSTALL_STARTED"]  # exactly once, and the uv one
    assert {e.step for e in events if isinstance(e, StepFinished)} == {s.step for s in first.steps}

    # The image config reached the image store (gateway route on dockerd).
    config = json.loads(docker(engine_env, "image", "inspect", tag))[0]["Config"]
    assert config["Entrypoint"] == ["python", "main.py"]
    assert "8765/tcp" in config["ExposedPorts"]
    assert config["WorkingDir"] == "/app"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "/opt/venv/bin/python"]
    assert config["Labels"]["ai.cerebrium.app"] == "build-basic"
    assert any(e.startswith("PATH=/opt/venv/bin:") for e in config["Env"])

    # It runs and answers its health endpoint; the CA bundle was not left in the image.
    port = free_port()
    name = f"builder-test-{uuid.uuid4().hex[:8]}"
    docker(
        engine_env,
        "run",
        "-d",
        "--rm",
        "--network",
        "host",
        "-e",
        f"PORT={port}",
        "--name",
        name,
        tag,
    )
    try:
        assert get_health(port) == "ok six=1.16.0\n"
        listing = docker(
            engine_env,
            "exec",
            name,
            "sh",
            "-c",
            "ls /run/secrets 2>/dev/null; cat /app/six-version.txt",
        )
        assert listing.strip() == "1.16.0"
    finally:
        subprocess.run(
            ["docker", "rm", "-f", name],
            env=engine_env,
            capture_output=True,
            check=False,
        )

    # Unchanged: every vertex cached, no marker, predictions all hit and all confirmed.
    again, events = run_build(app_build_basic, engine_target, cache, tag=tag)
    assert all(s.cached for s in again.steps), [(s.step, s.cached) for s in again.steps]
    assert all(s.predicted == "hit" for s in again.steps)
    assert markers(events) == []
    assert again.mismatches == ()

    # One pip package changed: only pip → files → shell → config run, exactly as predicted.
    make_unique(app_build_basic, six="1.17.0")
    changed, events = run_build(app_build_basic, engine_target, cache, tag=tag)
    observed = {s.step: ("hit" if s.cached else "miss") for s in changed.steps}
    predicted = {s.step: s.predicted for s in changed.steps}
    assert observed == predicted
    assert observed == {
        "base": "hit",
        "python": "hit",
        "apt": "hit",
        "pip": "miss",
        "files": "miss",
        "shell": "miss",
        "config": "miss",
    }
    assert markers(events) == ["UV_PIP_INSTALL_STARTED"]
    docker(engine_env, "image", "rm", "-f", tag)


def test_failing_step_reports_command_and_log_tail(
    app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    toml = app_build_basic / "cerebrium.toml"
    toml.write_text(toml.read_text().replace("shell_commands = [", f'shell_commands = ["echo boom-{nonce}; exit 3", '))
    with pytest.raises(SolveFailed) as info:
        run_build(app_build_basic, engine_target, tmp_path / "cache")
    failure = info.value.failure
    assert failure is not None and failure.step_id == "shell"
    assert f"echo boom-{nonce}" in failure.command
    assert f"boom-{nonce}" in failure.log_tail
    assert len(failure.log_tail) <= 50


def test_capability_dependent_outputs(app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path) -> None:
    if "dockerd" not in engine_target.name and not engine_target.address.startswith("docker"):
        pytest.skip("dockerd-specific exporter checks")
    with pytest.raises(EngineUnsupported, match="oci"):
        run_build(
            app_build_basic,
            engine_target,
            tmp_path / "c",
            output=f"type=oci,dest={tmp_path / 'x.tar'}",
        )
    with pytest.raises(ConfigError, match="--push needs --tag to name a registry"):
        run_build(app_build_basic, engine_target, tmp_path / "c", tag="x/y:z", push=True)
    result, _ = run_build(
        app_build_basic,
        engine_target,
        tmp_path / "c",
        output=f"type=tar,dest={tmp_path / 'r.tar'}",
    )
    import tarfile

    with tarfile.open(tmp_path / "r.tar") as tar:
        names = set(tar.getnames())
    assert {"app/main.py", "app/cerebrium.toml", "opt/venv/bin/python"} <= {n.lstrip("./") for n in names}
    assert result.image == str(tmp_path / "r.tar")


def test_timeout_cancels_the_solve(app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    toml = app_build_basic / "cerebrium.toml"
    toml.write_text(toml.read_text().replace("shell_commands = [", f'shell_commands = ["sleep 120 # {nonce}", '))
    events: list[Event] = []
    with pytest.raises(SolveFailed, match="timed out"):
        build(
            app_build_basic,
            engine=engine_target.address,
            tls=engine_target.tls,
            cache_dir=tmp_path / "cache",
            ca_bundle=CA,
            timeout=20,
            on_event=events.append,
        )
    assert not any(isinstance(e, StepFinished) and e.step == "shell" and not e.error for e in events)


def test_cli_builds_a_saved_plan_with_json_progress(
    app_build_basic: Path,
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    tmp_path: Path,
) -> None:
    import sys

    env = {**engine_env, "BUILDER_CA_BUNDLE": CA}
    plan = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "plan",
            str(app_build_basic),
            "--format",
            "json",
            "--no-record",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (tmp_path / "plan.json").write_text(plan)
    files_step = next(s for s in json.loads(plan)["steps"] if s["id"] == "files")
    assert "files" not in files_step["inputs"]["manifest"]  # a summary: build completes it from the project
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder",
            "build",
            str(app_build_basic),
            "--plan",
            str(tmp_path / "plan.json"),
            "--progress",
            "json",
            "--cache-dir",
            str(tmp_path / "c"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    steps = [line["id"] for line in lines if line["event"] == "step"]
    assert sorted(steps) == sorted(s["id"] for s in json.loads(plan)["steps"])
    assert lines[-1]["event"] == "done" and "mismatches" in lines[-1]
    assert all(set(line) == {"event", "id", "line"} for line in lines if line["event"] == "log")


def test_capability_dependent_request_shapes(app_build_basic: Path, engine_target: EngineTarget) -> None:
    from builder.api import plan_project
    from builder.engines import BuildOptions
    from builder.engines.buildkit import BuildKitEngine

    plan = plan_project(app_build_basic, record=False)[0]
    with BuildKitEngine.connect(engine_target.address, env=engine_target.env) as engine:
        caps = engine.client.capabilities
        converted, export, config, network = engine.prepare(plan, BuildOptions(tag="x:y"))
    assert ("mergeop" in converted.definition.caps()) == caps.supports_mergeop
    if caps.kind == "dockerd":
        assert network == "host" and export.route == "gateway" and export.exporters[0].type == "moby"
    else:
        assert export.exporters[0].type == "image" and "containerimage.config" in dict(export.exporters[0].attrs)
    assert config is not None and b'"Entrypoint":["python","main.py"]' in config


def test_leaving_the_event_iterator_cancels_the_build(app_build_basic: Path, engine_target: EngineTarget) -> None:
    from builder.api import plan_project
    from builder.engines import BuildOptions
    from builder.engines.buildkit import BuildKitEngine
    from builder.engines.events import StepStarted

    nonce = uuid.uuid4().hex
    toml = app_build_basic / "cerebrium.toml"
    toml.write_text(toml.read_text().replace("shell_commands = [", f'shell_commands = ["sleep 300 # {nonce}", '))
    plan = plan_project(app_build_basic, record=False)[0]
    seen = []
    with BuildKitEngine.connect(engine_target.address, env=engine_target.env) as engine:
        events = engine.iter_build(plan, app_build_basic, BuildOptions(ca_bundle=Path(CA)))
        for event in events:
            seen.append(event)
            if isinstance(event, StepStarted) and event.step == "shell":
                break
        events.close()  # like Ctrl-C in a CLI: the solve is cancelled on the engine, the thread ends
    assert any(isinstance(e, StepStarted) and e.step == "shell" for e in seen)
    assert not any(isinstance(e, StepFinished) and e.step == "shell" for e in seen)


def test_editable_local_requirement_reads_its_files_from_the_session(
    engine_target: EngineTarget, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    pkg = app / "localpkg" / "src" / "localpkg"
    pkg.mkdir(parents=True)
    nonce = uuid.uuid4().hex
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "local-req"\npython_version = "3.11"\nuse_uv = true\n'
        "shell_commands = [\"python -c 'import localpkg; print(localpkg.VALUE)'\"]\n\n"
        '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    )
    (app / "requirements.txt").write_text("-e ./localpkg\n")
    (app / "main.py").write_text("print('x')\n")
    (app / "localpkg" / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n\n'
        '[project]\nname = "localpkg"\nversion = "0.1.0"\ndescription = "x"\n'
    )
    (pkg / "__init__.py").write_text(f"VALUE = '{nonce}'\n")
    result, events = run_build(app, engine_target, tmp_path / "cache")
    assert not result.step("pip").cached
    assert nonce in [e.line for e in events if isinstance(e, StepLog) and e.step == "shell"]


def test_tag_and_tarball_in_one_build_where_the_engine_allows(
    app_build_basic: Path,
    engine_target: EngineTarget,
    engine_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from builder.engines.buildkit.client import open_engine

    with open_engine(engine_target.address, env=engine_target.env) as client:
        multiple = client.capabilities.exporters_list_field
    tag = f"builder-test/multi:{uuid.uuid4().hex[:8]}"
    out = tmp_path / "rootfs.tar"
    if not multiple:  # BuildKit 0.8: one exporter per solve, said clearly
        with pytest.raises(EngineUnsupported, match="one output per build"):
            run_build(
                app_build_basic,
                engine_target,
                tmp_path / "c",
                tag=tag,
                output=f"type=tar,dest={out}",
            )
        return
    run_build(
        app_build_basic,
        engine_target,
        tmp_path / "c",
        tag=tag,
        output=f"type=tar,dest={out}",
    )
    assert out.stat().st_size > 0
    config = json.loads(docker(engine_env, "image", "inspect", tag))[0]["Config"]
    assert config["Entrypoint"] == ["python", "main.py"]
    docker(engine_env, "image", "rm", "-f", tag)


def _history_refs(engine: Any) -> set[str] | None:
    """The refs of every build in the engine's build history; None when it keeps none (BuildKit < 0.11)."""
    import grpc

    from builder.engines.buildkit._pb import control_pb2

    try:
        events = engine.control.ListenBuildHistory(control_pb2.BuildHistoryRequest(EarlyExit=True), timeout=60)
        return {event.record.Ref for event in events}
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.UNIMPLEMENTED, exc
        return None


def test_engine_history_only_on_request(
    app_build_basic: Path, engine_target: EngineTarget, engine: Any, tmp_path: Path
) -> None:
    """Builds stay out of the engine's build history unless --engine-history asks for a record."""
    before = _history_refs(engine)
    run_build(app_build_basic, engine_target, tmp_path / "cache", tag="builder-history:plain")
    after_plain = _history_refs(engine)
    run_build(app_build_basic, engine_target, tmp_path / "cache", tag="builder-history:kept", engine_history=True)
    after_kept = _history_refs(engine)
    if before is None:  # dockerd 20.10 (BuildKit 0.8): no history to write to; both builds simply work
        assert after_plain is None and after_kept is None
        assert not engine.capabilities.has_info
        return
    assert after_plain == before
    assert after_kept is not None and len(after_kept - before) == 1
