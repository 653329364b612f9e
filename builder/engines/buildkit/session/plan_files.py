"""Serve the plan's ``FileManifest`` as a ``local://`` source.

The plan lists regular files (``file``/``exec``) and symlinks with their
sizes; it has no modes, mtimes or directories.  This module turns it into
:class:`~builder.engines.buildkit.session.manifest.ManifestEntry` values at
build time:

* modes are normalised (0644 files, 0755 executables and directories, uid/gid
  0), so BuildKit's content checksums, which include mode and ownership, are
  the same on every machine whatever its umask;
* mtimes are read now: the engine re-requests a file only when its size or
  mtime changed, so they must be the real ones;
* every parent directory of a listed entry is described (no empty dirs);
* an entry that disappeared or changed kind or size since planning fails
  with :class:`TransferError` instead of sending something unplanned.

    >>> synced = synced_dir_for_manifest(project_dir, plan_manifest)   # doctest: +SKIP
    >>> FileSyncProvider({"context": synced})                            # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from builder.engines.buildkit.session.errors import TransferError
from builder.engines.buildkit.session.filesync import SyncedDir
from builder.engines.buildkit.session.manifest import FileEntry
from builder.engines.buildkit.session.paths import check_relpath, open_dir_fd, sort_key

FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
_STALE_HINT = "the project changed after planning; run the build again"


class PlannedFile(Protocol):
    """What the sender needs from one ``builder.plan.model.FileEntry``."""

    @property
    def path(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def digest(self) -> str: ...


class PlannedManifest(Protocol):
    """What the sender needs from ``builder.plan.model.FileManifest``."""

    @property
    def entries(self) -> Iterable[PlannedFile]: ...


def _lstat(root_fd: int, path: str) -> os.stat_result:
    parent, _, name = path.rpartition("/")
    try:
        with open_dir_fd(root_fd, parent) as dir_fd:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (OSError, TransferError) as exc:
        raise TransferError(
            f"project file {path!r} is listed in the plan but cannot be read", hint=_STALE_HINT
        ) from exc


def _readlink(root_fd: int, path: str) -> str:
    parent, _, name = path.rpartition("/")
    with open_dir_fd(root_fd, parent) as dir_fd:
        return os.readlink(name, dir_fd=dir_fd)


def _entry(root_fd: int, planned: PlannedFile) -> FileEntry:
    path = check_relpath(planned.path)
    st = _lstat(root_fd, path)
    if planned.type == "symlink":
        target = _readlink(root_fd, path) if stat.S_ISLNK(st.st_mode) else None
        if target != planned.digest:
            raise TransferError(f"symlink {path!r} changed after planning", hint=_STALE_HINT)
        return FileEntry(path, is_symlink=True, mode=0o777, mtime_ns=st.st_mtime_ns, link_target=target)
    if not stat.S_ISREG(st.st_mode) or st.st_size != planned.size:
        raise TransferError(f"project file {path!r} changed after planning", hint=_STALE_HINT)
    mode = EXEC_MODE if planned.type == "exec" else FILE_MODE
    return FileEntry(path, mode=mode, size=st.st_size, mtime_ns=st.st_mtime_ns)


def synced_dir_for_manifest(root: str | os.PathLike[str], manifest: PlannedManifest) -> SyncedDir:
    """The plan's files under ``root`` as a :class:`SyncedDir` (see the module docstring)."""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise TransferError(f"cannot open the project directory {os.fspath(root)}: {exc.strerror}") from exc
    try:
        files = [_entry(root_fd, planned) for planned in manifest.entries]
        parents = {p for f in files for p in _ancestors(f.relpath)}
        dirs = [FileEntry(p, is_dir=True, mode=DIR_MODE, mtime_ns=_lstat(root_fd, p).st_mtime_ns) for p in parents]
    finally:
        os.close(root_fd)
    entries = sorted([*dirs, *files], key=lambda e: sort_key(e.relpath))
    return SyncedDir(Path(root), tuple(entries))


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
