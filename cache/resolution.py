"""ResolutionCache: results of dependency resolution (locks) by input key.

The caller builds ``key`` from the canonical requirement set, the index URLs
and the resolver version (e.g. a sha256 hex); the value is any JSON object.
Values are stored as::

    res/<key>   {"schema": 1, "created_at": t, "last_used_at": t, "value": {...}}

Example::

    cache.resolutions.put(key, {"pins": ["torch==2.1.0"]})
    cache.resolutions.get(key)      # {"pins": ["torch==2.1.0"]}
"""

from __future__ import annotations

from typing import Any

from cache.errors import RecordError
from cache.records import RECORD_SCHEMA, dumps
from cache.store import Store

RESOLUTION_PREFIX = "res/"
_TOUCH_EVERY_S = 3600.0  # refresh last use at most hourly, so reads rarely write


def resolution_key(key: str) -> str:
    """The store key of a resolution."""
    return RESOLUTION_PREFIX + key


def parse_envelope(data: Any) -> dict[str, Any] | None:
    """The envelope when it is well-formed and of the current schema, else None."""
    if not isinstance(data, dict) or data.get("schema") != RECORD_SCHEMA or not isinstance(data.get("value"), dict):
        return None
    for name in ("created_at", "last_used_at"):
        if not isinstance(data.get(name), int | float) or isinstance(data.get(name), bool):
            return None
    return data


class ResolutionCache:
    """JSON results of lock resolution, keyed by a canonical input digest."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None when missing, unreadable or of another schema."""
        envelope = parse_envelope(self._store.get_json(resolution_key(key)))
        if envelope is None:
            return None
        now = self._store.clock()
        if now - envelope["last_used_at"] >= _TOUCH_EVERY_S:
            envelope["last_used_at"] = now
            self._store.set(resolution_key(key), dumps(envelope))
        value: dict[str, Any] = envelope["value"]
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON object); RecordError when it is not JSON-serialisable."""
        if not isinstance(value, dict):
            raise RecordError(f"resolution value must be a JSON object, got {type(value).__name__}")
        now = self._store.clock()
        envelope = {"schema": RECORD_SCHEMA, "created_at": now, "last_used_at": now, "value": value}
        self._store.set(resolution_key(key), dumps(envelope))

    def delete(self, key: str) -> bool:
        """Forget a resolution; True when it was stored."""
        return self._store.delete(resolution_key(key))

    def keys(self) -> list[str]:
        """Every stored resolution key, sorted."""
        return [k[len(RESOLUTION_PREFIX) :] for k in self._store.keys(RESOLUTION_PREFIX)]
