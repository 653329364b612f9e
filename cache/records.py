"""Frozen, versioned records and their JSON form.

Every record serialises to a JSON object carrying ``"schema": RECORD_SCHEMA``.
``from_json`` checks the schema and every field's type, raising
``RecordSchemaError`` for another schema version and ``RecordError`` (naming
the field) for anything malformed; the stores treat both as "not cached".

Example::

    >>> r = StepRecord(key="ab", kind="pip", step_id="pip", app="app", engine="buildkit",
    ...                inputs_manifest={}, result_digest=None, duration_s=1.5,
    ...                size_bytes=0, created_at=0.0, last_used_at=0.0)
    >>> StepRecord.from_json(r.to_json()) == r
    True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cache.errors import RecordError, RecordSchemaError

RECORD_SCHEMA = 1


def dumps(value: Any) -> bytes:
    """Canonical compact JSON bytes (sorted keys, UTF-8, no NaN)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"value is not JSON-serialisable: {exc}") from exc
    return text.encode("utf-8")


def loads(data: bytes) -> Any:
    """Parse JSON bytes written by ``dumps``; RecordError when they are not JSON."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordError(f"stored value is not valid JSON: {exc}") from exc


def check_schema(data: Any, what: str) -> Mapping[str, Any]:
    """``data`` as a mapping with the current record schema, or raise."""
    if not isinstance(data, Mapping):
        raise RecordError(f"{what}: expected a JSON object, got {type(data).__name__}")
    schema = data.get("schema")
    if schema != RECORD_SCHEMA:
        raise RecordSchemaError(f"{what}: record schema {schema!r} is not the supported {RECORD_SCHEMA}")
    return data


def _field(data: Mapping[str, Any], name: str, types: tuple[type, ...], what: str) -> Any:
    if name not in data:
        raise RecordError(f"{what}.{name}: missing")
    value = data[name]
    # bool is an int subclass; a JSON true is never a valid number here.
    if isinstance(value, bool) and bool not in types:
        raise RecordError(f"{what}.{name}: expected {_names(types)}, got bool")
    if not isinstance(value, types):
        raise RecordError(f"{what}.{name}: expected {_names(types)}, got {type(value).__name__}")
    return value


def _names(types: tuple[type, ...]) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


_NUMBER = (int, float)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One built step: what went in, what came out, and when it was last used.

    ``key`` is the step's Merkle key; ``inputs_manifest`` is the step's
    canonical inputs (JSON data) kept for diffs; ``size_bytes`` is the size the
    engine reported for the step's result (a layer), not the record's size;
    times are seconds since the epoch.  ``engines`` maps the identity of every engine
    the step was built on or found cached on (see ``builder.engines.identity``) to how
    that engine describes itself; ``caches`` lists the shared caches (``--cache-to``
    references) the step was exported to.  Records written before these fields existed
    read with both empty: built on an engine nobody asked.
    """

    key: str
    kind: str
    step_id: str
    app: str
    engine: str
    inputs_manifest: Mapping[str, Any]
    result_digest: str | None
    duration_s: float
    size_bytes: int
    created_at: float
    last_used_at: float
    engines: Mapping[str, str] = field(default_factory=dict)
    caches: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON object form (``schema`` included)."""
        return {
            "schema": RECORD_SCHEMA,
            "engines": dict(self.engines),
            "caches": list(self.caches),
            "key": self.key,
            "kind": self.kind,
            "step_id": self.step_id,
            "app": self.app,
            "engine": self.engine,
            "inputs_manifest": dict(self.inputs_manifest),
            "result_digest": self.result_digest,
            "duration_s": self.duration_s,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> StepRecord:
        """Parse the JSON object form; RecordError/RecordSchemaError when invalid."""
        what = "step record"
        d = check_schema(data, what)
        manifest = _field(d, "inputs_manifest", (dict,), what)
        return cls(
            key=_field(d, "key", (str,), what),
            kind=_field(d, "kind", (str,), what),
            step_id=_field(d, "step_id", (str,), what),
            app=_field(d, "app", (str,), what),
            engine=_field(d, "engine", (str,), what),
            inputs_manifest=manifest,
            result_digest=_field(d, "result_digest", (str, type(None)), what),
            duration_s=float(_field(d, "duration_s", _NUMBER, what)),
            size_bytes=_field(d, "size_bytes", (int,), what),
            created_at=float(_field(d, "created_at", _NUMBER, what)),
            last_used_at=float(_field(d, "last_used_at", _NUMBER, what)),
            engines=_engines(d.get("engines", {}), what),
            caches=_strings(d.get("caches", []), f"{what}.caches"),
        )

    def used_at(self, when: float) -> StepRecord:
        """A copy with ``last_used_at`` moved forward to ``when`` (never back)."""
        return replace(self, last_used_at=max(self.last_used_at, when))

    def seen_on(self, engine_id: str, description: str, when: float, cache: str | None = None) -> StepRecord:
        """A copy that also holds for engine ``engine_id`` (and shared cache ``cache``), used at ``when``."""
        caches = self.caches if cache is None or cache in self.caches else (*self.caches, cache)
        engines = {**self.engines, engine_id: description} if engine_id else dict(self.engines)
        return replace(self, engines=engines, caches=caches, last_used_at=max(self.last_used_at, when))


def _engines(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RecordError(f"{what}.engines: expected an object of strings")
    return dict(value)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError(f"{what}: expected a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One plan of an app (its JSON form) and when it was recorded."""

    app: str
    created_at: float
    plan_json: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON object form (``schema`` included)."""
        return {
            "schema": RECORD_SCHEMA,
            "app": self.app,
            "created_at": self.created_at,
            "plan_json": dict(self.plan_json),
        }

    @classmethod
    def from_json(cls, data: Any) -> PlanRecord:
        """Parse the JSON object form; RecordError/RecordSchemaError when invalid."""
        what = "plan record"
        d = check_schema(data, what)
        return cls(
            app=_field(d, "app", (str,), what),
            created_at=float(_field(d, "created_at", _NUMBER, what)),
            plan_json=_field(d, "plan_json", (dict,), what),
        )


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a cache directory holds (``builder cache stats``).

    ``entry_bytes`` is the size of the stored values, the quantity that
    ``prune --max-size`` bounds; ``disk_bytes`` is what the store directory
    occupies (database pages and value files); ``layer_bytes`` sums the
    engine-reported ``size_bytes`` of recorded steps.
    """

    path: str
    schema: int
    steps: int
    apps: int
    plans: int
    stat_roots: int
    stat_files: int
    resolutions: int
    entry_bytes: int
    disk_bytes: int
    layer_bytes: int
    oldest_used_at: float | None
    newest_used_at: float | None

    def to_json(self) -> dict[str, Any]:
        """The JSON object form (``schema`` is the record schema)."""
        return {
            "schema": self.schema,
            "path": self.path,
            "steps": self.steps,
            "apps": self.apps,
            "plans": self.plans,
            "stat_roots": self.stat_roots,
            "stat_files": self.stat_files,
            "resolutions": self.resolutions,
            "entry_bytes": self.entry_bytes,
            "disk_bytes": self.disk_bytes,
            "layer_bytes": self.layer_bytes,
            "oldest_used_at": self.oldest_used_at,
            "newest_used_at": self.newest_used_at,
        }

    @classmethod
    def from_json(cls, data: Any) -> CacheStats:
        """Parse the JSON object form; RecordError/RecordSchemaError when invalid."""
        what = "cache stats"
        d = check_schema(data, what)
        ints = {
            name: _field(d, name, (int,), what)
            for name in (
                "steps",
                "apps",
                "plans",
                "stat_roots",
                "stat_files",
                "resolutions",
                "entry_bytes",
                "disk_bytes",
                "layer_bytes",
            )
        }
        oldest = _field(d, "oldest_used_at", (*_NUMBER, type(None)), what)
        newest = _field(d, "newest_used_at", (*_NUMBER, type(None)), what)
        return cls(
            path=_field(d, "path", (str,), what),
            schema=RECORD_SCHEMA,
            oldest_used_at=None if oldest is None else float(oldest),
            newest_used_at=None if newest is None else float(newest),
            **ints,
        )
