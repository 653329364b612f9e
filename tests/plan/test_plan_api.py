"""The Python API: plan_project wiring (cache optional), make_plan defaults, public names."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_helpers import FULL_TOML, write_project

import builder
from builder.api import plan_project
from builder.errors import ConfigError


def test_public_names() -> None:
    for name in (
        "make_plan",
        "analyze",
        "diff_plans",
        "plan_project",
        "diff_projects",
        "diff_git",
        "Plan",
        "Step",
        "StepKind",
        "StepRef",
        "CacheMount",
        "FileManifest",
        "Analysis",
        "PlanDiff",
        "KEY_SCHEME_VERSION",
    ):
        assert name in builder.__all__


def test_make_plan_resolves_dependencies_itself(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    plan = builder.make_plan(builder.load_config(root))
    assert "torch==2.0.0" in plan.step("pip").inputs.requirements_txt


def test_plan_project_records_history(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    cache = tmp_path / "cache"
    plan, analysis, diagnostics = plan_project(root, cache_dir=cache, record=False)
    assert "no earlier plan" in analysis.steps[0].reason
    assert not any(d.key_path == "cache" for d in diagnostics)
    plan_project(root, cache_dir=cache)
    (root / "main.py").write_text("changed\n")
    plan2, analysis2, _ = plan_project(root, cache_dir=cache)
    assert plan2.step("base").key == plan.step("base").key
    assert analysis2.status("files").reason == "files: 1 changed (main.py)"
    assert analysis2.status("base").reason.startswith("same key as the last plan")


def test_plan_project_without_the_cache_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cache", None)  # import cache → ImportError
    root = write_project(tmp_path / "p", FULL_TOML)
    plan, analysis, diagnostics = plan_project(root, cache_dir=tmp_path / "c")
    assert [d.key_path for d in diagnostics].count("cache") == 1
    assert len(analysis.misses) == len(plan.steps)


def test_plan_project_survives_a_failing_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cache

    def broken(self, key):  # type: ignore[no-untyped-def]
        raise OSError("disk on fire")

    monkeypatch.setattr(cache.StepCache, "is_built", broken)
    root = write_project(tmp_path / "p", FULL_TOML)
    _, analysis, diagnostics = plan_project(root, cache_dir=tmp_path / "c")
    warnings = [d.message for d in diagnostics if d.key_path == "cache"]
    assert len(warnings) == 1 and "disk on fire" in warnings[0]
    assert all(s.status == "miss" for s in analysis.steps)


def test_plan_project_reports_config_warnings(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML + "\n[cerebrium.build]\nuse_uv = true\n")
    _, _, diagnostics = plan_project(root, cache_dir=tmp_path / "c", record=False)
    assert any(d.level == "warning" and "cerebrium.build" in d.key_path for d in diagnostics)


def test_plan_project_invalid_config(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML.replace('python_version = "3.11"', 'python_version = "2.7"'))
    with pytest.raises(ConfigError):
        plan_project(root, cache_dir=tmp_path / "c")


def test_step_records_keep_file_manifests_by_digest_only(tmp_path: Path) -> None:
    """A step record is read on every plan and build: a file list in it is not (the plan history has it)."""
    from builder.history import recorded_inputs

    root = write_project(tmp_path / "p", FULL_TOML)
    plan = builder.make_plan(builder.load_config(root))
    files = plan.step("files").inputs_json()
    recorded = recorded_inputs(files)
    assert recorded["manifest"] == {"digest": files["manifest"]["digest"], "count": files["manifest"]["count"]}
    assert {k: v for k, v in recorded.items() if k != "manifest"} == {k: v for k, v in files.items() if k != "manifest"}
    nested = {
        "local": {"paths": ["pkg"], "manifest": {"digest": "sha256:x", "count": 1, "files": [["a", "file", 1, "b"]]}}
    }
    assert recorded_inputs(nested) == {"local": {"paths": ["pkg"], "manifest": {"digest": "sha256:x", "count": 1}}}
    assert recorded_inputs(plan.step("pip").inputs_json()) == plan.step("pip").inputs_json()


def test_plan_history_reads_a_lazy_view_and_stores_the_full_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cache as cache_pkg
    from builder.plan.model import Step
    from cache.steps import plan_fingerprint

    root = write_project(tmp_path / "p", FULL_TOML)
    plan = builder.make_plan(builder.load_config(root))
    view = plan.json_view()
    assert plan_fingerprint(view) == plan_fingerprint(plan.to_json())
    assert {k: view[k] for k in ("app", "scheme")} == {"app": plan.app, "scheme": plan.scheme}
    assert [dict(s) for s in view["steps"]] == plan.to_json()["steps"]
    store = cache_pkg.open_cache(tmp_path / "cache")
    try:
        store.steps.record_plan(plan.app, plan.json_view())
        assert store.steps.last_plan(plan.app) == plan.to_json()  # stored whole
        encoded: list[str] = []
        original = Step.inputs_json
        monkeypatch.setattr(Step, "inputs_json", lambda self: encoded.append(self.id.value) or original(self))
        store.steps.record_plan(plan.app, plan.json_view())  # the same plan again: only ids and keys are read
        assert encoded == []
    finally:
        store.close()


def test_a_walker_passed_in_lists_the_files_and_the_cli_passes_it_through(tmp_path: Path) -> None:
    from builder.cli import main
    from builder.plan.fileset import FileRules, Walked, walk

    root = write_project(tmp_path / "p", FULL_TOML)
    (root / "extra.py").write_text("x = 1\n")

    class Recording:
        def __init__(self, hide: str | None = None) -> None:
            self.calls: list[tuple[str, FileRules]] = []
            self.hide = hide

        def walk(self, base: str, rules: FileRules) -> Walked:
            self.calls.append((base, rules))
            found, executable, notes, skipped = walk(base, rules)
            return [f for f in found if f[0] != self.hide], executable, notes, skipped

    walker = Recording()
    plan, _analysis, _ = plan_project(root, record=False, walker=walker)
    assert plan == plan_project(root, record=False)[0]  # an honest walker changes nothing
    assert [base for base, _rules in walker.calls] == [str(root.resolve())]
    hiding = Recording(hide="extra.py")  # what the walker returns is what the files step gets
    assert plan_project(root, record=False, walker=hiding)[0].step("files").key != plan.step("files").key
    through_cli = Recording()
    assert main(["plan", str(root), "--no-record", "--cache-dir", str(tmp_path / "c")], walker=through_cli) == 0
    assert len(through_cli.calls) == 1
