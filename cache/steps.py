"""StepCache: built-step records and each app's plan history.

Implements ``builder.plan.protocols.StepHistory`` structurally (``is_built``,
``duration``, ``last_plan``, ``record_plan``).

Keys::

    step/<step key>            StepRecord JSON
    planidx/<app>              {"next": n, "entries": [{"seq", "created_at", "seen_at", "digest", "size"}]}
    plan/<app>/<seq>           PlanRecord JSON (one per distinct consecutive plan)

Example::

    with open_cache(tmp) as c:
        c.steps.record_step(record)
        assert c.steps.is_built(record.key)
        c.steps.record_plan("my-app", plan.to_json())
        c.steps.last_plan("my-app")        # the plan just recorded
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

from cache.errors import RecordError
from cache.records import RECORD_SCHEMA, PlanRecord, StepRecord, dumps, loads
from cache.store import Store, Txn

STEP_PREFIX = "step/"
PLAN_INDEX_PREFIX = "planidx/"
PLAN_PREFIX = "plan/"
PRUNED_PREFIX = "pruned/"
HISTORY_LIMIT = 50
"""Plans kept per app; older ones are dropped when a new one is recorded."""

HISTORY_MAX_BYTES = 64 * 1024 * 1024
"""Stored bytes of plans kept per app (plans of 100,000-file projects are ~10 MB); the newest is always kept."""


def step_key(key: str) -> str:
    """The store key of a step record."""
    return STEP_PREFIX + key


def plan_index_key(app: str) -> str:
    """The store key of an app's plan index."""
    return PLAN_INDEX_PREFIX + app


def plan_key(app: str, seq: int) -> str:
    """The store key of one recorded plan."""
    return f"{PLAN_PREFIX}{app}/{seq:010d}"


def read_index(raw: bytes | None) -> dict[str, Any]:
    """A plan index from its stored bytes (an empty index when missing or malformed)."""
    empty: dict[str, Any] = {"next": 0, "entries": []}
    if raw is None:
        return empty
    try:
        data = loads(raw)
    except RecordError:
        return empty
    if not isinstance(data, dict) or not isinstance(data.get("next"), int) or not isinstance(data.get("entries"), list):
        return empty
    entries = [e for e in data["entries"] if isinstance(e, dict) and isinstance(e.get("seq"), int)]
    return {"next": data["next"], "entries": entries}


class StepCache:
    """Records of built steps and a bounded per-app history of plans."""

    def __init__(self, store: Store, *, history_limit: int = HISTORY_LIMIT) -> None:
        self._store = store
        self._history_limit = max(1, history_limit)

    # -- StepHistory ---------------------------------------------------------

    def is_built(self, key: str) -> bool:
        """True when a step with this key has been recorded as built."""
        return self.get(key) is not None

    def duration(self, key: str) -> float | None:
        """Seconds the step took when it was last built, if recorded."""
        record = self.get(key)
        return None if record is None else record.duration_s

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        """The JSON form of the latest plan recorded for ``app``."""
        latest = self.history(app, limit=1)
        return latest[0].plan_json if latest else None

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        """Append a plan to ``app``'s history (consecutive duplicates are merged).

        Two plans are the same when their steps have the same ids and keys
        (keys are Merkle digests over every input; see ``plan_fingerprint``),
        so re-planning an unchanged project writes a timestamp, not the plan.
        Steps of the plan that are recorded as built count as used now (LRU).
        Raises ``RecordError`` when ``plan_json`` is not JSON-serialisable.
        """
        now = self._store.clock()
        digest = plan_fingerprint(plan_json)
        serialised: list[bytes] = []  # serialise a (possibly 10 MB) plan only when it is new

        def append(txn: Txn) -> None:
            index = read_index(txn.get(plan_index_key(app)))
            entries = index["entries"]
            if entries and entries[-1].get("digest") == digest:
                entries[-1]["seen_at"] = now
            else:
                if not serialised:  # a lazy view (builder's Plan.json_view) encodes its inputs only here
                    full = plan_json.to_json() if hasattr(plan_json, "to_json") else dict(plan_json)
                    serialised.append(_plan_record_bytes(app, now, dumps(full)))
                payload = serialised[0]
                seq = index["next"]
                txn.set(plan_key(app, seq), payload)
                entries.append({"seq": seq, "created_at": now, "seen_at": now, "digest": digest, "size": len(payload)})
                index["next"] = seq + 1
                while len(entries) > self._history_limit or (
                    len(entries) > 1 and sum(_size(e) for e in entries) > HISTORY_MAX_BYTES
                ):
                    txn.delete(plan_key(app, entries.pop(0)["seq"]))
            txn.set(plan_index_key(app), dumps(index))
            for key in _plan_step_keys(plan_json):
                _touch(txn, key, now)

        self._store.transact(f"recording a plan of {app}", None, append)

    # -- step records --------------------------------------------------------

    def get(self, key: str) -> StepRecord | None:
        """The record of step ``key``; None when missing, unreadable or of another schema."""
        data = self._store.get_json(step_key(key))
        if data is None:
            return None
        try:
            return StepRecord.from_json(data)
        except RecordError:
            return None

    def record_step(self, record: StepRecord) -> None:
        """Store (or replace) the record of a built step."""
        self._store.set(step_key(record.key), dumps(record.to_json()))

    def touch(self, key: str, when: float | None = None) -> bool:
        """Mark step ``key`` as used now (for LRU pruning); False when not recorded."""
        moment = self._store.clock() if when is None else when

        return self._store.transact(f"touching step {key}", False, lambda txn: _touch(txn, key, moment))

    def engines(self, key: str) -> Mapping[str, str] | None:
        """The engines (identity → description) step ``key`` was built or found cached on; None when not recorded.

        An empty mapping is a record written before engines were recorded.
        """
        record = self.get(key)
        return None if record is None else record.engines

    def seen_on(
        self, key: str, engine_id: str, description: str, *, when: float | None = None, cache: str | None = None
    ) -> bool:
        """Add engine ``engine_id`` (and shared cache ``cache``) to step ``key``'s record; False when not recorded."""
        moment = self._store.clock() if when is None else when

        def add(txn: Txn) -> bool:
            raw = txn.get(step_key(key))
            if raw is None:
                return False
            try:
                record = StepRecord.from_json(loads(raw))
            except RecordError:
                return False
            updated = record.seen_on(engine_id, description, moment, cache)
            if updated != record.used_at(moment) or record.last_used_at < moment - TOUCH_GRANULARITY_S:
                txn.set(step_key(key), dumps(updated.to_json()))
            return True

        return self._store.transact(f"recording step {key} on {engine_id}", False, add)

    def delete(self, key: str) -> bool:
        """Forget step ``key``; True when it was recorded."""
        return self._store.delete(step_key(key))

    def mark_pruned(self, key: str, note: str) -> bool:
        """Forget step ``key`` because the engine freed its layers; ``pruned`` says so afterwards.

        True when the step was recorded.
        """
        existed = self._store.delete(step_key(key))
        if existed:
            self._store.set(PRUNED_PREFIX + key, dumps({"schema": RECORD_SCHEMA, "note": note}))
        return existed

    def pruned(self, key: str) -> str | None:
        """Why step ``key`` is gone when an engine prune removed it (None otherwise, or once rebuilt)."""
        if self.get(key) is not None:
            return None
        data = self._store.get_json(PRUNED_PREFIX + key)
        note = data.get("note") if isinstance(data, dict) and data.get("schema") == RECORD_SCHEMA else None
        return note if isinstance(note, str) else None

    def ls(self, app: str | None = None) -> Iterator[StepRecord]:
        """Every readable step record (of ``app`` if given), most recently used first."""
        records = []
        for store_key in self._store.keys(STEP_PREFIX):
            record = self.get(store_key[len(STEP_PREFIX) :])
            if record is not None and (app is None or record.app == app):
                records.append(record)
        records.sort(key=lambda r: (-r.last_used_at, r.key))
        return iter(records)

    # -- plan history --------------------------------------------------------

    def history(self, app: str, limit: int = 20) -> list[PlanRecord]:
        """Up to ``limit`` recorded plans of ``app``, newest first."""
        index = read_index(self._store.get(plan_index_key(app)))
        out: list[PlanRecord] = []
        for entry in reversed(index["entries"]):
            if len(out) >= limit:
                break
            data = self._store.get_json(plan_key(app, entry["seq"]))
            if data is None:
                continue
            try:
                out.append(PlanRecord.from_json(data))
            except RecordError:
                continue
        return out

    def apps(self) -> list[str]:
        """Apps with a recorded plan history, sorted."""
        return [k[len(PLAN_INDEX_PREFIX) :] for k in self._store.keys(PLAN_INDEX_PREFIX)]


def plan_fingerprint(plan_json: Mapping[str, Any]) -> str:
    """sha256 identifying a plan: its app, scheme and step (id, key) list when every step has a key.

    Falls back to the digest of the whole canonical JSON for plans without keyed steps.
    """
    steps = plan_json.get("steps")
    if (
        isinstance(steps, list)
        and steps
        and all(isinstance(s, Mapping) and isinstance(s.get("key"), str) for s in steps)
    ):
        ident = {
            "app": plan_json.get("app"),
            "scheme": plan_json.get("scheme"),
            "steps": [[s.get("id"), s["key"]] for s in steps],
        }
        return "steps:" + hashlib.sha256(dumps(ident)).hexdigest()
    return "json:" + hashlib.sha256(dumps(dict(plan_json))).hexdigest()


def _plan_record_bytes(app: str, created_at: float, plan_bytes: bytes) -> bytes:
    """``dumps(PlanRecord(...).to_json())`` without serialising a large plan a second time.

    Keys are in sorted order (app, created_at, plan_json, schema), exactly as ``dumps`` writes them.
    """
    head = dumps({"app": app, "created_at": created_at})[:-1]
    return head + b',"plan_json":' + plan_bytes + b',"schema":' + str(RECORD_SCHEMA).encode() + b"}"


def _size(entry: dict[str, Any]) -> int:
    size = entry.get("size")
    return size if isinstance(size, int) else 0


#: A step used again within this many seconds keeps its recorded last use: LRU pruning needs no finer
#: clock, and a files step's record holds its whole manifest (megabytes for a big project) to rewrite.
TOUCH_GRANULARITY_S = 60.0


def _touch(txn: Txn, key: str, moment: float) -> bool:
    raw = txn.get(step_key(key))
    if raw is None:
        return False
    try:
        record = StepRecord.from_json(loads(raw))
    except RecordError:
        return False
    if record.last_used_at < moment - TOUCH_GRANULARITY_S:
        txn.set(step_key(key), dumps(record.used_at(moment).to_json()))
    return True


def _plan_step_keys(plan_json: Mapping[str, Any]) -> list[str]:
    steps = plan_json.get("steps")
    if not isinstance(steps, list):
        return []
    return [s["key"] for s in steps if isinstance(s, Mapping) and isinstance(s.get("key"), str)]
