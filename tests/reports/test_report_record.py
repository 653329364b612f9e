"""The build record: observed vs predicted, causes from the analysis, and the two causes only a build sees."""

from __future__ import annotations

from pathlib import Path

from builder.engines import BuildResult, StepOutcome
from builder.plan import Plan, analyze
from builder.plan.protocols import MemoryStepHistory
from builder.reports.record import build_record
from tests.plan.plan_helpers import FULL_TOML, plan_of, write_project


def result_for(plan: Plan, predictions: dict[str, str], ran: set[str], engine: str = "dockerd 26") -> BuildResult:
    """What the engine would report: ``ran`` steps took 2 s and added 100 bytes, the rest were cached."""
    steps = []
    for s in plan.steps:
        did = s.id.value in ran
        steps.append(
            StepOutcome(
                s.id.value,
                s.key,
                "sha256:v",
                not did,
                2.0 if did else 0.0,
                predictions.get(s.id.value),
                100 if did else 0,
            )
        )  # type: ignore[arg-type]
    return BuildResult(None, None, tuple(steps), (), 9.0, engine)


def test_record_names_causes_and_saved_seconds(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    plan = plan_of(root)
    history = MemoryStepHistory()
    history.record_plan(plan.app, plan.to_json())
    for step in plan.steps:
        history.built[step.key] = 5.0
    (root / "cerebrium.toml").write_text(FULL_TOML.replace('torch = "==2.0.0"', 'torch = "==2.1.0"'))
    changed = plan_of(root)
    analysis = analyze(changed, history)
    predicted = {s.id.value: s.status for s in analysis.steps}
    ran = {k for k, v in predicted.items() if v == "miss"}
    record = build_record(
        changed,
        analysis,
        result_for(changed, predicted, ran),
        saved={s.key: 5.0 for s in changed.steps},
        base_image_id="sha256:b",
        at=1.0,
    )
    steps = {s["id"]: s for s in record["steps"]}
    assert steps["pip"]["causes"] == [{"kind": "setting", "name": "cerebrium.dependencies.pip.torch"}]
    assert steps["shell"]["causes"] == [{"kind": "parent", "name": "parent changed", "via": "pip"}]
    assert steps["pip"]["bytes"] == 100 and steps["pip"]["saved_s"] is None
    assert steps["base"] == {
        "id": "base",
        "predicted": "hit",
        "observed": "hit",
        "seconds": 0.0,
        "saved_s": 5.0,
        "bytes": 0,
        "causes": [],
    }
    assert record["app"] == plan.app and record["at"] == 1.0 and record["base_image_id"] == "sha256:b"


def test_unexpected_rebuilds_blame_a_retag_or_the_engine(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    history = MemoryStepHistory()
    history.record_plan(plan.app, plan.to_json())
    for step in plan.steps:
        history.built[step.key] = 5.0
    analysis = analyze(plan, history)
    hits = {s.id.value: "hit" for s in plan.steps}
    ran = {s.id.value for s in plan.steps if s.id.value != "base"}
    previous = {"engine": "dockerd 26", "base_image_id": "sha256:old"}

    def causes(base_id: str | None, prev: dict[str, str] | None, engine: str = "dockerd 26") -> set[str]:
        record = build_record(
            plan, analysis, result_for(plan, hits, ran, engine), saved={}, base_image_id=base_id, previous=prev
        )
        return {c["name"] for s in record["steps"] for c in s["causes"]}

    assert causes("sha256:new", previous) == {"base image re-tagged"}
    assert causes("sha256:old", previous) == {"engine cache pruned"}
    assert causes(None, previous) == {"engine cache pruned"}
    assert causes("sha256:new", None) == {"engine cache pruned"}
    assert causes("sha256:new", previous, engine="dockerd 20") == {"engine cache pruned"}
