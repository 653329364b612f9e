"""ResolutionCache: JSON values by key."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_helpers import FakeClock

from cache import CacheStore, RecordError, open_cache
from cache.records import dumps
from cache.resolution import resolution_key


def test_put_get_persist(cache_dir: Path) -> None:
    value = {"pins": ["torch==2.1.0", "numpy==1.26.4"], "python": "3.11", "hashes": {"torch": ["sha256:aa"]}}
    with open_cache(cache_dir) as c:
        assert c.resolutions.get("k") is None
        c.resolutions.put("k", value)
    with open_cache(cache_dir) as c:
        assert c.resolutions.get("k") == value
        assert c.resolutions.keys() == ["k"]
        assert c.resolutions.delete("k")
        assert c.resolutions.get("k") is None


def test_put_replaces(store: CacheStore) -> None:
    store.resolutions.put("k", {"v": 1})
    store.resolutions.put("k", {"v": 2})
    assert store.resolutions.get("k") == {"v": 2}


@pytest.mark.parametrize("bad", [["a list"], {"x": {1, 2}}, {"x": float("inf")}])
def test_non_json_objects_are_refused(store: CacheStore, bad: object) -> None:
    with pytest.raises(RecordError):
        store.resolutions.put("k", bad)  # type: ignore[arg-type]
    assert store.resolutions.get("k") is None


@pytest.mark.parametrize(
    "stored",
    [
        b"garbage",
        dumps({"schema": 99, "value": {}, "created_at": 1, "last_used_at": 1}),
        dumps({"schema": 1, "value": [], "created_at": 1, "last_used_at": 1}),
    ],
)
def test_foreign_or_broken_values_read_as_missing(store: CacheStore, stored: bytes) -> None:
    store._store.set(resolution_key("k"), stored)
    assert store.resolutions.get("k") is None


def test_get_refreshes_last_use_for_pruning(store: CacheStore, clock: FakeClock) -> None:
    store.resolutions.put("old", {"v": 1})
    store.resolutions.put("used", {"v": 2})
    clock.advance(7200)
    assert store.resolutions.get("used") == {"v": 2}
    result = store.prune(older_than_s=3600)
    assert result.removed == 1
    assert store.resolutions.keys() == ["used"]
