"""Shared step records: the document, its strict reading, the local form, and planning against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_helpers import FULL_TOML, plan_of, write_project

from builder.engines import StepOutcome
from builder.engines.step_records import (
    LOCAL_NAME,
    MAX_BYTES,
    RecordsUnavailable,
    _Ref,
    cache_manifest,
    decode,
    encode,
    read_records,
    write_records,
)
from builder.plan import Plan, analyze
from builder.plan.cache_specs import parse_cache_spec
from builder.plan.protocols import MemoryStepHistory
from builder.shared_history import SharedHistory, SharedRecords, steps_document


class _Result:
    def __init__(self, plan: Plan) -> None:
        self.steps = tuple(StepOutcome(s.id.value, s.key, "sha256:v", False, 2.5, "miss", 10) for s in plan.steps)


def _document(plan: Plan, manifest: str | None = "sha256:" + "a" * 64) -> dict[str, Any]:
    return steps_document(plan, _Result(plan), "127.0.0.1:5000/app:cache", manifest)


def test_the_document_holds_keys_recipes_and_the_cache_manifest_only(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    doc = _document(plan)
    assert [s["key"] for s in doc["steps"]] == [s.key for s in plan.steps]
    assert all(isinstance(s["recipe"], int) and s["duration_s"] == 2.5 for s in doc["steps"])
    assert doc["cache_manifest"] == "sha256:" + "a" * 64 and doc["schema"] == "builder-steps/1"
    assert decode(encode(doc), "here") == json.loads(json.dumps(doc))


def test_a_fresh_runner_predicts_every_step_from_the_shared_records(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    doc = _document(plan)
    shared = SharedHistory(MemoryStepHistory(), [SharedRecords("127.0.0.1:5000/app:cache", doc, doc["cache_manifest"])])
    analysis = analyze(plan, shared)
    assert {s.status for s in analysis.steps} == {"hit"}
    assert {s.reason for s in analysis.steps} == {"hit: shared cache 127.0.0.1:5000/app:cache"}


def test_local_records_come_first_and_say_cached(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    local = MemoryStepHistory()
    local.built[plan.steps[0].key] = 1.0
    doc = _document(plan)
    analysis = analyze(plan, SharedHistory(local, [SharedRecords("ref", doc, doc["cache_manifest"])]))
    assert analysis.steps[0].reason == "cached" and analysis.steps[1].reason == "hit: shared cache ref"


def test_a_changed_step_misses_with_the_reason_from_the_shared_plan(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    before = plan_of(root)
    doc = _document(before)
    (root / "cerebrium.toml").write_text(FULL_TOML.replace('"==2.0.0"', '"==2.1.0"', 1))
    after = plan_of(root)
    analysis = analyze(after, SharedHistory(None, [SharedRecords("ref", doc, doc["cache_manifest"])]))
    misses = {s.id.value: s.reason for s in analysis.steps if s.status == "miss"}
    assert "pip" in misses and "2.0.0" in misses["pip"] and "2.1.0" in misses["pip"]
    assert analysis.status("base").status == "hit"


@pytest.mark.parametrize(
    ("manifest_now", "words"),
    [(None, "the cache manifest is gone"), ("sha256:" + "b" * 64, "was exported again")],
)
def test_records_of_a_gone_or_replaced_cache_predict_misses_that_say_so(
    tmp_path: Path, manifest_now: str | None, words: str
) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    analysis = analyze(plan, SharedHistory(None, [SharedRecords("ref", _document(plan), manifest_now)]))
    assert {s.status for s in analysis.steps} == {"miss"}
    assert all(words in s.reason for s in analysis.steps)


def test_local_records_round_trip_next_to_the_cache(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    folder = tmp_path / "cache"
    to = parse_cache_spec(f"type=local,dest={folder}", flag="--cache-to")
    frm = parse_cache_spec(f"type=local,src={folder}", flag="--cache-from")
    assert read_records(frm) is None and cache_manifest(frm, exporting=False) is None
    doc = _document(plan)
    assert write_records(to, doc) == str(folder / LOCAL_NAME)
    assert read_records(frm) == json.loads(json.dumps(doc))
    blob = folder / "blobs" / "sha256" / ("c" * 64)
    blob.parent.mkdir(parents=True)
    blob.write_text("{}")
    index = {
        "manifests": [{"digest": "sha256:" + "c" * 64, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]
    }
    (folder / "index.json").write_text(json.dumps(index))
    assert cache_manifest(frm, exporting=False) == "sha256:" + "c" * 64
    blob.unlink()
    assert cache_manifest(frm, exporting=False) is None


@pytest.mark.parametrize(
    "data",
    [
        b"\x80not utf-8",
        b'{"schema": "builder-steps/1", "steps": [NaN]}',
        b'{"schema": "builder-steps/2", "steps": []}',
        b"[]",
        b'{"schema": "builder-steps/1"}',
        b"\x80\x04\x95pickle",
    ],
)
def test_anything_but_a_strict_json_document_is_refused(data: bytes) -> None:
    with pytest.raises(RecordsUnavailable):
        decode(data, "somewhere")


def test_documents_are_size_limited() -> None:
    big = {"schema": "builder-steps/1", "steps": [], "pad": "x" * MAX_BYTES}
    with pytest.raises(RecordsUnavailable, match="byte limit"):
        encode(big)
    with pytest.raises(RecordsUnavailable, match="byte limit"):
        decode(b" " * (MAX_BYTES + 1), "somewhere")


@given(st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=5))
def test_decode_reads_what_encode_writes(extra: dict[str, Any]) -> None:
    doc = {**extra, "schema": "builder-steps/1", "steps": [{"key": "k"}]}
    assert decode(encode(doc), "here") == doc


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("127.0.0.1:5000/app:cache", ("127.0.0.1:5000", "app", "cache")),
        ("reg.example/team/app", ("reg.example", "team/app", "latest")),
        ("localhost:5000/a/b:v1@sha256:" + "d" * 64, ("localhost:5000", "a/b", "v1")),
    ],
)
def test_references_split_for_the_v2_api(ref: str, parts: tuple[str, str, str]) -> None:
    found = _Ref.parse(ref)
    assert (found.host, found.repository, found.tag) == parts


def test_a_tag_too_long_for_the_records_suffix_is_refused() -> None:
    with pytest.raises(RecordsUnavailable, match="not a valid tag"):
        _Ref.parse("127.0.0.1:5000/app:cache").with_tag("x" * 129)
