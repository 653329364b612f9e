"""uv_check.py: the uv in the tools mount runs only as a private copy whose sha256 is pinned."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from builder.recipes import tools
from builder.recipes.script_text import script_file, script_text

GOOD = b"#!/bin/sh\necho pinned\n"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def run_check(tools_dir: Path, private: Path, *digests: str) -> subprocess.CompletedProcess[str]:
    text = script_file("uv_check.py").decode()
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", text, str(tools_dir), str(private), *digests],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def plant(tools_dir: Path, data: bytes) -> Path:
    uv = tools_dir / "bin" / "uv"
    uv.parent.mkdir(parents=True)
    uv.write_bytes(data)
    uv.chmod(0o755)
    return uv


def test_a_pinned_uv_is_copied_out_private_and_the_mount_is_left_alone(tmp_path: Path) -> None:
    tools_dir, private = tmp_path / "tools", tmp_path / "private"
    private.mkdir()
    plant(tools_dir, GOOD)
    done = run_check(tools_dir, private, "0" * 64, GOOD_SHA)
    assert done.returncode == 0 and done.stderr == ""
    assert (private / "uv").read_bytes() == GOOD
    assert (private / "uv").stat().st_mode & 0o777 == 0o700
    assert (tools_dir / "bin" / "uv").read_bytes() == GOOD


def test_a_wrong_uv_is_removed_with_its_folder_and_no_copy_is_left(tmp_path: Path) -> None:
    tools_dir, private = tmp_path / "tools", tmp_path / "private"
    private.mkdir()
    plant(tools_dir, b"#!/bin/sh\necho evil\n")
    done = run_check(tools_dir, private, GOOD_SHA)
    assert done.returncode == 1
    assert "is not the pinned uv (sha256 " + hashlib.sha256(b"#!/bin/sh\necho evil\n").hexdigest() in done.stderr
    assert not tools_dir.exists() and not (private / "uv").exists()


def test_a_missing_uv_fails_quietly(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    done = run_check(tmp_path / "tools", private, GOOD_SHA)
    assert (done.returncode, done.stderr) == (1, "")


def test_a_linked_uv_is_never_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(GOOD)  # pinned bytes, but reached through a link another build could aim anywhere
    tools_dir, private = tmp_path / "tools", tmp_path / "private"
    private.mkdir()
    (tools_dir / "bin").mkdir(parents=True)
    (tools_dir / "bin" / "uv").symlink_to(real)
    done = run_check(tools_dir, private, GOOD_SHA)
    assert done.returncode == 1 and "sha256 unreadable" in done.stderr
    assert not tools_dir.exists() and real.read_bytes() == GOOD


def test_a_linked_tools_folder_with_a_wrong_uv_is_unlinked_not_emptied(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    plant(elsewhere, b"not uv")
    tools_dir, private = tmp_path / "tools", tmp_path / "private"
    private.mkdir()
    tools_dir.symlink_to(elsewhere)
    done = run_check(tools_dir, private, GOOD_SHA)
    assert done.returncode == 1
    assert not os.path.lexists(tools_dir) and (elsewhere / "bin" / "uv").read_bytes() == b"not uv"


def test_a_copy_target_planted_beforehand_is_not_written_through(tmp_path: Path) -> None:
    tools_dir, private = tmp_path / "tools", tmp_path / "private"
    private.mkdir()
    plant(tools_dir, GOOD)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, private / "uv")
    done = run_check(tools_dir, private, GOOD_SHA)
    assert done.returncode == 1 and victim.read_text() == "keep"


def test_the_scripts_check_with_every_pinned_digest_before_use_and_after_a_fetch() -> None:
    assert len(tools.UV_SHA256) == len(set(tools.UV_SHA256)) and all(len(d) == 64 for d in tools.UV_SHA256)
    for name in ("tools_uv.sh", "python.sh"):
        text = script_text(name)
        assert text.count(" ".join(tools.UV_SHA256)) == 2, name
        assert '"$tools/bin/uv"' not in text, name  # never run from the mount
        assert "uv_ready " in text and "trap 'rm -rf" in text, name
    pip_text = script_text("pip.sh")  # the step checks the tools run's read-only copy again, and runs a private copy
    assert pip_text.count(" ".join(tools.UV_SHA256)) == 1 and '--keep "$checked"' in pip_text
    assert '"$checked/bin/uv"' not in pip_text
