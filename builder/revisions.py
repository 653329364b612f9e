"""Git revisions as plain directories, for ``builder diff --git`` (``git archive``, no work tree changes).

Revisions and paths are passed to git as separate argv items (never through a
shell); a revision starting with ``-`` is refused so it cannot become an
option; archives are unpacked with tarfile's ``data`` filter, which refuses
absolute paths, ``..`` and links leaving the destination.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from builder.errors import PlanError


def repository_root(directory: Path) -> Path:
    """The top of the git work tree holding ``directory``; PlanError when there is none."""
    return Path(_git(directory, "rev-parse", "--show-toplevel").strip())


def export_revision(top: Path, rev: str, rel: str, dest: Path) -> None:
    """Unpack ``rel`` (a path inside the repository, "." for all) at ``rev`` into ``dest``."""
    if not rev or rev.startswith("-"):
        raise PlanError(f"invalid git revision {rev!r}")
    spec = [rel] if rel != "." else []
    try:
        done = subprocess.run(
            ["git", "archive", "--format=tar", rev, "--", *spec], cwd=top, capture_output=True, check=False, timeout=300
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise PlanError(f"cannot run git archive: {exc}") from exc
    if done.returncode != 0:
        raise PlanError(
            f"git archive {rev} failed: {done.stderr.decode(errors='replace').strip()}",
            hint="check the revision name (a branch, tag or commit)",
        )
    import tarfile  # only `builder diff --git` unpacks archives; builder.api imports this module on every run

    try:
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise PlanError(f"cannot unpack revision {rev}: {exc}") from exc


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PlanError(f"cannot run git: {exc}", hint="install git, or compare two directories") from exc
    if done.returncode != 0:
        raise PlanError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
