"""Records: JSON round trip, schema versions, and field validation."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache import CacheStats, PlanRecord, RecordError, RecordSchemaError, StepRecord
from cache.records import RECORD_SCHEMA, dumps, loads

_json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
_json = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_time = st.floats(min_value=0, max_value=4e9, allow_nan=False)

step_records = st.builds(
    StepRecord,
    key=st.text(min_size=1, max_size=64),
    kind=st.sampled_from(["base", "python", "apt", "pip", "files", "config"]),
    step_id=st.text(min_size=1, max_size=16),
    app=st.text(max_size=32),
    engine=st.sampled_from(["buildkit", "dockerfile"]),
    inputs_manifest=st.dictionaries(st.text(max_size=8), _json, max_size=5),
    result_digest=st.none() | st.text(max_size=71),
    duration_s=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    size_bytes=st.integers(min_value=0, max_value=2**50),
    created_at=_time,
    last_used_at=_time,
)


def _step(**changes: Any) -> StepRecord:
    base = {
        "key": "k" * 64,
        "kind": "pip",
        "step_id": "pip",
        "app": "app",
        "engine": "buildkit",
        "inputs_manifest": {"requirements": ["torch==2.1.0"]},
        "result_digest": "sha256:00",
        "duration_s": 12.5,
        "size_bytes": 1024,
        "created_at": 10.0,
        "last_used_at": 20.0,
    }
    base.update(changes)
    return StepRecord(**base)


@given(step_records)
def test_step_record_round_trips_through_json_bytes(record: StepRecord) -> None:
    assert StepRecord.from_json(loads(dumps(record.to_json()))) == record


@given(st.text(max_size=20), _time, st.dictionaries(st.text(max_size=8), _json, max_size=5))
def test_plan_record_round_trips(app: str, created: float, plan: dict[str, Any]) -> None:
    record = PlanRecord(app=app, created_at=created, plan_json=plan)
    assert PlanRecord.from_json(loads(dumps(record.to_json()))) == record


def test_cache_stats_round_trip() -> None:
    stats = CacheStats(
        path="/c",
        schema=RECORD_SCHEMA,
        steps=1,
        apps=2,
        plans=3,
        stat_roots=4,
        stat_files=5,
        resolutions=6,
        entry_bytes=7,
        disk_bytes=8,
        layer_bytes=9,
        oldest_used_at=None,
        newest_used_at=1.5,
    )
    assert CacheStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats


def test_to_json_is_canonical_bytes() -> None:
    a = dumps({"b": 1, "a": [1, 2], "c": {"z": 1, "y": 2}})
    b = dumps({"c": {"y": 2, "z": 1}, "a": [1, 2], "b": 1})
    assert a == b == b'{"a":[1,2],"b":1,"c":{"y":2,"z":1}}'


@pytest.mark.parametrize("schema", [None, 0, RECORD_SCHEMA + 1, "1"])
def test_other_schema_versions_are_rejected_as_schema_errors(schema: object) -> None:
    data = _step().to_json()
    data["schema"] = schema
    with pytest.raises(RecordSchemaError, match="schema"):
        StepRecord.from_json(data)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("key", 5, r"step record\.key: expected str, got int"),
        ("duration_s", "fast", r"step record\.duration_s: expected int or float"),
        ("duration_s", True, r"step record\.duration_s: expected int or float, got bool"),
        ("size_bytes", 1.5, r"step record\.size_bytes: expected int, got float"),
        ("inputs_manifest", [], r"step record\.inputs_manifest: expected dict, got list"),
        ("result_digest", 3, r"step record\.result_digest: expected str or null, got int"),
    ],
)
def test_malformed_fields_are_named(field: str, value: object, message: str) -> None:
    data = _step().to_json()
    data[field] = value
    with pytest.raises(RecordError, match=message):
        StepRecord.from_json(data)


def test_missing_field_is_named() -> None:
    data = _step().to_json()
    del data["engine"]
    with pytest.raises(RecordError, match=r"step record\.engine: missing"):
        StepRecord.from_json(data)


def test_non_object_and_non_json_are_record_errors() -> None:
    with pytest.raises(RecordError, match="expected a JSON object"):
        PlanRecord.from_json([1, 2])
    with pytest.raises(RecordError, match="not valid JSON"):
        loads(b"\xff\x00garbage")


@pytest.mark.parametrize("bad", [{"x": math.nan}, {"x": object()}, {"x": {1, 2}}])
def test_dumps_refuses_non_json_values(bad: dict[str, object]) -> None:
    with pytest.raises(RecordError, match="not JSON-serialisable"):
        dumps(bad)


def test_used_at_only_moves_forward() -> None:
    record = _step(last_used_at=20.0)
    assert record.used_at(30.0).last_used_at == 30.0
    assert record.used_at(5.0).last_used_at == 20.0


def test_step_records_say_which_engines_and_caches_they_hold_for() -> None:
    record = _step().seen_on("dockerd:abc", "dockerd 26.1.5 (ID abc)", 10.0, "127.0.0.1:5000/c:app")
    again = record.seen_on("dockerd:def", "dockerd 20.10 (ID def)", 5.0, "127.0.0.1:5000/c:app")
    assert again.engines == {"dockerd:abc": "dockerd 26.1.5 (ID abc)", "dockerd:def": "dockerd 20.10 (ID def)"}
    assert again.caches == ("127.0.0.1:5000/c:app",) and again.last_used_at == max(_step().last_used_at, 10.0)
    assert StepRecord.from_json(loads(dumps(again.to_json()))) == again


def test_step_records_written_before_engines_read_as_any_engine() -> None:
    data = _step().to_json()
    del data["engines"], data["caches"]
    old = StepRecord.from_json(data)
    assert old.engines == {} and old.caches == ()
    data["engines"] = ["not", "a", "mapping"]
    with pytest.raises(RecordError, match="engines"):
        StepRecord.from_json(data)
