"""On the real engine, the layered files step gives the same /app as one copy, for random trees and edits."""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.api import build
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.convert import layer_states
from builder.engines.buildkit.llb import Platform, State
from builder.engines.buildkit.session import DirectoryOutput, FileSendProvider, FileSyncProvider, Session
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.plan.file_layers import split_layers
from builder.plan.fileset import FileRules, select_files
from tests.integration.conftest import EngineTarget
from tests.integration.test_session_engine import content, solve

CA = "/etc/ssl/certs/ca-certificates.crt"

_NAMES = ["a", "a-b", "a.txt", "b", "lib", "z", "ü", "main.py", "run.sh"]


def _write_tree(root: Path, rnd: random.Random, count: int) -> None:
    for _ in range(count):
        parts = [rnd.choice(_NAMES) for _ in range(rnd.randint(1, 4))]
        path = root.joinpath(*parts)
        if any(p.is_file() for p in path.parents if p != root and root in p.parents) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(rnd.randint(0, 300)))
        if rnd.random() < 0.2:
            path.chmod(0o755)
    if not (root / "link").exists():
        (root / "link").symlink_to("a/b")


def _edit(root: Path, rnd: random.Random) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for path in rnd.sample(files, min(3, len(files))):
        choice = rnd.random()
        if choice < 0.4:
            path.write_bytes(rnd.randbytes(rnd.randint(0, 300)))
        elif choice < 0.7:
            path.unlink()
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o100 == 0 else 0o644)
    new = root / rnd.choice(_NAMES) / f"new-{rnd.randint(0, 99)}"
    if not new.parent.is_file() and not new.parent.is_symlink():
        new.parent.mkdir(parents=True, exist_ok=True)
        new.write_text("added\n")


def _app(engine: EngineClient, root: Path, out: Path, max_files: int) -> dict[str, tuple[object, ...]]:
    """/app exported from the chained layers of the project at ``root`` (``max_files`` per layer)."""
    manifest = select_files(root, FileRules(("*",), ())).manifest
    layers = split_layers(manifest, max_files=max_files, max_direct=2)
    local = State.local("context", [("local.sharedkeyhint", f"layers-{uuid.uuid4().hex}")])
    top = layer_states(State.scratch(), local, layers, "/app", False, Platform(), "copy")[-1]
    files = FileSyncProvider({"context": synced_dir_for_manifest(root, manifest)})
    result = DirectoryOutput(out)
    with Session.start(engine.control, files, FileSendProvider(result)) as session:
        solve(engine, session, top.marshal().to_pb(), "local")
    assert result.done
    return content(out / "app")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_layered_files_give_the_single_layer_app(engine: EngineClient, tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    work = tmp_path / f"case-{seed}"
    root = work / "project"
    root.mkdir(parents=True)
    _write_tree(root, rnd, 60)
    for round_ in ("first", "edited"):
        layered = _app(engine, root, work / f"{round_}-layered", max_files=4)
        single = _app(engine, root, work / f"{round_}-single", max_files=10**6)
        assert layered == single
        assert set(layered) >= {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        _edit(root, rnd)
    shutil.rmtree(work)


@pytest.mark.remote  # the tls engine runs it too: file layers sent through the session over TLS
def test_a_layered_project_builds_rebuilds_one_edit_and_predicts_it(
    engine_target: EngineTarget, engine_env: dict[str, str], tmp_path: Path
) -> None:
    """builder build of a 2,600-file project: an edit in the top data layer rebuilds files, predicted exactly."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "layers"\npython_version = "3.11"\ninclude = ["*"]\nexclude = [".*"]\n'
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n'  # files in /app
    )
    (app / "main.py").write_text("print('layers')\n")
    nonce = uuid.uuid4().hex  # content new to the engine: the files layers really run
    for i in range(2600):
        sub = app / "data" / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"{nonce} {i}\n")
    tag = f"builder-test/layers:{nonce[:8]}"
    cache = tmp_path / "cache"
    first, _, _ = build(
        app, engine=engine_target.address, tls=engine_target.tls, cache_dir=cache, ca_bundle=CA, tag=tag
    )
    assert not first.step("files").cached
    assert [m.step for m in first.mismatches if m.step == "files"] == []  # base, python: new cache dir
    (app / "data" / "d25" / "f2550.txt").write_text("edited\n")
    second, _, _ = build(
        app, engine=engine_target.address, tls=engine_target.tls, cache_dir=cache, ca_bundle=CA, tag=tag
    )
    assert not second.step("files").cached
    assert second.mismatches == ()  # the plan predicted the miss, BuildKit agreed
    shown = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "sh",
            tag,
            "-c",
            "cat /app/data/d25/f2550.txt /app/data/d00/f0000.txt; find /app -type f | wc -l",
        ],
        env=engine_env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split("\n")
    assert shown[:4] == ["edited", f"{nonce} 0", "2602", ""]  # 2,600 data files, main.py, cerebrium.toml
    third, _, _ = build(
        app, engine=engine_target.address, tls=engine_target.tls, cache_dir=cache, ca_bundle=CA, tag=tag
    )
    assert third.step("files").cached and third.mismatches == ()
