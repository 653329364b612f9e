"""Pruning (LRU to a size bound, by age) and statistics."""

from __future__ import annotations

from pathlib import Path

from cache_helpers import FakeClock, make_record, plan

from cache import CacheStore
from cache.prune import list_entries


def test_stats_count_everything(store: CacheStore, tmp_path: Path) -> None:
    store.steps.record_step(make_record("k1", used=5.0, size=1000))
    store.steps.record_step(make_record("k2", used=7.0, size=24))
    store.steps.record_plan("a", plan("a", "x1"))
    store.steps.record_plan("a", plan("a", "x2"))
    store.steps.record_plan("b", plan("b"))
    store.stats.save_snapshot(tmp_path / "p", {"x": (1, 1, 1, "d"), "y": (2, 2, 2, "e")})
    store.stats.put_digests({("/q/z", 1, 1, 1): "d"})
    store.resolutions.put("r", {"v": 1})
    s = store.summary()
    assert (s.steps, s.apps, s.plans, s.stat_roots, s.stat_files, s.resolutions) == (2, 2, 3, 2, 3, 1)
    assert s.layer_bytes == 1024
    assert s.entry_bytes == sum(e.size for e in list_entries(store._store))
    assert s.entry_bytes > 0
    assert s.disk_bytes >= s.entry_bytes
    assert s.oldest_used_at == 5.0
    assert s.path == str(store.path)


def test_empty_stats(store: CacheStore) -> None:
    s = store.summary()
    assert (s.steps, s.plans, s.entry_bytes, s.oldest_used_at, s.newest_used_at) == (0, 0, 0, None, None)


def test_prune_to_size_removes_least_recently_used_first(store: CacheStore, clock: FakeClock) -> None:
    for i in range(10):
        store.steps.record_step(make_record(f"k{i}", used=float(i)))
    store.steps.touch("k0", when=100.0)  # k0 is now the most recently used
    sizes = {e.name: e.size for e in list_entries(store._store)}
    bound = sum(sizes.values()) - sizes["k1"] - sizes["k2"] - 1  # forces exactly three removals
    result = store.prune(max_bytes=bound)
    assert result.removed == 3
    assert result.remaining_bytes <= bound
    assert [r.key for r in store.steps.ls()] == ["k0", "k9", "k8", "k7", "k6", "k5", "k4"]
    assert store.summary().entry_bytes == result.remaining_bytes


def test_prune_within_bound_removes_nothing(store: CacheStore) -> None:
    store.steps.record_step(make_record("k1"))
    result = store.prune(max_bytes=10**9)
    assert result.removed == 0
    assert store.steps.is_built("k1")


def test_prune_to_zero_empties_every_namespace(store: CacheStore, tmp_path: Path) -> None:
    store.steps.record_step(make_record("k1"))
    store.steps.record_plan("a", plan("a", "k1"))
    store.stats.save_snapshot(tmp_path, {"x": (1, 1, 1, "d")})
    store.stats.put_digests({("/q/z", 1, 1, 1): "d"})
    store.resolutions.put("r", {"v": 1})
    store.prune(max_bytes=0)
    s = store.summary()
    assert (s.steps, s.plans, s.apps, s.stat_roots, s.stat_files, s.resolutions, s.entry_bytes) == (0,) * 7
    assert store.steps.last_plan("a") is None
    assert store.stats.load_snapshot(tmp_path) == {}


def test_prune_by_age_keeps_recent_entries(store: CacheStore, clock: FakeClock) -> None:
    store.steps.record_step(make_record("old", used=clock.now))
    store.steps.record_plan("a", plan("a"))
    clock.advance(8 * 86400)
    store.steps.record_step(make_record("new", used=clock.now))
    store.steps.record_plan("a", plan("a", "new"))
    result = store.prune(older_than_s=7 * 86400)
    assert result.removed == 2
    assert [r.key for r in store.steps.ls()] == ["new"]
    assert [p.plan_json for p in store.steps.history("a")] == [plan("a", "new")]


def test_pruning_old_plans_keeps_the_index_consistent(store: CacheStore, clock: FakeClock) -> None:
    for i in range(4):
        clock.advance(10)
        store.steps.record_plan("a", plan("a", f"k{i}"))
    store.prune(older_than_s=15)  # drops the two oldest plans
    assert [p.plan_json for p in store.steps.history("a")] == [plan("a", "k3"), plan("a", "k2")]
    clock.advance(10)
    store.steps.record_plan("a", plan("a", "k4"))
    assert store.steps.last_plan("a") == plan("a", "k4")
    assert len(store.steps.history("a")) == 3


def test_clear_removes_everything(store: CacheStore) -> None:
    store.steps.record_step(make_record("k1"))
    store.resolutions.put("r", {"v": 1})
    store.steps.record_plan("a", plan("a"))
    assert store.clear() == 3
    assert store.summary().entry_bytes == 0
    assert not store.steps.is_built("k1")
