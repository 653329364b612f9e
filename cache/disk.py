"""diskcache with nothing from disk trusted: no pickle, no paths outside the store, no symlinks.

diskcache's own ``Disk`` unpickles any row stored in pickle mode (and any
non-raw key) and opens or deletes whatever its ``filename`` column names,
following symlinks; its ``Settings`` table may set any attribute of the cache
or the disk.  Whoever can write a store could therefore run code as, or read
and delete files of, every user of it.  Here:

* keys are ``str`` only and values ``bytes`` or ``int`` only: nothing is ever
  pickled, and a row in pickle (or text) mode, or a non-raw key, reads as
  missing and is never decoded;
* a ``filename`` must have exactly the shape diskcache gives new files
  (``ab/cd/<28 hex>.val``); it is opened one component at a time from the
  store directory with ``O_NOFOLLOW``, so no row reaches outside the store,
  and anything else reads as missing and is never deleted;
* value files are created 0600 in 0700 directories (0660/0770 in a shared
  cache, see :mod:`cache.trust`);
* settings other than diskcache's documented ones are ignored, and ours are
  always passed explicitly, so a planted ``Settings`` table changes nothing.

Example::

    >>> import tempfile
    >>> db = open_safe_cache(tempfile.mkdtemp() + "/v1", timeout=1.0, settings={})
    >>> db.set("k", b"v"), db.get("k")
    (True, b'v')
    >>> db.close()
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from typing import Any

import diskcache  # type: ignore[import-untyped]  # no stubs published
from diskcache.core import DEFAULT_SETTINGS, ENOVAL, METADATA, MODE_BINARY, MODE_RAW, UNKNOWN  # type: ignore[import-untyped]

#: The only file names a store holds: what ``diskcache.Disk.filename`` makes.
_FILENAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val")
_KNOWN_SETTINGS = frozenset(DEFAULT_SETTINGS) | frozenset(METADATA)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeEntry(OSError):
    """A row this store never writes (pickled, text, or a file outside the store): read as missing."""


class SafeDisk(diskcache.Disk):  # type: ignore[misc]  # untyped base
    """A ``Disk`` for ``str`` keys and ``bytes``/``int`` values that never unpickles or leaves the store."""

    def __init__(self, directory: str, min_file_size: int = 2**15, pickle_protocol: int = 0, **_planted: Any) -> None:
        # Unknown ``disk_*`` settings come from the store's own table: accepted here and ignored.
        super().__init__(directory, min_file_size=min_file_size, pickle_protocol=pickle_protocol)
        self.store_dir = directory
        self.file_mode, self.dir_mode = 0o600, 0o700

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"cache keys are strings, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> str | None:
        # A non-raw key would be a pickle: it is no key of ours (listings skip non-strings).
        return key if raw and type(key) is str else None

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, str | None, Any]:
        if read or type(value) not in (bytes, int):
            raise TypeError(f"the cache stores bytes and integers only, not {type(value).__name__}")
        if type(value) is int or len(value) < self.min_file_size:
            return 0, MODE_RAW, None, value if type(value) is int else sqlite3.Binary(value)
        filename, _full = self.filename(key, value)
        fd = self._open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL, create=True)
        with open(fd, "wb") as handle:
            handle.write(value)
        return len(value), MODE_BINARY, filename, None

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == MODE_RAW:
            return bytes(value) if isinstance(value, memoryview | bytearray) else value
        if mode != MODE_BINARY or not isinstance(filename, str):
            raise UnsafeEntry(f"a cache row in mode {mode} (this cache never stores one; not read)")
        fd = self._open(filename, os.O_RDONLY)
        handle = open(fd, "rb")
        if read:
            return handle
        with handle:
            return handle.read()

    def remove(self, file_path: str) -> None:
        if not isinstance(file_path, str) or not _FILENAME.fullmatch(file_path):
            return  # a planted row names no file we may delete
        top, sub, name = file_path.split("/")
        with contextlib.suppress(OSError), _opened_dir(self.store_dir) as base:
            with _opened_dir(top, base) as first:
                with _opened_dir(sub, first) as second:
                    os.unlink(name, dir_fd=second)
                with contextlib.suppress(OSError):
                    os.rmdir(sub, dir_fd=first)
            with contextlib.suppress(OSError):
                os.rmdir(top, dir_fd=base)

    def _open(self, filename: str, flags: int, *, create: bool = False) -> int:
        if not _FILENAME.fullmatch(filename):
            raise UnsafeEntry(f"a cache row names the file {filename!r}, outside the store (not read)")
        top, sub, name = filename.split("/")
        with _opened_dir(self.store_dir) as base:
            with _opened_dir(top, base, create=create, mode=self.dir_mode) as first:
                with _opened_dir(sub, first, create=create, mode=self.dir_mode) as second:
                    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, self.file_mode, dir_fd=second)


@contextlib.contextmanager
def _opened_dir(name: str, parent: int | None = None, *, create: bool = False, mode: int = 0o700):  # type: ignore[no-untyped-def]
    if create and parent is not None:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=parent)
    fd = os.open(name, _DIR_FLAGS if parent is not None else _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=parent)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def _dir_of(path: str):  # type: ignore[no-untyped-def]
    """The parent directory of ``path``, opened (for a check-free open of the last component)."""
    with _opened_dir(os.path.dirname(os.path.abspath(path))) as fd:
        yield fd


class SafeCache(diskcache.Cache):  # type: ignore[misc]  # untyped base
    """``diskcache.Cache`` that applies only diskcache's documented settings.

    ``reset`` is what the constructor calls for every row of the store's
    ``Settings`` table; a planted row could otherwise run any ``PRAGMA`` or set
    any attribute (``disk__directory`` moves every file read elsewhere).
    """

    def reset(self, key: str, value: Any = ENOVAL, update: bool = True) -> Any:
        if key not in _KNOWN_SETTINGS:
            return value
        return super().reset(key, value, update)


def open_safe_cache(directory: str, *, timeout: float, settings: dict[str, Any], shared: bool = False) -> SafeCache:
    """Open the diskcache store in ``directory`` with every setting pinned (created 0700, its database 0600).

    The database file is made before SQLite opens it, so its journal files get the same mode; a
    database, journal or store directory that is a symlink is refused (``UnsafeEntry``).
    """
    file_mode, dir_mode = (0o660, 0o770) if shared else (0o600, 0o700)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, dir_mode)
    for path in (directory, *(os.path.join(directory, name) for name in ("cache.db", "cache.db-wal", "cache.db-shm"))):
        if os.path.islink(path):
            raise UnsafeEntry(f"{path} is a symlink")
    with _dir_of(directory) as parent, _opened_dir(os.path.basename(directory), parent) as fd:
        with contextlib.suppress(FileExistsError):
            os.close(
                os.open(
                    "cache.db",
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    file_mode,
                    dir_fd=fd,
                )
            )
    pinned = {**DEFAULT_SETTINGS, "disk_pickle_protocol": 0, **settings}
    db = SafeCache(directory, timeout=timeout, disk=SafeDisk, **pinned)
    db.disk.file_mode, db.disk.dir_mode = file_mode, dir_mode
    return db


__all__ = ["SafeCache", "SafeDisk", "UnsafeEntry", "open_safe_cache"]
