"""The files step as one small layer of changes on top of the files as last built whole (the *files base*).

A large project's files step copies every selected file, and the engine's
session first compares every one of them with its copy of the context (a
"stat sync"), so a one-file edit costs time in proportion to the project.
When the files were last built whole on an engine with an image store, that
state (dependency layers plus the files) is kept there as an image, the
*base*.  A later build of the same dependencies reuses the base's layers and
adds one layer that removes the deleted paths and copies the changed and added
files, sent through their own ``local://`` source holding only those files:
the cost grows with the change, not with the project.

This module is the pure part: what a base is, when a manifest may be built on
one (:func:`changes_onto`) and the exact actions (:class:`FilesChanges`).  The
result is the same ``/app`` as a whole copy (paths, modes, contents): a path
that changes kind (file, symlink, directory) is removed before it is copied, and
directories left empty by deletions are removed (a whole copy has no empty
directories).  When the changes grow past :data:`MAX_CHANGED` paths or
:data:`MAX_SHARE` of the files, the files are copied whole again (a new base).

>>> # changes = changes_onto(base, manifest, parent_key, "/app")  → FilesChanges or None (copy whole)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from builder.plan.model import FileManifest

#: Only projects with more files than this get a base (below it a whole copy costs well under a second).
MIN_FILES = 2048
#: At most this many changed paths (copied or removed) go in a changes layer; more means copying whole again.
MAX_CHANGED = 512
#: ... and at most this share of the project's files.
MAX_SHARE = 0.10
#: Repository of the base images in the engine's image store (tag: a digest of what the base holds).
BASE_REPOSITORY = "builder-files-base"


@dataclass(frozen=True, slots=True)
class FilesBase:
    """The files as last built whole: the image holding them, what they were built on and what they hold.

    ``parent``: the key of the step the files were copied onto (the dependency layers); ``dest``: where
    they were copied; ``manifest``: the files.  Valid for a plan with the same parent key and dest.
    """

    image: str
    parent: str
    dest: str
    manifest: FileManifest

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "parent": self.parent,
            "dest": self.dest,
            "files": list(map(list, self.manifest.entries)),
        }

    @classmethod
    def from_json(cls, data: object) -> FilesBase | None:
        """The base a record describes; None when the record is not one (never raises)."""
        if not isinstance(data, dict):
            return None
        image, parent, dest, files = data.get("image"), data.get("parent"), data.get("dest"), data.get("files")
        if not (isinstance(image, str) and isinstance(parent, str) and isinstance(dest, str)):
            return None
        if not isinstance(files, list):
            return None
        try:
            manifest = FileManifest.from_json({"files": files})
        except (TypeError, ValueError):
            return None
        return cls(image, parent, dest, manifest)


@dataclass(frozen=True, slots=True)
class FilesChanges:
    """One layer on ``base``: remove ``remove`` (each absent or a path to delete), then copy ``copy``.

    ``copy`` holds the changed and added files (served as their own ``local://`` source);
    ``remove`` the deleted files, the directories left empty, and every changed path that
    existed before (so a change of kind never copies onto a directory or through a symlink).
    """

    base: FilesBase
    copy: FileManifest
    remove: tuple[str, ...]
    deleted: int

    @property
    def count(self) -> int:
        """Changed, added and deleted files."""
        return len(self.copy) + self.deleted

    def phrase(self) -> str:
        """``3 changed files copied onto the files as last built whole (50,000 files)``."""
        n = self.count
        return (
            f"{n} changed file{'s' if n != 1 else ''} copied onto the files as last built whole "
            f"({len(self.base.manifest):,} files)"
        )


def base_image(app: str, parent: str, dest: str, manifest_digest: str) -> str:
    """The fully qualified image reference of the base for these inputs (same inputs → same name)."""
    text = "\n".join(("files-base/1", app, parent, dest, manifest_digest))
    return f"docker.io/library/{BASE_REPOSITORY}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:40]}"


def _dirs(paths: set[str]) -> set[str]:
    out: set[str] = set()
    for path in paths:
        parent = path.rpartition("/")[0]
        while parent and parent not in out:
            out.add(parent)
            parent = parent.rpartition("/")[0]
    return out


def changes_onto(
    base: FilesBase,
    manifest: FileManifest,
    parent: str,
    dest: str,
    *,
    max_changed: int = MAX_CHANGED,
    max_share: float = MAX_SHARE,
) -> FilesChanges | None:
    """The layer turning ``base``'s files into ``manifest``'s; None when the files must be copied whole.

    Whole when the base was built on other dependencies (``parent``) or to another ``dest``, when
    nothing changed (the whole copy is then the cached build), or when the change is too large.
    """
    if base.parent != parent or base.dest != dest or base.manifest.digest == manifest.digest:
        return None
    old, new = set(base.manifest.entries), set(manifest.entries)
    added = new - old
    limit = min(max_changed, max(16, int(len(manifest) * max_share)))
    if len(added) > limit:
        return None
    old_paths = {e.path for e in base.manifest.entries}
    new_paths = {e.path for e in manifest.entries}
    deleted = old_paths - new_paths
    if len(added) + len(deleted) > limit:
        return None
    gone_dirs = _dirs(old_paths) - _dirs(new_paths)
    # A vanished directory is removed whole (topmost only); deleted files below it go with it.
    top_gone = {d for d in gone_dirs if d.rpartition("/")[0] not in gone_dirs}
    remove = {p for p in deleted if not _under(p, gone_dirs)} | top_gone
    remove |= {e.path for e in added if e.path in old_paths}  # changed paths: removed, then copied
    copy = FileManifest.of(sorted(added))
    return FilesChanges(base, copy, tuple(sorted(remove)), len(deleted))


def _under(path: str, dirs: set[str]) -> bool:
    parent = path.rpartition("/")[0]
    while parent:
        if parent in dirs:
            return True
        parent = parent.rpartition("/")[0]
    return False
