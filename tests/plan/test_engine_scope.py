"""Predictions scoped to one engine, against the in-memory StepHistory (no engine, no disk)."""

from __future__ import annotations

from pathlib import Path

from plan_helpers import FULL_TOML, plan_of, write_project

from builder.diagnostics import Diagnostic
from builder.engines.identity import EngineIdentity, _dockerd_identity
from builder.history import EngineScope, SafeHistory
from builder.plan import Plan, analyze
from builder.plan.protocols import MemoryStepHistory
from builder.plan.render.json import plan_document
from builder.plan.render.text import render_plan

OLD = EngineIdentity("dockerd:5HKQ:IPJU", "dockerd 20.10.24 (ID 5HKQ:IPJU)")
NEW = EngineIdentity("dockerd:e710def8", "dockerd 26.1.5 (ID e710def8)")


def _built_on(plan: Plan, engines: dict[str, str] | None) -> MemoryStepHistory:
    history = MemoryStepHistory()
    history.record_plan(plan.app, plan.to_json())
    for step in plan.steps:
        history.built[step.key] = 3.0
        if engines is not None:
            history.built_on[step.key] = dict(engines)
    return history


def _scoped(history: MemoryStepHistory, lookup: object, warnings: list[Diagnostic]) -> SafeHistory:
    return SafeHistory(history, warnings, EngineScope(lookup, warnings))  # type: ignore[arg-type]


def test_steps_built_on_another_engine_miss_and_name_it(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    warnings: list[Diagnostic] = []
    history = _scoped(_built_on(plan, {OLD.id: OLD.description}), lambda: NEW, warnings)
    analysis = analyze(plan, history)
    assert [s.status for s in analysis.steps] == ["miss"] * len(plan.steps)
    for status in analysis.steps:
        assert status.reason == (
            "built on dockerd 20.10.24 (ID 5HKQ:IPJU), not on this engine (dockerd 26.1.5 (ID e710def8))"
        )
        assert [c.name for c in status.causes] == ["built on another engine"]
        assert status.estimated_seconds == 3.0  # the other engine's time is still the best estimate
    assert warnings == []


def test_steps_built_on_this_engine_hit(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    history = _scoped(_built_on(plan, {OLD.id: OLD.description, NEW.id: NEW.description}), lambda: NEW, [])
    assert {s.status for s in analyze(plan, history).steps} == {"hit"}


def test_records_without_engines_hold_for_any_engine_and_no_engine_is_asked(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    asked: list[int] = []
    history = _scoped(_built_on(plan, None), lambda: asked.append(1) or NEW, [])
    assert {s.status for s in analyze(plan, history).steps} == {"hit"}
    assert asked == []


def test_no_engine_reachable_predicts_from_any_engine_and_says_so(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    warnings: list[Diagnostic] = []

    def unreachable() -> EngineIdentity:
        raise OSError("connection refused")

    scope = EngineScope(unreachable, warnings)
    history = SafeHistory(_built_on(plan, {OLD.id: OLD.description}), warnings, scope)
    analysis = analyze(plan, history)
    assert {s.status for s in analysis.steps} == {"hit"}
    assert len(warnings) == 1 and warnings[0].key_path == "engine"
    assert "no engine reachable (connection refused)" in warnings[0].message
    target = scope.predicted_for()
    assert target["engine"] is None and "no engine" in target["note"]


def test_the_plan_document_and_text_say_for_which_engine(tmp_path: Path) -> None:
    from dataclasses import replace

    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    scope = EngineScope(lambda: NEW, [])
    analysis = analyze(plan, SafeHistory(_built_on(plan, {NEW.id: NEW.description}), [], scope))
    analysis = replace(analysis, predicted_for=scope.predicted_for(["127.0.0.1:5000/cache:app"]))
    document = plan_document(plan, analysis)
    assert document["predicted_for"] == {
        "engine": {"id": NEW.id, "description": NEW.description},
        "note": "engine dockerd 26.1.5 (ID e710def8); shared cache 127.0.0.1:5000/cache:app",
        "cache_from": ["127.0.0.1:5000/cache:app"],
    }
    assert "predicted for engine dockerd 26.1.5 (ID e710def8)" in render_plan(plan, analysis)
    bare = plan_document(plan, analyze(plan, None))
    assert "predicted_for" not in bare


def test_a_plan_without_records_asks_no_engine(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    asked: list[int] = []
    scope = EngineScope(lambda: asked.append(1) or NEW, [])
    analyze(plan, SafeHistory(MemoryStepHistory(), [], scope))
    assert scope.predicted_for()["engine"] is None and asked == []
    assert scope.predicted_for(ask=True)["engine"] == NEW.to_json() and asked == [1]


def test_dockerd_identity_comes_from_info() -> None:
    found = _dockerd_identity({"ID": "e710def8-c739-42f6-847e-1d777b6dc147", "ServerVersion": "26.1.5"})
    assert found.id == "dockerd:e710def8-c739-42f6-847e-1d777b6dc147"
    assert found.description == "dockerd 26.1.5 (ID e710def8-c73…)"
