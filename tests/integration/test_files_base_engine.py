"""On the real engine, the files as one layer of changes on a kept base give the same /app as one whole copy."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
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
from tests.integration.conftest import EngineTarget
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


def _twin(root: Path, app: str, nonce: str) -> None:
    root.mkdir(parents=True)
    (root / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "{app}"\npython_version = "3.11"\ninclude = ["*"]\nexclude = [".*"]\n'
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n'
    )
    (root / "main.py").write_text("print('twin')\n")
    for i in range(2100):
        sub = root / "data" / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"{nonce} {i}\n")


def test_concurrent_builds_of_same_named_apps_keep_their_own_files(
    engine_target: EngineTarget, engine_env: dict[str, str], tmp_path: Path
) -> None:
    """Two projects with one app name, built at the same time (whole, then one edit each onto their
    bases): each image holds its own project's files, never the other's."""
    app = f"twins-{uuid.uuid4().hex[:8]}"
    nonces = [uuid.uuid4().hex, uuid.uuid4().hex]
    roots = [tmp_path / "one", tmp_path / "two"]
    tags = [f"builder-test/{app}:{n[:8]}" for n in nonces]
    for root, nonce in zip(roots, nonces, strict=True):
        _twin(root, app, nonce)

    def build_both() -> list[str]:
        runs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "builder",
                    "build",
                    str(root),
                    *engine_target.cli_args,
                    "--tag",
                    tag,
                    "--cache-dir",
                    str(tmp_path / f"cache-{i}"),
                    "--progress",
                    "plain",
                ],
                env={**os.environ, "BUILDER_SERVER": "off"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, (root, tag) in enumerate(zip(roots, tags, strict=True))
        ]
        outs = [run.communicate(timeout=400)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outs
        return outs

    build_both()
    for root, nonce in zip(roots, nonces, strict=True):
        (root / "data" / "d00" / "f0000.txt").write_text(f"edited {nonce}\n")
    outs = build_both()
    assert all("1 changed file copied onto the files as last built whole" in out for out in outs), outs
    for tag, nonce in zip(tags, nonces, strict=True):
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
                "cat /app/data/d00/f0000.txt /app/data/d20/f2099.txt; find /app/data -type f | wc -l",
            ],
            env=engine_env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.split("\n")
        assert shown[:3] == [f"edited {nonce}", f"{nonce} 2099", "2100"]
    subprocess.run(["docker", "rmi", *tags], env=engine_env, capture_output=True, timeout=60, check=False)
