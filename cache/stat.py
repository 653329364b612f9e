"""StatCache: (path, size, mtime_ns, inode) → content digest.

Implements ``builder.plan.protocols.StatSource`` structurally.  Two ways in:

* **Bulk, per project root (the fast path for planning).**  One blob per
  root holds every file of the tree; loading it is one read and one JSON
  parse (about 0.1-0.2 s for 100,000 files), lookups are plain dict hits::

      snap = stats.load_snapshot(root)            # {relpath: (size, mtime_ns, inode, digest)}
      e = snap.get(rel)
      digest = e[3] if e is not None and e[0] == size and e[1] == mtime_ns and e[2] == inode else None
      ...
      stats.save_snapshot(root, current)          # one write, replaces the tree's entries;
                                                  # skipped when equal to what was loaded

  ``for_root(root)`` wraps the same blob as a ``StatSource`` over paths
  relative to ``root`` (``put_digests`` merges and writes the blob at once).

* **Per path (``get_digest``/``put_digests`` on the StatCache itself).**
  Entries are sharded by directory (one small blob per directory, loaded
  once per process), so any path form works.  This store is separate from
  the per-root snapshots.

A stat entry only matches when size, mtime_ns and inode all match, so a
stale entry is a miss, never a wrong digest.  Corrupt or foreign blobs read
as empty.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from cache.errors import RecordError
from cache.records import dumps, loads
from cache.store import Store, Txn

StatEntry = tuple[int, int, int, str]
"""(size, mtime_ns, inode, digest)."""

Snapshot = dict[str, StatEntry]
"""Relative path (or base name, in a directory shard) → StatEntry."""

ROOT_PREFIX = "statroot/"
META_PREFIX = "statmeta/"
DIR_PREFIX = "statdir/"
SNAPSHOT_FORMAT = "stat-snapshot/1"
_TOUCH_EVERY_S = 3600.0  # refresh a snapshot's last-use time at most hourly (a read should rarely write)


def normalise_root(root: str | os.PathLike[str]) -> str:
    """The absolute form of a project root used in keys."""
    return os.path.abspath(os.fspath(root))


def encode_snapshot(entries: Mapping[str, StatEntry], saved_at: float) -> bytes:
    """Columnar JSON bytes of ``entries`` (sorted by path, so equal sets give equal bytes)."""
    paths = sorted(entries)
    rows = [entries[p] for p in paths]
    return dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "saved_at": saved_at,
            "paths": paths,
            "sizes": [r[0] for r in rows],
            "mtimes": [r[1] for r in rows],
            "inodes": [r[2] for r in rows],
            "digests": [r[3] for r in rows],
        }
    )


def decode_snapshot(raw: bytes | None) -> tuple[Snapshot, float]:
    """Entries and save time from ``encode_snapshot`` bytes; empty when missing or malformed."""
    if raw is None:
        return {}, 0.0
    try:
        data = loads(raw)
    except RecordError:
        return {}, 0.0
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        return {}, 0.0
    columns = [data.get(name) for name in ("paths", "sizes", "mtimes", "inodes", "digests")]
    if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) != 1:  # type: ignore[arg-type]
        return {}, 0.0
    paths, sizes, mtimes, inodes, digests = columns
    if not all(type(p) is str for p in paths) or not all(type(d) is str for d in digests):  # type: ignore[union-attr]
        return {}, 0.0
    saved_at = data.get("saved_at")
    when = float(saved_at) if isinstance(saved_at, int | float) and not isinstance(saved_at, bool) else 0.0
    return dict(zip(paths, zip(sizes, mtimes, inodes, digests, strict=True), strict=True)), when  # type: ignore[arg-type]


def _match(entry: StatEntry | None, size: int, mtime_ns: int, inode: int) -> str | None:
    if entry is not None and entry[0] == size and entry[1] == mtime_ns and entry[2] == inode:
        return entry[3]
    return None


class StatCache:
    """Remembered content digests of files (see the module docstring for the two ways in)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._shards: dict[str, Snapshot] = {}
        self._saved: dict[str, Snapshot] = {}

    # -- StatSource, sharded by directory -----------------------------------

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered digest of ``path`` when its stat tuple is unchanged, else None."""
        directory, name = os.path.split(path)
        shard = self._shards.get(directory)
        if shard is None:
            shard = self._shards[directory] = decode_snapshot(self._store.get(DIR_PREFIX + directory))[0]
        return _match(shard.get(name), size, mtime_ns, inode)

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        """Remember many (path, size, mtime_ns, inode) → digest entries in one transaction."""
        grouped: dict[str, Snapshot] = defaultdict(dict)
        for (path, size, mtime_ns, inode), digest in entries.items():
            directory, name = os.path.split(path)
            grouped[directory][name] = (size, mtime_ns, inode, digest)
        if not grouped:
            return
        now = self._store.clock()

        def merge(txn: Txn) -> None:
            for directory, new in sorted(grouped.items()):
                shard = decode_snapshot(txn.get(DIR_PREFIX + directory))[0]
                shard.update(new)
                txn.set(DIR_PREFIX + directory, encode_snapshot(shard, now))
                self._shards[directory] = shard

        self._store.transact("remembering file digests", None, merge)

    # -- bulk snapshots per project root ------------------------------------

    def load_snapshot(self, root: str | os.PathLike[str]) -> Snapshot:
        """Every remembered entry under ``root``: {relative path: (size, mtime_ns, inode, digest)}.

        One read; the result is the caller's to keep or mutate.
        """
        key = normalise_root(root)
        snapshot, _ = decode_snapshot(self._store.get(ROOT_PREFIX + key))
        self._saved[key] = dict(snapshot)
        self._touch(key)
        return snapshot

    def save_snapshot(self, root: str | os.PathLike[str], snapshot: Mapping[str, StatEntry]) -> None:
        """Replace ``root``'s entries with ``snapshot`` (so deleted files drop out).

        Writes nothing when ``snapshot`` equals what ``load_snapshot`` or the
        last ``save_snapshot`` of this object saw.
        """
        key = normalise_root(root)
        if self._saved.get(key) == snapshot:
            return
        current = dict(snapshot)
        now = self._store.clock()
        blob = encode_snapshot(current, now)
        meta = dumps({"used_at": now, "saved_at": now, "files": len(current), "size": len(blob)})

        def write(txn: Txn) -> None:
            txn.set(ROOT_PREFIX + key, blob)
            txn.set(META_PREFIX + key, meta)

        self._store.transact(f"saving file digests of {key}", None, write)
        self._saved[key] = current

    def for_root(self, root: str | os.PathLike[str]) -> RootStatSource:
        """A StatSource over paths relative to ``root``, backed by its snapshot."""
        return RootStatSource(self, normalise_root(root))

    def roots(self) -> list[str]:
        """Project roots that have a snapshot, sorted."""
        return [k[len(ROOT_PREFIX) :] for k in self._store.keys(ROOT_PREFIX)]

    def meta(self, root: str | os.PathLike[str]) -> dict[str, Any]:
        """Bookkeeping of ``root``'s snapshot: used_at, saved_at, files, size (empty if none)."""
        data = self._store.get_json(META_PREFIX + normalise_root(root))
        return data if isinstance(data, dict) else {}

    def drop(self, root: str | os.PathLike[str]) -> None:
        """Forget ``root``'s snapshot."""
        key = normalise_root(root)

        def remove(txn: Txn) -> None:
            txn.delete(ROOT_PREFIX + key)
            txn.delete(META_PREFIX + key)

        self._store.transact(f"dropping file digests of {key}", None, remove)
        self._saved.pop(key, None)

    def _touch(self, key: str) -> None:
        meta = self.meta(key)
        now = self._store.clock()
        used = meta.get("used_at")
        if not meta or not isinstance(used, int | float) or now - used >= _TOUCH_EVERY_S:
            meta["used_at"] = now
            if self._store.contains(ROOT_PREFIX + key):
                self._store.set(META_PREFIX + key, dumps(meta))


class RootStatSource:
    """A ``StatSource`` over paths relative to one project root (from ``StatCache.for_root``).

    The root's snapshot is loaded on first use; ``put_digests`` merges the new
    entries and saves the whole snapshot at once.
    """

    def __init__(self, cache: StatCache, root: str) -> None:
        self._cache = cache
        self.root = root
        self._snapshot: Snapshot | None = None

    def _entries(self) -> Snapshot:
        if self._snapshot is None:
            self._snapshot = self._cache.load_snapshot(self.root)
        return self._snapshot

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered digest of relative ``path`` when its stat tuple is unchanged."""
        return _match(self._entries().get(path), size, mtime_ns, inode)

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        """Merge entries (relative paths) into the snapshot and save it."""
        snapshot = self._entries()
        for (path, size, mtime_ns, inode), digest in entries.items():
            snapshot[path] = (size, mtime_ns, inode, digest)
        self._cache.save_snapshot(self.root, snapshot)
