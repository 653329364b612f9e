"""Plan ⇄ JSON: faithful round trips, the documented --format json schema, frozen values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from plan_helpers import FULL_TOML, plan_of, write_project
from test_plan_invalidation import DOCKER_TOML, LOCAL_FILES, LOCAL_TOML

from builder.errors import PlanError
from builder.plan import Plan, analyze
from builder.plan.model import FileEntry, FileManifest
from builder.plan.protocols import MemoryStepHistory
from builder.plan.render.json import plan_document

STEP_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "kind", "key", "parents", "status", "reason", "inputs", "estimated_seconds"],
    "properties": {
        "id": {
            "enum": [
                "base",
                "python",
                "pre_build",
                "apt",
                "conda",
                "pip",
                "runtime",
                "files",
                "shell",
                "dockerfile",
                "config",
            ]
        },
        "kind": {"type": "string"},
        "key": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "parents": {"type": "array", "items": {"type": "string"}},
        "status": {"enum": ["hit", "miss"]},
        "reason": {"type": "string"},
        "inputs": {"type": "object"},
        "estimated_seconds": {"type": ["number", "null"]},
    },
}
DOCUMENT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["app", "steps"],
    "properties": {"app": {"type": "string"}, "steps": {"type": "array", "items": STEP_SCHEMA}},
}


def _projects(tmp_path: Path) -> list[Path]:
    return [
        write_project(tmp_path / "full", FULL_TOML),
        write_project(tmp_path / "local", LOCAL_TOML, LOCAL_FILES),
        write_project(tmp_path / "docker", DOCKER_TOML, {"Dockerfile": "FROM x\n", "a": "1"}),
    ]


def test_round_trip_through_json_text(tmp_path: Path) -> None:
    for root in _projects(tmp_path):
        plan = plan_of(root)
        text = json.dumps(plan.to_json())
        again = Plan.from_json(json.loads(text))
        assert again == plan
        assert again.keys == plan.keys
        assert json.dumps(again.to_json()) == text


MANIFEST_SUMMARY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["digest", "count", "bytes", "changed", "layers"],
    "properties": {
        "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "count": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "changed": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["modified", "added", "removed"],
                    "properties": {
                        k: {"type": "array", "items": {"type": "string"}} for k in ("modified", "added", "removed")
                    },
                },
            ]
        },
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["label", "count"],
                "properties": {"label": {"type": "string"}, "count": {"type": "integer", "minimum": 1}},
            },
        },
    },
}


def _files_manifest(document: dict) -> dict:  # type: ignore[type-arg]
    return next(s for s in document["steps"] if s["id"] == "files")["inputs"]["manifest"]  # type: ignore[no-any-return]


def test_cli_document_matches_schema_and_reads_back(tmp_path: Path) -> None:
    for root in _projects(tmp_path):
        plan = plan_of(root)
        document = json.loads(json.dumps(plan_document(plan, analyze(plan, None), files=True)))
        jsonschema.validate(document, DOCUMENT_SCHEMA)
        assert Plan.from_json(document) == plan


def test_summary_document_carries_no_file_list_and_reads_back_with_the_project_files(tmp_path: Path) -> None:
    root = write_project(tmp_path / "local", LOCAL_TOML, LOCAL_FILES)
    plan = plan_of(root)
    manifest = plan.step("files").inputs.manifest
    document = json.loads(json.dumps(plan_document(plan, analyze(plan, None))))
    jsonschema.validate(document, DOCUMENT_SCHEMA)
    summary = _files_manifest(document)
    jsonschema.validate(summary, MANIFEST_SUMMARY_SCHEMA)
    assert summary == {
        "digest": manifest.digest,
        "count": len(manifest),
        "bytes": manifest.total_size,
        "changed": None,
        "layers": [{"label": "all files", "count": len(manifest)}],
    }
    assert summary["count"] > 0 and "files" not in summary
    with pytest.raises(ValueError, match="only a manifest summary"):
        Plan.from_json(document)
    calls = []
    assert Plan.from_json(document, lambda: calls.append(1) or manifest) == plan
    assert calls == [1]
    full = json.loads(json.dumps(plan_document(plan, analyze(plan, None), files=True)))
    assert Plan.from_json(full, lambda: calls.append(2) or manifest) == plan
    assert calls == [1]  # a full manifest needs no project


def test_summary_document_is_refused_when_the_project_files_changed(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML)
    plan = plan_of(root)
    document = json.loads(json.dumps(plan_document(plan, analyze(plan, None))))
    (root / "main.py").write_text("print('edited')\n")
    edited = plan_of(root).step("files").inputs.manifest
    with pytest.raises(PlanError, match="the project's files changed since the plan was written") as raised:
        Plan.from_json(document, lambda: edited)
    assert raised.value.hint and "builder plan --format json" in raised.value.hint


def test_summary_lists_the_paths_changed_since_the_recorded_plan(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", FULL_TOML, {"keep.py": "k\n", "gone.py": "g\n", "edit.py": "1\n"})
    history = MemoryStepHistory()
    first = plan_of(root)
    history.record_plan(first.app, first.to_json())
    (root / "gone.py").unlink()
    (root / "edit.py").write_text("2\n")
    (root / "new.py").write_text("n\n")
    second = plan_of(root)
    summary = _files_manifest(plan_document(second, analyze(second, history)))
    assert summary["changed"] == {"modified": ["edit.py"], "added": ["new.py"], "removed": ["gone.py"]}
    history.record_plan(second.app, second.to_json())
    (root / "cerebrium.toml").write_text(FULL_TOML.replace("cpu = 2", "cpu = 4"))
    third = plan_of(root)
    analysis = analyze(third, history)  # nothing is built in this history: every step misses, so it compares
    assert analysis.previous is not None
    assert _files_manifest(plan_document(third, analysis))["changed"] == {"modified": [], "added": [], "removed": []}


def test_local_source_survives_the_round_trip(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "local", LOCAL_TOML, LOCAL_FILES))
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert [s.value for s in again.step("pip").sources] == ["files"]
    pip = next(s for s in plan.to_json()["steps"] if s["id"] == "pip")
    assert pip["inputs"]["local"]["ref"] == {"step": "files", "use": "source"}


def test_tampered_manifest_is_refused(tmp_path: Path) -> None:
    data = plan_of(write_project(tmp_path / "p", FULL_TOML)).to_json()
    files = next(s for s in data["steps"] if s["id"] == "files")
    files["inputs"]["manifest"]["files"][0][3] = "blake3:" + "0" * 64
    with pytest.raises(ValueError, match="digest"):
        Plan.from_json(data)


def test_plan_values_are_frozen(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.app = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps[0].inputs.image = "x"


def test_engine_facing_inputs(tmp_path: Path) -> None:
    plan = plan_of(write_project(tmp_path / "p", FULL_TOML))
    assert plan.step("python").inputs.version == "3.11"
    assert plan.step("apt").inputs.packages == ("ffmpeg",)
    pip = plan.step("pip").inputs
    assert pip.installer == "pip" and "torch==2.0.0" in pip.requirements_txt
    assert pip.cache_mounts[0].target == "/root/.cache/pip"
    config = plan.step("config").inputs
    labels = dict(config.image.labels)
    assert labels["ai.cerebrium.app"] == "inv"
    assert labels["dev.builder.plan.pip"] == plan.step("pip").key
    assert config.image.exposed_ports == ("8000/tcp",)
    assert "/health" in config.image.healthcheck.test[-1]
    assert config.toml_text == FULL_TOML
    assert config.image.path_prepend == ("/opt/venv/bin", "/opt/conda/bin")


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab./\x00", max_size=6),
            st.sampled_from(["file", "exec", "symlink", "dir"]),
            st.one_of(st.integers(0, 9), st.just("3"), st.just(True)),
            st.sampled_from(["blake3:1", "x"]),
        ),
        max_size=6,
    )
)
def test_manifest_json_checks_every_entry_as_the_entry_by_entry_reader_does(rows: list) -> None:
    """The C-level reader of a manifest's rows accepts and rejects exactly what FileEntry.from_json does."""
    data = {"files": [list(r) for r in rows]}
    try:
        expected: object = FileManifest.of(FileEntry.from_json(r) for r in data["files"])
    except ValueError as exc:
        expected = str(exc)
    try:
        got: object = FileManifest.from_json(data)
    except ValueError as exc:
        got = str(exc)
    assert got == expected
