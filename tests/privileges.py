"""Run a piece of Python as a user that file permissions really apply to.

Tests of "permission denied" behaviour (an unreadable config, an unwritable
cache directory, ...) cannot work in-process when the suite runs as root: root
reads and writes everything regardless of mode bits, so ``chmod 0`` proves
nothing.  Instead such tests prepare their files, then run the code under test
in a child interpreter through :func:`run_python`.  As root the child drops to
the unprivileged user ``nobody`` with util-linux ``setpriv``; as any other user
it simply runs as that user, who is already subject to the mode bits.  Either
way the same child code runs and the test asserts on its output.

The files must live where ``nobody`` can reach them: pytest's ``tmp_path``
sits under ``/tmp/pytest-of-root`` (mode 0700), so use
:func:`traversable_tmp_dir` instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534  # uid and gid of ``nobody``/``nogroup`` on Debian


def dropping_privileges() -> bool:
    """True when :func:`run_python` switches to ``nobody`` (the suite runs as root)."""
    return os.geteuid() == 0


def _prefix() -> list[str]:
    """The command that makes the child unprivileged: ``setpriv ...`` as root, nothing otherwise."""
    if not dropping_privileges():
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail(
            "running as root, and setpriv (util-linux) is missing: it is needed to drop to the "
            "unprivileged user `nobody` so that file permissions apply (apt-get install util-linux)"
        )
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` with this interpreter as an unprivileged user.

    The child sees the repository in front of the caller's ``PYTHONPATH``, a non-existent ``HOME``, ``/`` as its working
    directory, and the extra ``env`` entries; it never writes byte-code.  Callers assert on the exit
    status with ``done.stderr`` in the message, so a child that cannot even start is reported clearly.
    """
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": python_path,
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        # tests/conftest turns default resolution of pip specs off: children must not ask live PyPI either
        "BUILDER_RESOLVE": os.environ.get("BUILDER_RESOLVE", ""),
        **(env or {}),
    }
    command = [*_prefix(), sys.executable, "-c", code, *args]
    return subprocess.run(command, env=child_env, capture_output=True, text=True, timeout=timeout, check=False, cwd="/")


def start_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Like :func:`run_python`, in the background (a fake server as another user, ...); the caller stops it."""
    python_path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": python_path,
        "HOME": "/nonexistent",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        # tests/conftest turns default resolution of pip specs off: children must not ask live PyPI either
        "BUILDER_RESOLVE": os.environ.get("BUILDER_RESOLVE", ""),
        **(env or {}),
    }
    return subprocess.Popen(
        [*_prefix(), sys.executable, "-c", code, *args],
        env=child_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd="/",
    )


def _make_removable(root: Path) -> None:
    """Give back owner rwx on every directory below ``root``, so ``rmtree`` succeeds as non-root."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)


@contextmanager
def traversable_tmp_dir() -> Iterator[Path]:
    """A fresh temporary directory (mode 0755) that ``nobody`` can traverse; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="builder-privileges-"))
    try:
        root.chmod(0o755)
        yield root
    finally:
        root.chmod(0o700)
        _make_removable(root)
        shutil.rmtree(root, ignore_errors=True)


def copy_tree_readable(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` with modes that let ``nobody`` read it (dirs 0755, files 0644)."""
    shutil.copytree(source, target)
    for dirpath, _dirnames, filenames in os.walk(target):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return target


__all__ = ["copy_tree_readable", "dropping_privileges", "run_python", "start_python", "traversable_tmp_dir"]
