"""StepCache: the StepHistory contract (shared with the in-memory double) and its extras."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cache_helpers import FakeClock, make_record, plan

from builder.plan.protocols import MemoryStepHistory, StepHistory
from cache import CacheStore, PlanRecord, RecordError, open_cache
from cache.records import dumps
from cache.steps import step_key


@pytest.fixture(params=["disk", "memory"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StepHistory, Any]]:
    """The real StepCache and the test double, each with a way to mark a key built."""
    if request.param == "memory":
        mem = MemoryStepHistory()
        yield mem, lambda key, d: mem.built.__setitem__(key, d)
    else:
        with open_cache(tmp_path / "c") as c:
            yield c.steps, lambda key, d: c.steps.record_step(make_record(key, duration=d))


def test_contract_built_and_duration(history: tuple[StepHistory, Any]) -> None:
    h, mark_built = history
    assert not h.is_built("k1")
    assert h.duration("k1") is None
    mark_built("k1", 4.5)
    assert h.is_built("k1")
    assert h.duration("k1") == 4.5
    assert not h.is_built("k2")


def test_contract_last_plan_is_the_latest_of_that_app(history: tuple[StepHistory, Any]) -> None:
    h, _ = history
    assert h.last_plan("a") is None
    h.record_plan("a", plan("a", "k1"))
    h.record_plan("b", plan("b", "k9"))
    h.record_plan("a", plan("a", "k2"))
    assert h.last_plan("a") == plan("a", "k2")
    assert h.last_plan("b") == plan("b", "k9")


def test_records_survive_reopening(cache_dir: Path) -> None:
    with open_cache(cache_dir) as c:
        c.steps.record_step(make_record("k1", duration=7.0))
        c.steps.record_plan("a", plan("a", "k2"))
    with open_cache(cache_dir) as c:
        assert c.steps.get("k1") == make_record("k1", duration=7.0)
        assert c.steps.last_plan("a") == plan("a", "k2")


def test_history_is_newest_first_limited_and_bounded(tmp_path: Path, clock: FakeClock) -> None:
    with open_cache(tmp_path / "c", clock=clock, history_limit=5) as c:
        for i in range(8):
            clock.advance(1)
            c.steps.record_plan("a", plan("a", f"k{i}"))
        records = c.steps.history("a", limit=20)
        assert [r.plan_json for r in records] == [plan("a", f"k{i}") for i in (7, 6, 5, 4, 3)]
        assert all(isinstance(r, PlanRecord) and r.app == "a" for r in records)
        assert [r.created_at for r in records] == sorted((r.created_at for r in records), reverse=True)
        assert len(c.steps.history("a", limit=2)) == 2
        assert c.summary().plans == 5


def test_identical_consecutive_plans_are_stored_once(store: CacheStore, clock: FakeClock) -> None:
    store.steps.record_plan("a", plan("a", "k1"))
    clock.advance(5)
    store.steps.record_plan("a", {"steps": [{"key": "k1", "id": "s0"}], "app": "a"})  # same content, other order
    assert len(store.steps.history("a")) == 1
    store.steps.record_plan("a", plan("a", "k2"))
    store.steps.record_plan("a", plan("a", "k1"))
    assert len(store.steps.history("a")) == 3


def test_record_plan_refuses_non_json(store: CacheStore) -> None:
    with pytest.raises(RecordError):
        store.steps.record_plan("a", {"bad": {1, 2}})
    assert store.steps.last_plan("a") is None


def test_touch_and_record_plan_update_last_use(store: CacheStore, clock: FakeClock) -> None:
    store.steps.record_step(make_record("k1", used=clock.now))
    store.steps.record_step(make_record("k2", used=clock.now))
    clock.advance(100)
    assert store.steps.touch("k1")
    assert not store.steps.touch("missing")
    first = store.steps.get("k1")
    assert first is not None and first.last_used_at == clock.now
    clock.advance(100)
    store.steps.record_plan("a", plan("a", "k2", "never-built"))
    second = store.steps.get("k2")
    assert second is not None and second.last_used_at == clock.now
    assert not store.steps.is_built("never-built")


def test_ls_is_most_recent_first_and_filters_by_app(store: CacheStore) -> None:
    store.steps.record_step(make_record("old", used=1.0))
    store.steps.record_step(make_record("new", used=3.0))
    store.steps.record_step(make_record("other", app="b", used=2.0))
    assert [r.key for r in store.steps.ls()] == ["new", "other", "old"]
    assert [r.key for r in store.steps.ls(app="b")] == ["other"]


def test_records_of_another_schema_read_as_missing(store: CacheStore) -> None:
    data = make_record("k1").to_json()
    data["schema"] = 99
    store._store.set(step_key("k1"), dumps(data))
    assert store.steps.get("k1") is None
    assert not store.steps.is_built("k1")
    assert store.steps.duration("k1") is None
    assert list(store.steps.ls()) == []


def test_garbage_values_read_as_missing(store: CacheStore) -> None:
    store._store.set(step_key("k1"), b"\x00not json")
    store._store.set("planidx/a", b"{broken")
    assert store.steps.get("k1") is None
    assert store.steps.last_plan("a") is None
    store.steps.record_plan("a", plan("a", "k1"))  # a broken index is replaced, not fatal
    assert store.steps.last_plan("a") == plan("a", "k1")


def test_apps_lists_apps_with_history(store: CacheStore) -> None:
    store.steps.record_plan("b", plan("b"))
    store.steps.record_plan("a/with/slash", plan("a/with/slash"))
    assert store.steps.apps() == ["a/with/slash", "b"]


def test_plan_record_bytes_equal_the_canonical_encoding() -> None:
    from cache.records import dumps as canonical
    from cache.steps import _plan_record_bytes

    plan_json = {"z": [1, {"b": 2, "a": "é"}], "app": "x"}
    record = PlanRecord(app="my/app", created_at=1234.5, plan_json=plan_json)
    assert _plan_record_bytes("my/app", 1234.5, canonical(plan_json)) == canonical(record.to_json())


def test_history_is_bounded_by_bytes_but_keeps_the_newest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cache.steps

    monkeypatch.setattr(cache.steps, "HISTORY_MAX_BYTES", 2500)
    with open_cache(tmp_path / "c") as c:
        for i in range(5):
            c.steps.record_plan("a", {"i": i, "pad": "x" * 1000})
        assert [p.plan_json["i"] for p in c.steps.history("a")] == [4, 3]
        c.steps.record_plan("a", {"i": 5, "pad": "x" * 5000})  # alone over the bound: still kept
        assert [p.plan_json["i"] for p in c.steps.history("a")] == [5]


def test_fingerprint_is_the_step_keys_when_every_step_has_one() -> None:
    from cache.steps import plan_fingerprint

    a = {"app": "x", "scheme": 1, "steps": [{"id": "base", "key": "k1", "inputs": {"image": "debian"}}]}
    b = {"app": "x", "scheme": 1, "steps": [{"id": "base", "key": "k1", "inputs": {"image": "debian"}, "name": "n"}]}
    assert plan_fingerprint(a) == plan_fingerprint(b)  # display-only fields do not make a new plan
    assert plan_fingerprint(a) != plan_fingerprint({**a, "app": "y"})
    assert plan_fingerprint(a) != plan_fingerprint({**a, "steps": [{"id": "base", "key": "k2"}]})
    assert plan_fingerprint(a) != plan_fingerprint({**a, "steps": [{"id": "python", "key": "k1"}]})
    keyless = {"app": "x", "steps": [{"id": "base"}]}
    assert plan_fingerprint(keyless).startswith("json:")
    assert plan_fingerprint(keyless) != plan_fingerprint({"app": "x", "steps": [{"id": "pip"}]})


def test_touch_within_a_minute_keeps_the_recorded_last_use(store: CacheStore, clock: FakeClock) -> None:
    from cache.steps import TOUCH_GRANULARITY_S

    store.steps.record_step(make_record("k1", used=clock.now))
    first_use = clock.now
    clock.advance(TOUCH_GRANULARITY_S / 2)
    assert store.steps.touch("k1")  # still reported as recorded
    record = store.steps.get("k1")
    assert record is not None and record.last_used_at == first_use
    clock.advance(TOUCH_GRANULARITY_S)
    assert store.steps.touch("k1")
    record = store.steps.get("k1")
    assert record is not None and record.last_used_at == clock.now


def test_mark_pruned_forgets_the_step_until_it_is_built_again(tmp_path: Path) -> None:
    with open_cache(tmp_path / "c") as c:
        c.steps.record_step(make_record("k1"))
        assert c.steps.pruned("k1") is None
        assert c.steps.mark_pruned("k1", "engine prune on X") is True
        assert not c.steps.is_built("k1") and c.steps.pruned("k1") == "engine prune on X"
        assert c.steps.mark_pruned("never-built", "x") is False and c.steps.pruned("never-built") is None
        c.steps.record_step(make_record("k1"))
        assert c.steps.is_built("k1") and c.steps.pruned("k1") is None


def test_contract_engines_of_a_step(history: tuple[StepHistory, Any]) -> None:
    steps, mark_built = history
    assert steps.engines("k1") is None  # type: ignore[attr-defined]
    mark_built("k1", 1.0)
    assert steps.engines("k1") == {}  # type: ignore[attr-defined]  # recorded without engines: any engine


def test_seen_on_adds_the_engine_and_cache_to_a_record(store: CacheStore) -> None:
    assert not store.steps.seen_on("k", "dockerd:a", "dockerd 26 (ID a)")
    store.steps.record_step(make_record("k"))
    assert store.steps.seen_on("k", "dockerd:a", "dockerd 26 (ID a)", when=100.0, cache="reg/c:app")
    assert store.steps.seen_on("k", "dockerd:b", "dockerd 20 (ID b)", when=50.0)
    record = store.steps.get("k")
    assert record is not None
    assert record.engines == {"dockerd:a": "dockerd 26 (ID a)", "dockerd:b": "dockerd 20 (ID b)"}
    assert record.caches == ("reg/c:app",) and record.last_used_at == 100.0
    assert store.steps.engines("k") == record.engines
