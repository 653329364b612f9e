"""A thin, multi-process-safe wrapper over one diskcache directory.

Layout of a cache directory ``ROOT``::

    ROOT/v1/               the diskcache store for store layout version 1
    ROOT/v1.damaged-*/     a store moved aside after it was found damaged
    ROOT/open.lock         flock taken while opening/repairing
    ROOT/repair-needed     left by a run that hit a damaged database

Keys are strings with a namespace prefix (``step/``, ``plan/``, ``stat/``,
``res/``, ``meta/``); values are bytes (JSON or compact blobs), never
pickles.  diskcache's own eviction is off: pruning is ours (``cache.prune``).

Trust: the root must be the user's own (``cache.trust``; ``BUILDER_CACHE_SHARED=1``
for a cache shared on purpose); it is created 0700 with 0600 files, nothing in it
is opened through a symlink, and the store never unpickles or leaves its
directory whatever its database says (``cache.disk``).

Robustness: SQLite (WAL) makes every write atomic across processes and safe
against a SIGKILL mid-write.  Opening takes an ``flock`` so that at most one
process repairs at a time.  A database that is not a database any more is
moved aside and a fresh one started (with a warning).  Any storage error
*after* opening puts the store in degraded mode: reads miss, writes are
dropped, one warning is kept in ``warnings``, and a marker file makes the next
open repair the store.  Nothing but ``CacheUnavailable`` ever escapes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import diskcache  # type: ignore[import-untyped]  # no stubs published

from cache.disk import UnsafeEntry, open_safe_cache
from cache.errors import CacheUnavailable, RecordError
from cache.records import loads
from cache.trust import check_root, shared_opt_in

STORE_VERSION = 1
"""Version of the key layout and value formats; a new version uses a new directory."""

STORE_DIRNAME = f"v{STORE_VERSION}"
REPAIR_MARKER = "repair-needed"
LOCK_NAME = "open.lock"
DEFAULT_TIMEOUT_S = 30.0
_SCHEMA_KEY = "meta/schema"
_DAMAGED_INFIX = ".damaged-"

# Errors that mean "the storage failed", as opposed to bugs in our code.
_STORAGE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, diskcache.Timeout, OSError)

T = TypeVar("T")

_SETTINGS: dict[str, Any] = {
    "eviction_policy": "none",  # we prune ourselves, by last use
    "statistics": 0,
    # No mmap: a store file truncated under us must fail with an error, not SIGBUS.
    "sqlite_mmap_size": 0,
}


class Txn:
    """Raw (unguarded) operations used inside ``Store.transact``."""

    def __init__(self, db: diskcache.Cache) -> None:
        self._db = db

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None."""
        value = self._db.get(key, default=None)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes) -> None:
        """Store bytes under key."""
        self._db.set(key, value)

    def delete(self, key: str) -> None:
        """Remove key if present."""
        self._db.delete(key)


class Store:
    """One opened cache directory: guarded get/set/delete/transact on bytes."""

    def __init__(self, root: Path, db: diskcache.Cache, *, clock: Callable[[], float], warnings: list[str]) -> None:
        self.root = root
        self.clock = clock
        self._db = db
        self._warnings = warnings
        self._degraded = False

    @property
    def directory(self) -> Path:
        """The diskcache directory inside ``root``."""
        return Path(self._db.directory)

    @property
    def degraded(self) -> bool:
        """True once a storage error made this store stop reading and writing."""
        return self._degraded

    @property
    def warnings(self) -> tuple[str, ...]:
        """Human-readable warnings (repairs, degradation), at most one per event."""
        return tuple(self._warnings)

    # -- guarded operations -------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (also when degraded)."""
        return self._guard(f"reading {key}", None, lambda: Txn(self._db).get(key))

    def contains(self, key: str) -> bool:
        """True when ``key`` is stored."""
        return self._guard(f"reading {key}", False, lambda: key in self._db)

    def set(self, key: str, value: bytes) -> bool:
        """Store ``value``; False when the write was dropped."""
        return self._guard(f"writing {key}", False, lambda: bool(self._db.set(key, value)))

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        return self._guard(f"deleting {key}", False, lambda: bool(self._db.delete(key)))

    def keys(self, prefix: str) -> list[str]:
        """Every stored key starting with ``prefix``, sorted."""

        def scan() -> list[str]:
            return sorted(k for k in self._db.iterkeys() if isinstance(k, str) and k.startswith(prefix))

        return self._guard(f"listing {prefix}*", [], scan)

    def transact(self, what: str, fallback: T, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in one exclusive transaction; ``fallback`` if the store failed."""

        def run() -> T:
            with self._db.transact(retry=False):
                return fn(Txn(self._db))

        return self._guard(what, fallback, run)

    def get_json(self, key: str) -> Any | None:
        """The parsed JSON under ``key``; None when missing or not JSON (it is dropped)."""
        raw = self.get(key)
        if raw is None:
            return None
        try:
            return loads(raw)
        except RecordError:
            self.delete(key)
            return None

    def clear(self) -> int:
        """Remove every entry; the number removed."""

        def run() -> int:
            count = sum(1 for k in self._db.iterkeys() if not (isinstance(k, str) and k.startswith("meta/")))
            self._db.clear(retry=True)
            self._db.set(_SCHEMA_KEY, STORE_VERSION)
            return count

        return self._guard("clearing the cache", 0, run)

    def disk_bytes(self) -> int:
        """Bytes the store directory occupies on disk."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.directory):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
        return total

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with contextlib.suppress(*_STORAGE_ERRORS):
            self._db.close()

    # -- degradation --------------------------------------------------------

    def _guard(self, what: str, fallback: T, fn: Callable[[], T]) -> T:
        if self._degraded:
            return fallback
        try:
            return fn()
        except _STORAGE_ERRORS as exc:
            self._degrade(what, exc)
            return fallback

    def _degrade(self, what: str, exc: BaseException) -> None:
        self._degraded = True
        damaged = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
        if damaged:
            with contextlib.suppress(OSError):
                _write_private(self.root / REPAIR_MARKER, f"{what}: {exc}\n".encode())
        reason = "the database is damaged; the next run repairs it" if damaged else "the store failed"
        self._warnings.append(
            f"cache {self.root}: {reason} ({type(exc).__name__}: {exc} while {what}); "
            "continuing without the cache for this run"
        )


def open_store(
    root: Path,
    *,
    clock: Callable[[], float] = time.time,
    timeout: float = DEFAULT_TIMEOUT_S,
    shared: bool | None = None,
) -> Store:
    """Open (creating or repairing) the store under ``root``.

    Raises ``CacheUnavailable`` with the reason and a fix when the directory
    cannot be created, written or repaired, and ``CacheRefused`` when another
    user could change it (``shared``, default ``$BUILDER_CACHE_SHARED``, allows that).
    """
    shared = shared_opt_in() if shared is None else shared
    _ensure_directory(root, shared)
    warnings: list[str] = []
    with _open_lock(root):
        marker = root / REPAIR_MARKER
        if marker.exists():
            moved = _move_aside(root)
            warnings.append(
                f"cache {root}: an earlier run found the database damaged; moved it to {moved} and started empty"
            )
            _remove(marker)
        try:
            db = _connect(root / STORE_DIRNAME, timeout, shared)
        except _Damaged as exc:
            moved = _move_aside(root)
            warnings.append(f"cache {root}: the database was damaged ({exc}); moved it to {moved} and started empty")
            try:
                db = _connect(root / STORE_DIRNAME, timeout, shared)
            except _Damaged as again:
                raise _unavailable(root, "starting a fresh database", again) from again
    return Store(root, db, clock=clock, warnings=warnings)


class _Damaged(Exception):
    """The store exists but is not a usable database."""


def _unavailable(root: Path, doing: str, exc: BaseException) -> CacheUnavailable:
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return CacheUnavailable(
        f"cache directory {root} is unusable: {doing} failed: {detail}; "
        "point --cache-dir or BUILDER_CACHE_DIR at a writable directory"
    )


def _ensure_directory(root: Path, shared: bool) -> None:
    check_root(root, shared=shared)
    try:
        mode = 0o770 if shared else 0o700
        try:
            root.mkdir(mode=mode)
        except FileExistsError:
            pass
        except FileNotFoundError:
            root.parent.mkdir(parents=True, exist_ok=True)
            root.mkdir(mode=mode, exist_ok=True)
        probe = root / f".probe-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            probe.unlink()  # a leftover (or a planted symlink): removed, never written through
        _write_private(probe, b"")
        probe.unlink()
    except OSError as exc:
        raise _unavailable(root, "creating and writing the directory", exc) from exc


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) without following a symlink there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open_lock(root: Path) -> Iterator[None]:
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _unavailable(root, "creating the lock file", exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _connect(directory: Path, timeout: float, shared: bool) -> diskcache.Cache:
    root = directory.parent
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise _Damaged(f"{directory} is not a directory")
    db: diskcache.Cache | None = None
    try:
        db = open_safe_cache(str(directory), timeout=timeout, settings=_SETTINGS, shared=shared)
        _check_schema(db)
    except UnsafeEntry as exc:
        _close_quietly(db)
        raise _Damaged(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        _close_quietly(db)
        if "not a database" in str(exc) or "malformed" in str(exc):
            raise _Damaged(str(exc)) from exc
        raise _unavailable(root, "opening the database", exc) from exc
    except sqlite3.DatabaseError as exc:
        _close_quietly(db)
        raise _Damaged(str(exc)) from exc
    except (OSError, diskcache.Timeout) as exc:
        _close_quietly(db)
        raise _unavailable(root, "opening the database", exc) from exc
    return db


def _check_schema(db: diskcache.Cache) -> None:
    version = db.get(_SCHEMA_KEY, default=None)
    if version == STORE_VERSION:
        return
    if version is not None:
        # Same directory name but another layout: it is only a cache, start over.
        db.clear(retry=True)
    db.set(_SCHEMA_KEY, STORE_VERSION)


def _close_quietly(db: diskcache.Cache | None) -> None:
    if db is not None:
        with contextlib.suppress(*_STORAGE_ERRORS):
            db.close()


def _move_aside(root: Path) -> Path:
    """Rename the store directory out of the way; keep only the latest damaged copy."""
    current = root / STORE_DIRNAME
    target = root / f"{STORE_DIRNAME}{_DAMAGED_INFIX}{int(time.time())}-{os.getpid()}"
    for old in root.glob(f"{STORE_DIRNAME}{_DAMAGED_INFIX}*"):
        _remove(old)
    if not current.exists() and not current.is_symlink():
        return target
    try:
        current.rename(target)
    except OSError as exc:
        raise _unavailable(root, "moving the damaged database aside", exc) from exc
    return target


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def remove_other_stores(root: Path) -> int:
    """Delete other store versions and damaged copies under ``root``; how many."""
    removed = 0
    for entry in root.glob("v*"):
        if entry.name != STORE_DIRNAME and entry.name[1:].split(".", 1)[0].isdigit():
            _remove(entry)
            removed += 1
    return removed
