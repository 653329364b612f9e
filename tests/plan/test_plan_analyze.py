"""Hit/miss analysis against an in-memory StepHistory: causes, field diffs, estimates."""

from __future__ import annotations

from pathlib import Path

from plan_helpers import FULL_TOML, plan_of, write_project

from builder.plan import Plan, analyze
from builder.plan.protocols import MemoryStepHistory


def built(plan: Plan, history: MemoryStepHistory, seconds: float = 10.0) -> MemoryStepHistory:
    """Record ``plan`` as planned and every step as built (``seconds`` each)."""
    history.record_plan(plan.app, plan.to_json())
    for step in plan.steps:
        history.built[step.key] = seconds
    return history


def statuses(analysis) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {s.id.value: (s.status, s.reason) for s in analysis.steps}


def _edit(tmp_path: Path, old: str, new: str) -> tuple[Plan, Plan]:
    root = write_project(tmp_path / "p", FULL_TOML)
    before = plan_of(root)
    (root / "cerebrium.toml").write_text(FULL_TOML.replace(old, new, 1))
    return before, plan_of(root)


def test_first_plan_misses_everything_without_history(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    analysis = analyze(plan, MemoryStepHistory())
    assert all(s.status == "miss" for s in analysis.steps)
    assert "not built before" in analysis.steps[0].reason
    assert analysis.estimated_seconds is None
    assert analyze(plan, None).misses == analysis.misses


def test_unchanged_project_hits_everywhere(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    analysis = analyze(plan, built(plan, MemoryStepHistory()))
    assert [s.status for s in analysis.steps] == ["hit"] * len(plan.steps)
    assert all(s.reason == "cached" and s.estimated_seconds == 0.0 for s in analysis.steps)
    assert analysis.summary() == f"all {len(plan.steps)} steps cached"


def test_pip_change_names_the_package_and_later_steps_blame_the_parent(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, 'torch = "==2.0.0"', 'torch = "==2.1.0"')
    analysis = analyze(after, built(before, MemoryStepHistory(), seconds=12.5))
    got = statuses(analysis)
    for step in ("base", "python", "pre_build", "apt", "conda"):
        assert got[step] == ("hit", "cached")
    assert got["pip"] == ("miss", "pip: torch ==2.0.0 → ==2.1.0")
    assert got["files"] == ("miss", "parent changed (pip)")
    assert got["shell"] == ("miss", "parent changed (pip)")
    assert analysis.cause is not None and analysis.cause.value == "pip"
    assert analysis.status("pip").estimated_seconds == 12.5  # from the previous key's duration
    assert analysis.estimated_seconds == 12.5 * 4
    assert analysis.summary() == "4 of 9 steps rebuild (cause: pip), estimated 50.0 s"


def test_base_change_invalidates_every_step(tmp_path: Path) -> None:
    before, after = _edit(
        tmp_path, 'docker_base_image_url = "debian:bookworm-slim"', 'docker_base_image_url = "ubuntu:22.04"'
    )
    got = statuses(analyze(after, built(before, MemoryStepHistory())))
    assert got["base"] == (
        "miss",
        "base: image docker.io/library/debian:bookworm-slim → docker.io/library/ubuntu:22.04 (invalidates every step)",
    )
    assert all(status == "miss" for status, _ in got.values())
    assert got["python"][1] == "parent changed (base)"


def test_config_only_change_is_no_layer_rebuild(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, "max_replicas = 2", "max_replicas = 5")
    analysis = analyze(after, built(before, MemoryStepHistory()))
    assert [s.id.value for s in analysis.misses] == ["config"]
    assert analysis.config_only
    assert analysis.status("config").reason == "no layer rebuild: image config only (scaling.max_replicas 2 → 5)"
    assert "no layer rebuild" in analysis.summary()


def test_comment_edit_is_reported_as_a_config_file_edit(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, "[cerebrium.hardware]", "# note\n[cerebrium.hardware]")
    analysis = analyze(after, built(before, MemoryStepHistory()))
    assert analysis.status("config").reason == (
        "no layer rebuild: image config only (/app/cerebrium.toml edited (no setting changed))"
    )


def test_file_changes_are_counted_and_named(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    before = plan_of(root)
    for name in ("main.py", "utils.py", "data/x.txt"):
        (root / name).write_text("changed\n")
    (root / "new.py").write_text("x\n")
    got = statuses(analyze(plan_of(root), built(before, MemoryStepHistory())))
    assert got["files"] == ("miss", "files: 3 changed, 1 added (data/x.txt, main.py, utils.py, …)")
    assert got["shell"] == ("miss", "parent changed (files)")


def test_mode_and_removal_are_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    before = plan_of(root)
    (root / "utils.py").chmod(0o755)
    (root / "main.py").unlink()
    got = statuses(analyze(plan_of(root), built(before, MemoryStepHistory())))
    assert got["files"][1] == "files: 1 mode changed, 1 removed (utils.py, main.py)"


def test_same_key_not_built_says_so(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    history = MemoryStepHistory()
    history.record_plan(plan.app, plan.to_json())
    assert "not built yet" in analyze(plan, history).steps[0].reason


def test_new_step_is_reported(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, '[cerebrium.dependencies.apt]\nffmpeg = "latest"\n', "")
    history = built(after, MemoryStepHistory())
    history.built.clear()
    back = analyze(before, history)
    assert back.status("apt").reason == "new step (not in the last plan)"


def test_apt_and_shell_changes_have_field_diffs(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, 'ffmpeg = "latest"', 'ffmpeg = "latest"\ncurl = "7.88.1-10"')
    assert analyze(after, built(before, MemoryStepHistory())).status("apt").reason == "apt: +curl =7.88.1-10"
    before, after = _edit(tmp_path / "s", 'shell_commands = ["echo done"]', 'shell_commands = ["echo bye"]')
    assert (
        analyze(after, built(before, MemoryStepHistory())).status("shell").reason == "shell: -$ echo done; +$ echo bye"
    )


def test_installer_switch_is_named(tmp_path: Path) -> None:
    before, after = _edit(tmp_path, "use_uv = false", "use_uv = true")
    reason = analyze(after, built(before, MemoryStepHistory())).status("pip").reason
    assert "installer pip → uv" in reason


def test_unreadable_recorded_plan_is_treated_as_no_history(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    history = MemoryStepHistory()
    for garbage in ({"steps": [{"id": "no-such-kind", "key": "k"}]}, {"steps": [{"key": "k"}]}, {"steps": "x"}):
        history.record_plan(plan.app, garbage)
        analysis = analyze(plan, history)
        assert all(s.status == "miss" and "not built before" in s.reason for s in analysis.steps)


def test_a_step_the_engine_pruned_says_so(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))

    class PrunedHistory(MemoryStepHistory):
        def pruned(self, key: str) -> str | None:
            return "`builder engine prune` on docker+tcp://h:2376" if key == plan.steps[1].key else None

    history = PrunedHistory()
    history.record_plan(plan.app, plan.to_json())
    reasons = [s.reason for s in analyze(plan, history).steps]
    assert reasons[1] == "the engine pruned it (`builder engine prune` on docker+tcp://h:2376)"
    assert "not built yet" in reasons[0]
