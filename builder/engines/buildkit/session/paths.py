"""Relative-path rules shared by the sender and the receiver, and safe opening under a root.

A transfer path is ``/``-separated, relative, clean (no empty, ``.`` or ``..``
components) and valid UTF-8.  Files are opened one component at a time with
``O_NOFOLLOW`` relative to the root's descriptor, so a symlink anywhere on the
way (including one swapped in after planning) can never lead outside the root.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator

from builder.engines.buildkit.session.errors import UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a clean relative transfer path, else raise UnsafePathError."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise UnsafePathError(f"invalid transfer path {path!r}: must be a non-empty relative path")
    # Whole-string tests (C speed; a plan sends every path through here): an empty, "." or ".."
    # component shows as "//", "/./", "/../" once the path is wrapped in slashes.
    wrapped = f"/{path}/"
    if "//" in wrapped or "/./" in wrapped or "/../" in wrapped:
        raise UnsafePathError(f"invalid transfer path {path!r}: empty, '.' or '..' component")
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnsafePathError(f"invalid transfer path {path!r}: file names must be valid UTF-8") from exc
    return path


def check_relpaths(paths: list[str]) -> None:
    """:func:`check_relpath` for many paths, with the common all-clean case in a few C-level scans.

    Every path is wrapped in ``/`` and joined with newlines, so each of its
    components sits between two slashes: one search per bad pattern covers
    them all (a file name with a newline can only cause a false alarm, which
    the per-path check below then settles).  Raises UnsafePathError naming the
    first bad path.
    """
    blob = "/" + "/\n/".join(paths) + "/"
    suspicious = "//" in blob or "/./" in blob or "/../" in blob or "\\" in blob or "\x00" in blob
    if suspicious or not blob.isascii():
        for path in paths:
            check_relpath(path)


def sort_key(path: str) -> str:
    """Depth-first, byte-wise order: a directory comes right before its children.

    The order is that of the tuple of each component's UTF-8 bytes.  Code point
    order is UTF-8 byte order, and a component ending must sort before any
    character, so the key is the path with ``/`` replaced by NUL (which no
    transfer path contains): one C-level call instead of a tuple of encodes.
    """
    return path.replace("/", "\x00")


def parent_of(path: str) -> str:
    """The parent transfer path ('' for an entry at the root)."""
    return path.rpartition("/")[0]


@contextlib.contextmanager
def open_dir_fd(root_fd: int, relpath: str) -> Iterator[int]:
    """Open the directory ``relpath`` ('' = the root) under ``root_fd`` without following symlinks."""
    fd = os.dup(root_fd)
    try:
        for part in relpath.split("/") if relpath else ():
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise UnsafePathError(f"{relpath!r}: {part!r} is not a real directory inside the root") from exc
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def open_regular_file(root_fd: int, relpath: str) -> int:
    """Open a regular file under ``root_fd`` for reading; no component may be a symlink."""
    check_relpath(relpath)
    parent, _, name = relpath.rpartition("/")
    with open_dir_fd(root_fd, parent) as dir_fd:
        return _open_regular_in(dir_fd, name, relpath)


class DirCache:
    """Directory descriptors under ``root_fd``, each opened once (component by component, no symlinks).

    For a sender serving many files: one ``openat`` per requested file instead
    of one per path component.  A directory swapped for a symlink after it was
    opened changes nothing: the descriptor is the real directory inside the
    root.  ``close()`` closes what it opened (never ``root_fd``).
    """

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._fds: dict[str, int] = {}

    def dir_fd(self, relpath: str) -> int:
        """The descriptor of directory ``relpath`` ('' = the root)."""
        if not relpath:
            return self._root
        fd = self._fds.get(relpath)
        if fd is None:
            parent, _, name = relpath.rpartition("/")
            base = self.dir_fd(parent)
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=base)
            except OSError as exc:
                raise UnsafePathError(f"{relpath!r}: {name!r} is not a real directory inside the root") from exc
            self._fds[relpath] = fd
        return fd

    def open_regular_file(self, relpath: str) -> int:
        """:func:`open_regular_file` through the cached directories."""
        check_relpath(relpath)
        parent, _, name = relpath.rpartition("/")
        return _open_regular_in(self.dir_fd(parent), name, relpath)

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


def _open_regular_in(dir_fd: int, name: str, relpath: str) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        raise UnsafePathError(
            f"{relpath!r} cannot be opened as a regular file inside the root: {exc.strerror}"
        ) from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePathError(f"{relpath!r} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def lstat_under(root_fd: int, relpath: str) -> os.stat_result | None:
    """lstat ``relpath`` under ``root_fd`` without following symlinks on the way; None if absent/unsafe."""
    parent, _, name = relpath.rpartition("/")
    try:
        with open_dir_fd(root_fd, parent) as dir_fd:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (OSError, UnsafePathError):
        return None
