"""Pruning by last use (LRU) to a size bound or an age, and statistics.

The unit of pruning is an *entry*: one step record, one recorded plan, one
stat snapshot (a directory root's file digests), or one resolution.  Its size is the bytes of its stored value(s), and the total of
those sizes (``CacheStats.entry_bytes``) is what ``max_bytes`` bounds.
Entries are removed least recently used first.

Example::

    with open_cache() as c:
        result = c.prune(max_bytes=500 * 1024**2, older_than_s=7 * 86400)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cache.errors import RecordError
from cache.records import RECORD_SCHEMA, CacheStats, StepRecord, dumps, loads
from cache.resolution import RESOLUTION_PREFIX, parse_envelope
from cache.stat import META_PREFIX, ROOT_PREFIX
from cache.steps import PLAN_INDEX_PREFIX, STEP_PREFIX, plan_index_key, plan_key, read_index
from cache.store import Store, Txn


@dataclass(frozen=True, slots=True)
class Entry:
    """One prunable unit: its kind, name, stored size and last use (epoch seconds)."""

    kind: str  # "step" | "plan" | "stat" | "resolution"
    name: str
    size: int
    last_used_at: float
    layer_bytes: int = 0
    files: int = 0


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed and what is left."""

    removed: int
    freed_bytes: int
    remaining_entries: int
    remaining_bytes: int

    def to_json(self) -> dict[str, Any]:
        """The JSON object form."""
        return {
            "removed": self.removed,
            "freed_bytes": self.freed_bytes,
            "remaining_entries": self.remaining_entries,
            "remaining_bytes": self.remaining_bytes,
        }


def list_entries(store: Store) -> list[Entry]:
    """Every prunable entry, least recently used first (ties by kind and name)."""
    found = [*_steps(store), *_plans(store), *_stat_roots(store), *_resolutions(store)]
    found.sort(key=lambda e: (e.last_used_at, e.kind, e.name))
    return found


def prune(store: Store, *, max_bytes: int | None = None, older_than_s: float | None = None) -> PruneResult:
    """Remove entries unused for ``older_than_s`` seconds, then LRU ones until within ``max_bytes``."""
    entries = list_entries(store)
    total = sum(e.size for e in entries)
    cutoff = None if older_than_s is None else store.clock() - older_than_s
    removed = freed = 0
    keep: list[Entry] = []
    for entry in entries:
        too_old = cutoff is not None and entry.last_used_at < cutoff
        too_big = max_bytes is not None and total > max_bytes
        if too_old or too_big:
            remove_entry(store, entry)
            removed += 1
            freed += entry.size
            total -= entry.size
        else:
            keep.append(entry)
    return PruneResult(removed=removed, freed_bytes=freed, remaining_entries=len(keep), remaining_bytes=total)


def remove_entry(store: Store, entry: Entry) -> None:
    """Delete one entry (for a plan, also its line in the app's plan index)."""
    if entry.kind == "step":
        store.delete(STEP_PREFIX + entry.name)
    elif entry.kind == "resolution":
        store.delete(RESOLUTION_PREFIX + entry.name)
    elif entry.kind == "stat":
        store.transact(
            "pruning a stat snapshot", None, lambda t: _delete(t, ROOT_PREFIX + entry.name, META_PREFIX + entry.name)
        )
    elif entry.kind == "plan":
        app, _, seq = entry.name.rpartition("/")
        store.transact(f"pruning a plan of {app}", None, lambda t: _drop_plan(t, app, int(seq)))


def collect_stats(store: Store) -> CacheStats:
    """Counts and sizes of everything in the store."""
    entries = list_entries(store)
    by_kind: dict[str, list[Entry]] = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    used = [e.last_used_at for e in entries]
    return CacheStats(
        path=str(store.root),
        schema=RECORD_SCHEMA,
        steps=len(by_kind.get("step", [])),
        apps=len({e.name.rpartition("/")[0] for e in by_kind.get("plan", [])}),
        plans=len(by_kind.get("plan", [])),
        stat_roots=len(by_kind.get("stat", [])),
        stat_files=sum(e.files for e in entries if e.kind == "stat"),
        resolutions=len(by_kind.get("resolution", [])),
        entry_bytes=sum(e.size for e in entries),
        disk_bytes=store.disk_bytes(),
        layer_bytes=sum(e.layer_bytes for e in entries),
        oldest_used_at=min(used) if used else None,
        newest_used_at=max(used) if used else None,
    )


def _delete(txn: Txn, *keys: str) -> None:
    for key in keys:
        txn.delete(key)


def _drop_plan(txn: Txn, app: str, seq: int) -> None:
    index = read_index(txn.get(plan_index_key(app)))
    index["entries"] = [e for e in index["entries"] if e["seq"] != seq]
    txn.delete(plan_key(app, seq))
    if index["entries"]:
        txn.set(plan_index_key(app), dumps(index))
    else:
        txn.delete(plan_index_key(app))


def _steps(store: Store) -> list[Entry]:
    out = []
    for key in store.keys(STEP_PREFIX):
        raw = store.get(key)
        if raw is None:
            continue
        try:
            record = StepRecord.from_json(loads(raw))
        except RecordError:
            out.append(Entry("step", key[len(STEP_PREFIX) :], len(raw), 0.0))  # unreadable: oldest
            continue
        out.append(Entry("step", record.key, len(raw), record.last_used_at, layer_bytes=record.size_bytes))
    return out


def _plans(store: Store) -> list[Entry]:
    out = []
    for key in store.keys(PLAN_INDEX_PREFIX):
        app = key[len(PLAN_INDEX_PREFIX) :]
        raw = store.get(key)
        index = read_index(raw)
        share = len(raw or b"") // max(1, len(index["entries"]))  # the index's bytes, spread over its plans
        for e in index["entries"]:
            size = e.get("size") if isinstance(e.get("size"), int) else 0
            seen = e.get("seen_at") if isinstance(e.get("seen_at"), int | float) else 0.0
            out.append(Entry("plan", f"{app}/{e['seq']}", size + share, float(seen)))
    return out


def _stat_roots(store: Store) -> list[Entry]:
    out = []
    for key in store.keys(ROOT_PREFIX):
        root = key[len(ROOT_PREFIX) :]
        meta = store.get_json(META_PREFIX + root)
        meta = meta if isinstance(meta, dict) else {}
        size, used, files = meta.get("size"), meta.get("used_at"), meta.get("files")
        if not isinstance(size, int):
            size = len(store.get(key) or b"")
        out.append(
            Entry(
                "stat",
                root,
                size,
                float(used) if isinstance(used, int | float) else 0.0,
                files=files if isinstance(files, int) else 0,
            )
        )
    return out


def _resolutions(store: Store) -> list[Entry]:
    out = []
    for key in store.keys(RESOLUTION_PREFIX):
        raw = store.get(key)
        if raw is None:
            continue
        try:
            envelope = parse_envelope(loads(raw))
        except RecordError:
            envelope = None
        used = float(envelope["last_used_at"]) if envelope else 0.0
        out.append(Entry("resolution", key[len(RESOLUTION_PREFIX) :], len(raw), used))
    return out
