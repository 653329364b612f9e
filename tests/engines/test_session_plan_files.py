"""The plan's FileManifest served as a local:// source: normalised modes, real mtimes, staleness checks."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from builder.engines.buildkit.session import DiffCopyReceiver, DiffCopySender, TransferError
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.engines.buildkit.session.stream import memory_pipe
from builder.plan.model import FileEntry, FileManifest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg" / "deep").mkdir(parents=True)
    (root / "pkg" / "deep" / "mod.py").write_text("x = 1\n")
    (root / "pkg" / "deep" / "mod.py").chmod(0o600)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o700)
    (root / "pkg").chmod(0o700)
    os.symlink("run.sh", root / "link")
    (root / "unplanned.txt").write_text("not in the plan\n")
    return root


def manifest() -> FileManifest:
    return FileManifest.of(
        [
            FileEntry("pkg/deep/mod.py", "file", 6, "blake3:aa"),
            FileEntry("run.sh", "exec", 10, "blake3:bb"),
            FileEntry("link", "symlink", 6, "run.sh"),
        ]
    )


def test_entries_have_normalised_modes_real_mtimes_and_parents(project: Path) -> None:
    synced = synced_dir_for_manifest(project, manifest())
    by_path = {e.relpath: e for e in synced.entries}
    assert list(by_path) == ["link", "pkg", "pkg/deep", "pkg/deep/mod.py", "run.sh"]
    assert by_path["pkg"].is_dir and by_path["pkg"].mode == 0o755
    assert by_path["pkg/deep/mod.py"].mode == 0o644
    assert by_path["run.sh"].mode == 0o755
    assert by_path["link"].is_symlink and by_path["link"].link_target == "run.sh"
    assert by_path["pkg/deep/mod.py"].mtime_ns == (project / "pkg" / "deep" / "mod.py").stat().st_mtime_ns


def test_only_planned_files_arrive_with_normalised_modes(project: Path, tmp_path: Path) -> None:
    synced = synced_dir_for_manifest(project, manifest())
    ours, peer = memory_pipe()
    sender = threading.Thread(target=lambda: (DiffCopySender(synced.root, synced.entries).run(ours), ours.close()))
    sender.start()
    DiffCopyReceiver(tmp_path / "out").run(peer)
    peer.close()
    sender.join(30)
    out = tmp_path / "out"
    assert not (out / "unplanned.txt").exists()
    assert stat.S_IMODE((out / "pkg").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "pkg" / "deep" / "mod.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert os.readlink(out / "link") == "run.sh"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root: (root / "run.sh").unlink(), "cannot be read"),
        (lambda root: (root / "run.sh").write_text("#!/bin/sh\necho longer\n"), "changed after planning"),
        (lambda root: ((root / "link").unlink(), os.symlink("elsewhere", root / "link")), "symlink"),
        (lambda root: ((root / "run.sh").unlink(), os.symlink("x" * 10, root / "run.sh")), "changed after planning"),
        (lambda root: ((root / "pkg").rename(root / "p2"), os.symlink("p2", root / "pkg")), "cannot be read"),
    ],
)
def test_stale_plans_fail_before_anything_is_sent(project: Path, change: object, message: str) -> None:
    change(project)  # type: ignore[operator]
    with pytest.raises(TransferError, match=message) as info:
        synced_dir_for_manifest(project, manifest())
    assert info.value.hint and "run the build again" in info.value.hint
