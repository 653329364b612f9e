"""StatCache: (path, size, mtime_ns, inode) → content digest.

Implements ``builder.plan.protocols.StatSource`` (and its optional bulk
extension ``get_digests``) structurally.

Storage: one *snapshot* blob per directory root, mapping paths relative to
that root to ``(size, mtime_ns, inode, digest)``.  Loading a snapshot is one
read and one JSON parse (about 0.1-0.2 s for 100,000 files); lookups are
dict hits.  Three ways in, all on the same snapshots:

* ``get_digests(keys)`` — **the fast path for a project walk.**  The batch's
  common directory is the root: its snapshot is loaded once and answers the
  whole batch.  A following ``put_digests`` for paths under that root saves
  the snapshot *reduced to the paths of that batch* plus the new entries, so
  files deleted from the project drop out.  Ask for a whole tree in one batch
  (a batch inside an existing snapshot's root is answered by it and only
  merges).
* ``get_digest``/``put_digests`` per path — a path is looked up in the
  snapshot of its nearest ancestor directory that has one (memoised per
  directory); ``put_digests`` merges there, and puts paths that no
  snapshot covers into a new snapshot at their common directory.
* ``load_snapshot(root)`` / ``save_snapshot(root, snapshot)`` — explicit bulk
  access with relative paths (``save_snapshot`` replaces, and writes nothing
  when the snapshot equals what the store already holds); ``for_root(root)``
  wraps them as a ``StatSource`` over paths relative to ``root``::

      snap = stats.load_snapshot(root)        # {relpath: (size, mtime_ns, inode, digest)}
      e = snap.get(rel)
      digest = e[3] if e is not None and e[:3] == (size, mtime_ns, inode) else None
      stats.save_snapshot(root, current)

An entry only matches when size, mtime_ns and inode all match, so a stale
entry is a miss, never a wrong digest.  Corrupt or foreign blobs read as
empty.  Concurrent writers of one root: the last write wins (a lost entry is
only a future miss).
"""

from __future__ import annotations

import gc
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cache.errors import RecordError
from cache.records import dumps, loads
from cache.store import Store, Txn

StatEntry = tuple[int, int, int, str]
"""(size, mtime_ns, inode, digest)."""

Snapshot = dict[str, StatEntry]
"""Path relative to a root → StatEntry."""

StatKey = tuple[str, int, int, int]
"""(path, size, mtime_ns, inode)."""

ROOT_PREFIX = "statroot/"
META_PREFIX = "statmeta/"
SNAPSHOT_FORMAT = "stat-snapshot/1"
_TOUCH_EVERY_S = 3600.0  # refresh a snapshot's last-use time at most hourly (a read should rarely write)


def normalise_root(root: str | os.PathLike[str]) -> str:
    """The absolute form of a project root used in keys."""
    return os.path.abspath(os.fspath(root))


def common_root(paths: Sequence[str]) -> str:
    """The deepest directory containing every path (``os.path.dirname`` style; ``""`` for none)."""
    first, last = min(paths), max(paths)  # their common prefix is every path's common prefix
    prefix = os.path.commonprefix([first, last])
    cut = prefix.rfind(os.sep)
    if cut < 0:
        return ""
    return os.sep if cut == 0 else prefix[:cut]


def _strip(root: str) -> int:
    """How many characters of a path under ``root`` to drop to get the relative path."""
    if not root:
        return 0
    return len(root) if root.endswith(os.sep) else len(root) + 1


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
    # Building 100,000 tuples would trigger many useless cyclic-GC passes (none of this is cyclic).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode(raw)
    finally:
        if gc_was_enabled:
            gc.enable()


def _decode(raw: bytes) -> tuple[Snapshot, float]:
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
    if not set(map(type, paths)) <= {str} or not set(map(type, digests)) <= {str}:  # type: ignore[arg-type]
        return {}, 0.0
    saved_at = data.get("saved_at")
    when = float(saved_at) if isinstance(saved_at, int | float) and not isinstance(saved_at, bool) else 0.0
    return dict(zip(paths, zip(sizes, mtimes, inodes, digests, strict=True), strict=True)), when  # type: ignore[arg-type]


def _nearest(directory: str, has: Callable[[str], bool]) -> str | None:
    """``directory`` or its nearest ancestor for which ``has`` is true.

    The root ``""`` (paths kept as given) is the ancestor of every path, absolute or not.
    """
    candidate = directory
    while True:
        if has(candidate):
            return candidate
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return "" if candidate and has("") else None
        candidate = parent


def _match(entry: StatEntry | None, size: int, mtime_ns: int, inode: int) -> str | None:
    if entry is not None and entry[0] == size and entry[1] == mtime_ns and entry[2] == inode:
        return entry[3]
    return None


class StatCache:
    """Remembered content digests of files (see the module docstring for the three ways in)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._roots: dict[str, Snapshot] = {}  # root → snapshot in use by this object
        self._stored: dict[str, Snapshot] = {}  # root → what the store holds (skips equal writes)
        # root → (paths of the last get_digests batch spanning it, path → relative path)
        self._batch: dict[str, tuple[list[str], Callable[[str], str]]] = {}
        self._covering: dict[str, str | None] = {}  # directory → root whose snapshot covers it

    # -- StatSource ---------------------------------------------------------

    def get_digests(self, keys: Sequence[StatKey]) -> list[str | None]:
        """Digests for a batch (aligned with ``keys``), answered from one snapshot."""
        if not keys:
            return []
        paths = [k[0] for k in keys]
        spanned = common_root(paths)
        root = self._cover(spanned) or spanned
        get = self._snapshot(root).get
        cut = _strip(root)
        out: list[str | None] = []
        append = out.append
        for path, size, mtime_ns, inode in keys:
            entry = get(path[cut:])
            append(
                entry[3]
                if entry is not None and entry[0] == size and entry[1] == mtime_ns and entry[2] == inode
                else None
            )
        if root == spanned:
            self._batch[root] = (paths, lambda path: path[cut:])
        return out

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered digest of ``path`` when its stat tuple is unchanged, else None."""
        root = self._cover(os.path.dirname(path))
        if root is None:
            return None
        return _match(self._snapshot(root).get(path[_strip(root) :]), size, mtime_ns, inode)

    def put_digests(self, entries: Mapping[StatKey, str]) -> None:
        """Remember many (path, size, mtime_ns, inode) → digest entries (one write per root).

        Paths under no existing snapshot go to a new one at their common directory.
        """
        groups: dict[str, dict[str, StatEntry]] = defaultdict(dict)
        homeless: dict[str, StatEntry] = {}
        group: dict[str, StatEntry] | None = None
        prefix = ""
        for (path, size, mtime_ns, inode), digest in entries.items():
            entry = (size, mtime_ns, inode, digest)
            if group is not None and path.startswith(prefix):  # same root as the previous path
                group[path[len(prefix) :]] = entry
                continue
            root = self._cover(os.path.dirname(path))
            if root is None:
                homeless[path] = entry
                group = None
                continue
            prefix = path[: _strip(root)]
            # The shortcut is only sound when no other snapshot in use sits below this root.
            nested = any(other != root and other.startswith(prefix) for other in self._roots)
            group = None if nested else groups[root]
            groups[root][path[len(prefix) :]] = entry
        if homeless:
            root = common_root(list(homeless))
            cut = _strip(root)
            groups[root].update((path[cut:], entry) for path, entry in homeless.items())
        for root, new in sorted(groups.items()):
            self._merge(root, new)

    # -- explicit snapshots -------------------------------------------------

    def load_snapshot(self, root: str | os.PathLike[str]) -> Snapshot:
        """Every remembered entry under ``root``: {relative path: (size, mtime_ns, inode, digest)}.

        One read from the store; the result is a copy the caller may keep or mutate.
        """
        key = normalise_root(root)
        self._roots.pop(key, None)
        return dict(self._snapshot(key))

    def save_snapshot(self, root: str | os.PathLike[str], snapshot: Mapping[str, StatEntry]) -> None:
        """Replace ``root``'s entries with ``snapshot`` (so deleted files drop out)."""
        self._write(normalise_root(root), dict(snapshot))

    def for_root(self, root: str | os.PathLike[str]) -> RootStatSource:
        """A StatSource over paths relative to ``root``, backed by its snapshot."""
        return RootStatSource(self, normalise_root(root))

    def roots(self) -> list[str]:
        """Roots that have a stored snapshot, sorted."""
        return [k[len(ROOT_PREFIX) :] for k in self._store.keys(ROOT_PREFIX)]

    def meta(self, root: str | os.PathLike[str]) -> dict[str, Any]:
        """Bookkeeping of ``root``'s snapshot: used_at, saved_at, files, size (empty if none)."""
        return self._meta(normalise_root(root))

    def drop(self, root: str | os.PathLike[str]) -> None:
        """Forget ``root``'s snapshot."""
        key = normalise_root(root)

        def remove(txn: Txn) -> None:
            txn.delete(ROOT_PREFIX + key)
            txn.delete(META_PREFIX + key)

        self._store.transact(f"dropping file digests of {key}", None, remove)
        self.invalidate()

    def invalidate(self) -> None:
        """Forget what this object holds in memory (after pruning or clearing the store)."""
        for table in (self._roots, self._stored, self._batch, self._covering):
            table.clear()

    # -- internals ----------------------------------------------------------

    def _cover(self, directory: str) -> str | None:
        """The nearest directory at or above ``directory`` with a snapshot (in use here first, then stored)."""
        if directory in self._covering:
            return self._covering[directory]
        found = _nearest(directory, self._roots.__contains__)
        if found is None:
            found = _nearest(directory, lambda d: self._store.contains(ROOT_PREFIX + d))
        self._covering[directory] = found
        return found

    def _snapshot(self, root: str) -> Snapshot:
        snapshot = self._roots.get(root)
        if snapshot is None:
            snapshot, _ = decode_snapshot(self._store.get(ROOT_PREFIX + root))
            self._roots[root] = snapshot
            self._stored[root] = dict(snapshot)
            self._covering.clear()  # a new root may cover directories resolved before
            self._touch(root)
        return snapshot

    def _merge(self, root: str, new: Mapping[str, StatEntry]) -> None:
        current = self._snapshot(root)
        batch = self._batch.pop(root, None)
        if batch is not None:  # the last batch spanned this root: keep only its paths
            paths, relative = batch
            current = {rel: current[rel] for rel in map(relative, paths) if rel in current}
        else:
            current = dict(current)
        current.update(new)
        self._write(root, current)

    def _write(self, root: str, snapshot: Snapshot) -> None:
        if root not in self._roots:
            self._covering.clear()
        self._roots[root] = snapshot
        if self._stored.get(root) == snapshot:
            return
        now = self._store.clock()
        blob = encode_snapshot(snapshot, now)
        meta = dumps({"used_at": now, "saved_at": now, "files": len(snapshot), "size": len(blob)})

        def write(txn: Txn) -> None:
            txn.set(ROOT_PREFIX + root, blob)
            txn.set(META_PREFIX + root, meta)

        self._store.transact(f"saving file digests of {root or '.'}", None, write)
        self._stored[root] = dict(snapshot)

    def _meta(self, root: str) -> dict[str, Any]:
        data = self._store.get_json(META_PREFIX + root)
        return data if isinstance(data, dict) else {}

    def _touch(self, root: str) -> None:
        meta = self._meta(root)
        used = meta.get("used_at")
        now = self._store.clock()
        if meta and (not isinstance(used, int | float) or now - used >= _TOUCH_EVERY_S):
            meta["used_at"] = now
            self._store.set(META_PREFIX + root, dumps(meta))


class RootStatSource:
    """A ``StatSource`` over the files of one root (from ``StatCache.for_root``).

    Paths may be relative to the root or absolute under it (``/root/a.py``
    and ``a.py`` are the same entry).  A ``get_digests`` batch describes the
    tree: the next ``put_digests`` keeps only that batch's paths, so deleted
    files drop out; without a batch, ``put_digests`` merges.
    """

    def __init__(self, cache: StatCache, root: str) -> None:
        self._cache = cache
        self.root = root
        self._prefix = root if not root or root.endswith(os.sep) else root + os.sep

    def _rel(self, path: str) -> str:
        prefix = self._prefix
        return path[len(prefix) :] if prefix and path.startswith(prefix) else path

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered digest of ``path`` when its stat tuple is unchanged."""
        return _match(self._cache._snapshot(self.root).get(self._rel(path)), size, mtime_ns, inode)

    def get_digests(self, keys: Sequence[StatKey]) -> list[str | None]:
        """Digests aligned with ``keys``; the batch is remembered as the tree's file list."""
        get = self._cache._snapshot(self.root).get
        prefix, cut = self._prefix, len(self._prefix)
        out: list[str | None] = []
        append = out.append
        for path, size, mtime_ns, inode in keys:
            entry = get(path[cut:] if prefix and path.startswith(prefix) else path)
            append(
                entry[3]
                if entry is not None and entry[0] == size and entry[1] == mtime_ns and entry[2] == inode
                else None
            )
        self._cache._batch[self.root] = ([k[0] for k in keys], self._rel)
        return out

    def put_digests(self, entries: Mapping[StatKey, str]) -> None:
        """Merge entries into the root's snapshot and save it."""
        rel = self._rel
        new = {rel(path): (size, mtime_ns, inode, digest) for (path, size, mtime_ns, inode), digest in entries.items()}
        self._cache._merge(self.root, new)
