"""What a FileSync sender serves: manifest entries rooted at a project directory.

The plan's ``FileManifest`` is the source of truth in real builds; this module
only needs each entry to look like :class:`ManifestEntry` (relative path,
kind, permission bits, size, mtime and symlink target).  :func:`walk_directory`
builds such a list from a directory, for tests and ad-hoc transfers.

    >>> entries = walk_directory("/path/to/project")        # doctest: +SKIP
    >>> [e.relpath for e in entries][:2]                     # doctest: +SKIP
    ['app', 'app/main.py']
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from builder.engines.buildkit.session.errors import TransferError, UnsafePathError
from builder.engines.buildkit.session.paths import check_relpath, check_relpaths, sort_key


class ManifestEntry(Protocol):
    """One selected project entry, as the FileSync sender needs it."""

    @property
    def relpath(self) -> str:
        """``/``-separated path relative to the project root."""

    @property
    def is_dir(self) -> bool:
        """True for a directory."""

    @property
    def is_symlink(self) -> bool:
        """True for a symbolic link (sent as a link, never followed)."""

    @property
    def mode(self) -> int:
        """POSIX permission bits (``st_mode`` is accepted; only ``S_IMODE`` is used)."""

    @property
    def size(self) -> int:
        """Size in bytes of a regular file (ignored for directories and links)."""

    @property
    def mtime_ns(self) -> int:
        """Modification time in Unix nanoseconds, as planned (0 = unknown)."""

    @property
    def link_target(self) -> str:
        """The symlink target ('' unless ``is_symlink``)."""


class FileEntry(NamedTuple):
    """A plain :class:`ManifestEntry` value (a named tuple: a build makes one per project file)."""

    relpath: str
    is_dir: bool = False
    is_symlink: bool = False
    mode: int = 0o644
    size: int = 0
    mtime_ns: int = 0
    link_target: str = ""


_new_entry = tuple.__new__
_S_IFMT = 0o170000


def entry_from_stat(relpath: str, st: os.stat_result, link_target: str = "") -> FileEntry:
    """A :class:`FileEntry` for ``relpath`` from its ``lstat`` result."""
    mode = st.st_mode
    kind = mode & _S_IFMT
    if kind == stat.S_IFREG:  # the common case, without the keyword-argument constructor
        return _new_entry(FileEntry, (relpath, False, False, mode & 0o7777, st.st_size, st.st_mtime_ns, ""))
    is_link = kind == stat.S_IFLNK
    return FileEntry(
        relpath, kind == stat.S_IFDIR, is_link, mode & 0o7777, 0, st.st_mtime_ns, link_target if is_link else ""
    )


def walk_directory(root: str | os.PathLike[str]) -> list[FileEntry]:
    """Every directory, regular file and symlink under ``root`` (not following links), sorted.

    Other kinds (sockets, FIFOs, devices) are skipped: a project never ships them.
    """
    base = Path(root)
    out: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        rel_dir = Path(dirpath).relative_to(base).as_posix()
        for name in (*dirnames, *filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                continue
            target = os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""
            out.append(entry_from_stat(check_relpath(rel), st, target))
    out.sort(key=lambda e: sort_key(e.relpath))
    return out


def validate_entries(entries: Iterable[ManifestEntry]) -> dict[str, ManifestEntry]:
    """Index entries by path, rejecting unsafe paths, duplicates and non-directory parents."""
    listed = list(entries)
    by_path: dict[str, ManifestEntry] = {entry.relpath: entry for entry in listed}
    check_relpaths(list(by_path))
    if len(by_path) != len(listed):
        seen: set[str] = set()
        for entry in listed:
            if entry.relpath in seen:
                raise TransferError(f"manifest lists {entry.relpath!r} twice")
            seen.add(entry.relpath)
    # Check each distinct parent directory once (thousands of files share a few directories).
    parents: dict[str, str] = {}  # parent -> one path below it, for the message
    for path in by_path:
        parent = path.rpartition("/")[0]
        if parent and parent not in parents:
            parents[parent] = path
    checked: set[str] = set()
    for parent, below in parents.items():
        while parent and parent not in checked:
            checked.add(parent)
            above = by_path.get(parent)
            if above is not None and not above.is_dir:
                raise UnsafePathError(f"manifest entry {below!r} lies under {parent!r}, which is not a directory")
            parent = parent.rpartition("/")[0]
    return by_path


# --- include/exclude patterns sent by the daemon (dockerignore-like syntax) ---------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile one dockerignore-style glob: ``*``/``?`` stay within a component, ``**`` spans them."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                parts.append("(?:.*/)?")
                i += 1
            else:
                parts.append(".*")
            continue
        if c == "*":
            parts.append("[^/]*")
        elif c == "?":
            parts.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                parts.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                parts.append("[^" + body[1:] + "]" if body.startswith("^") else "[" + body + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            parts.append(re.escape(pattern[i]))
        else:
            parts.append(re.escape(c))
        i += 1
    return re.compile("".join(parts) + r"\Z")


def _clean_pattern(pattern: str) -> str:
    cleaned = os.path.normpath(pattern.strip()).replace(os.sep, "/").lstrip("/")
    return "" if cleaned == "." else cleaned


@dataclass(frozen=True, slots=True)
class PatternSelector:
    """The include/exclude patterns of one DiffCopy call.

    A path is included when it or one of its parent directories matches an
    include pattern (no include patterns = everything).  Exclude patterns are
    applied in order, the last match wins, and ``!pattern`` re-includes.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def _matches(self, regex: re.Pattern[str], path: str) -> bool:
        prefix = path
        while prefix:
            if regex.match(prefix):
                return True
            prefix = prefix.rpartition("/")[0]
        return False

    def selects(self, path: str) -> bool:
        """True when ``path`` passes the include and exclude patterns."""
        includes = [_clean_pattern(p) for p in self.include if _clean_pattern(p)]
        if includes and not any(self._matches(_glob_regex(p), path) for p in includes):
            return False
        excluded = False
        for raw in self.exclude:
            negate = raw.strip().startswith("!")
            pat = _clean_pattern(raw.strip()[1:] if negate else raw)
            if pat and self._matches(_glob_regex(pat), path):
                excluded = not negate
        return not excluded

    def select(self, paths: Sequence[str]) -> list[str]:
        """The selected subset of ``paths``, in input order."""
        if not self.include and not self.exclude:
            return list(paths)
        return [p for p in paths if self.selects(p)]
