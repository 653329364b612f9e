"""Miss causes as names: one row per kind of edit, each planned for real and analysed against history."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_helpers import FULL_TOML, plan_of, write_project

from builder.plan import analyze
from builder.plan.causes import MAX_FILES, Cause, input_causes
from builder.plan.protocols import MemoryStepHistory


def _built(plan, history: MemoryStepHistory) -> MemoryStepHistory:  # type: ignore[no-untyped-def]
    history.record_plan(plan.app, plan.to_json())
    for step in plan.steps:
        history.built[step.key] = 5.0
    return history


EDITS = [
    ('torch = "==2.0.0"', 'torch = "==2.1.0"', "pip", [("setting", "cerebrium.dependencies.pip.torch")]),
    ('numpy = "latest"', 'numpy = "latest"\nscipy = "==1.0"', "pip", [("setting", "cerebrium.dependencies.pip.scipy")]),
    (
        'ffmpeg = "latest"',
        'ffmpeg = "latest"\ncurl = "latest"',
        "apt",
        [("setting", "cerebrium.dependencies.apt.curl")],
    ),
    (
        'python_version = "3.11"',
        'python_version = "3.12"',
        "python",
        [("setting", "cerebrium.deployment.python_version")],
    ),
    (
        'docker_base_image_url = "debian:bookworm-slim"',
        'docker_base_image_url = "debian:trixie-slim"',
        "base",
        [("setting", "cerebrium.deployment.docker_base_image_url")],
    ),
    (
        'shell_commands = ["echo done"]',
        'shell_commands = ["echo other"]',
        "shell",
        [("setting", "cerebrium.deployment.shell_commands")],
    ),
    (
        'pre_build_commands = ["echo pre"]',
        'pre_build_commands = ["echo x"]',
        "pre_build",
        [("setting", "cerebrium.deployment.pre_build_commands")],
    ),
    ("min_replicas = 0", "min_replicas = 1", "config", [("setting", "cerebrium.scaling.min_replicas")]),
    ('region = "us-east-1"', 'region = "eu-west-2"', "config", [("setting", "cerebrium.hardware.region")]),
]


@pytest.mark.parametrize(("old", "new", "step", "expected"), EDITS, ids=[e[2] + ":" + e[3][0][1] for e in EDITS])
def test_each_edit_is_named_by_its_key_path(
    tmp_path: Path, old: str, new: str, step: str, expected: list[tuple[str, str]]
) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    history = _built(plan_of(root), MemoryStepHistory())
    (root / "cerebrium.toml").write_text(FULL_TOML.replace(old, new, 1))
    analysis = analyze(plan_of(root), history)
    status = analysis.status(step)
    assert status.status == "miss"
    assert [(c.kind, c.name) for c in status.causes] == expected
    later = [s for s in analysis.steps if s.status == "miss" and s.id.value not in (step, "config")]
    assert all(s.causes == (Cause("parent", "parent changed", step),) for s in later), later


def test_source_files_are_named_by_path_and_first_builds_say_so(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "a.py").write_text("a = 1\n")
    first = analyze(plan_of(root), MemoryStepHistory())
    assert {c.name for s in first.steps for c in s.causes} == {"first build"}
    history = _built(plan_of(root), MemoryStepHistory())
    (root / "src" / "a.py").write_text("a = 2\n")
    (root / "src" / "b.py").write_text("b = 1\n")
    analysis = analyze(plan_of(root), history)
    named = [(c.kind, c.name) for c in analysis.status("files").causes]
    assert named == [("file", "src/a.py"), ("file", "src/b.py")]
    assert analysis.status("pip").causes == ()  # a hit has no cause


def test_same_key_not_built_is_an_eviction(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    plan = plan_of(root)
    history = _built(plan, MemoryStepHistory())
    del history.built[plan.step("shell").key]
    assert [c.name for c in analyze(plan, history).status("shell").causes] == ["evicted from cache"]


def test_many_changed_files_are_capped() -> None:
    old = {"manifest": {"files": [[f"f{i}.py", "file", 1, "d0"] for i in range(50)]}}
    new = {"manifest": {"files": [[f"f{i}.py", "file", 1, "d1"] for i in range(50)]}}
    causes = input_causes("files", old, new)
    assert len(causes) == MAX_FILES + 1 and causes[-1].name == f"… {50 - MAX_FILES} more files"


def test_cause_json_round_trips() -> None:
    for cause in (Cause("file", "a.py"), Cause("parent", "parent changed", "pip")):
        assert Cause.from_json(cause.to_json()) == cause


names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@given(
    st.dictionaries(names, st.from_regex(r"==[0-9]\.[0-9]", fullmatch=True), max_size=6),
    st.dictionaries(names, st.from_regex(r"==[0-9]\.[0-9]", fullmatch=True), max_size=6),
)
def test_pip_causes_are_exactly_the_changed_names(old: dict[str, str], new: dict[str, str]) -> None:
    def txt(d: dict[str, str]) -> str:
        return "".join(f"{k}{v}\n" for k, v in sorted(d.items()))

    causes = input_causes("pip", {"requirements_txt": txt(old)}, {"requirements_txt": txt(new)})
    changed = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
    if changed:
        assert {c.name for c in causes} == {f"cerebrium.dependencies.pip.{k}" for k in changed}
    else:
        assert [c.name for c in causes] == ["pip inputs"]
