"""On the real engine, the files as one layer of changes on a kept base give the same /app as one whole copy."""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.convert import CHANGES_NAME, CONTEXT_NAME, changes_layer, layer_states
from builder.engines.buildkit.llb import Platform, State
from builder.engines.buildkit.session import DirectoryOutput, FileSendProvider, FileSyncProvider, Session
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.plan.file_layers import split_layers
from builder.plan.files_base import FilesBase, changes_onto
from builder.plan.fileset import FileRules, select_files
from tests.integration.test_file_layers_engine import _NAMES, _write_tree
from tests.integration.test_session_engine import content, solve

RULES = FileRules(("*",), ())


def _reshape(root: Path, rnd: random.Random) -> None:
    """Edits that change a path's kind as well as its content: modify, delete, chmod, add (nested),
    a file replaced by a directory, a directory by a file, a file by a symlink."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    for path in rnd.sample(files, min(4, len(files))):
        choice = rnd.random()
        if choice < 0.25:
            path.write_bytes(rnd.randbytes(rnd.randint(0, 200)))
        elif choice < 0.45:
            path.unlink()
        elif choice < 0.6:
            path.chmod(0o755 if path.stat().st_mode & 0o100 == 0 else 0o644)
        elif choice < 0.8:
            path.unlink()
            (path / "now-a-dir").mkdir(parents=True)
            (path / "now-a-dir" / "f").write_text("nested\n")
        else:
            path.unlink()
            path.symlink_to("elsewhere")
    dirs = sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())
    if dirs:
        gone = rnd.choice(dirs)
        shutil.rmtree(gone)
        if rnd.random() < 0.5:
            gone.write_text("was a directory\n")
    new = root / rnd.choice(_NAMES) / "deep" / f"new-{rnd.randint(0, 99)}"
    if not any(p.is_file() or p.is_symlink() for p in new.parents if root in p.parents):
        new.parent.mkdir(parents=True, exist_ok=True)
        new.write_text("added\n")


def _solve(engine: EngineClient, top: State, dirs: dict, exporter: str, attrs: dict | None = None) -> None:
    from builder.engines.buildkit._pb import control_pb2

    files = FileSyncProvider(dirs)
    with Session.start(engine.control, files) as session:
        request = control_pb2.SolveRequest(
            Ref=f"builder-test-{uuid.uuid4().hex}",
            Definition=top.marshal().to_pb(),
            Session=session.id,
            Exporter=exporter,
            ExporterAttrs=attrs or {},
        )
        engine.control.Solve(request, timeout=300)


def _local_app(engine: EngineClient, top: State, dirs: dict, out: Path) -> dict[str, tuple[object, ...]]:
    result = DirectoryOutput(out)
    with Session.start(engine.control, FileSyncProvider(dirs), FileSendProvider(result)) as session:
        solve(engine, session, top.marshal().to_pb(), "local")
    assert result.done
    return content(out / "app")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_changes_on_a_kept_base_give_the_whole_copy_app(
    engine: EngineClient, engine_env: dict[str, str], tmp_path: Path, seed: int
) -> None:
    rnd = random.Random(seed)
    work = tmp_path / f"case-{seed}"
    root = work / "project"
    root.mkdir(parents=True)
    _write_tree(root, rnd, 50)
    hint = f"files-base-test-{uuid.uuid4().hex}"
    before = select_files(root, RULES).manifest
    local = State.local(CONTEXT_NAME, [("local.sharedkeyhint", hint)])
    whole = layer_states(State.scratch(), local, split_layers(before), "/app", False, Platform(), "copy")[-1]
    image = f"docker.io/library/builder-test-files-base:{uuid.uuid4().hex[:16]}"
    _solve(engine, whole, {CONTEXT_NAME: synced_dir_for_manifest(root, before)}, "moby", {"name": image})
    try:
        _reshape(root, rnd)
        after = select_files(root, RULES).manifest
        changes = changes_onto(FilesBase(image, "p", "/app", before), after, "p", "/app", max_share=100.0)
        assert changes is not None
        top, served = changes_layer(State.image(image), changes, "/app", hint, "changes")
        dirs = {CHANGES_NAME: synced_dir_for_manifest(root, served)} if served is not None else {}
        layered = _local_app(engine, top, dirs, work / "layered")
        again = layer_states(State.scratch(), local, split_layers(after), "/app", False, Platform(), "copy")[-1]
        single = _local_app(engine, again, {CONTEXT_NAME: synced_dir_for_manifest(root, after)}, work / "single")
        assert layered == single
        assert {k for k, v in single.items() if v[0] != "dir"} == {e.path for e in after.entries}
    finally:
        subprocess.run(["docker", "rmi", image], env=engine_env, capture_output=True, timeout=60, check=False)
        shutil.rmtree(work)
