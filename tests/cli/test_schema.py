"""``builder schema``: a draft 2020-12 JSON Schema matching the validator."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builder.cli import main
from builder.config import load
from builder.config.schema import json_schema
from builder.config.spec import SECTIONS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
APPS = sorted(p.name for p in (FIXTURES / "apps").iterdir() if (p / "cerebrium.toml").is_file())
INVALID = sorted(p.name for p in (FIXTURES / "invalid").iterdir() if p.is_dir())
# Problems a JSON Schema cannot state: cross-option rules, and files that are not TOML at all.
NOT_SCHEMA_DETECTABLE = {
    "alias-conflict",  # both spellings valid alone; they disagree with each other
    "entrypoint-port-mismatch",  # port inside an argv string
    "gunicorn-bind-mismatch",
    "replicas-min-above-max",  # min <= max compares two values
}
UNPARSEABLE = {"binary-file", "empty-file", "toml-syntax-error"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", APPS)
def test_schema_accepts_apps(validator: jsonschema.protocols.Validator, name: str) -> None:
    errors = list(validator.iter_errors(read_toml(FIXTURES / "apps" / name / "cerebrium.toml")))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("name", sorted(set(INVALID) - NOT_SCHEMA_DETECTABLE - UNPARSEABLE))
def test_schema_rejects_invalid(validator: jsonschema.protocols.Validator, name: str) -> None:
    assert not validator.is_valid(read_toml(FIXTURES / "invalid" / name / "cerebrium.toml"))


@pytest.mark.parametrize("name", sorted(NOT_SCHEMA_DETECTABLE))
def test_validator_catches_what_the_schema_cannot(validator: jsonschema.protocols.Validator, name: str) -> None:
    path = FIXTURES / "invalid" / name / "cerebrium.toml"
    assert validator.is_valid(read_toml(path))
    assert not load(path).ok


def test_every_option_is_described_with_default_and_constraints() -> None:
    schema = json_schema()["properties"]["cerebrium"]["properties"]
    for section in SECTIONS.values():
        node = schema
        for part in section.path.split(".")[1:]:
            node = node[part] if part in node else node["properties"][part]
        assert node["description"]
        for option in section.options.values():
            prop = node["properties"][option.name]
            assert prop["description"], option.name
            if option.default is not None:
                assert prop["default"] == option.default
            if option.enum:
                assert prop["enum"] == list(option.enum)
            if option.maximum is not None:
                assert prop["maximum"] == option.maximum


@pytest.mark.parametrize(
    ("doc", "ok"),
    [
        ({"cerebrium": {"deployment": {"name": "a"}}}, True),
        ({"cerebrium": {"deployment": {}}}, False),
        ({"cerebrium": {"deployment": {"name": "a", "use_uv": 1}}}, False),
        ({"cerebrium": {"deployment": {"name": "a"}, "hardware": {"compute": ["ADA_L4", "NEW_GPU"]}}}, True),
        ({"cerebrium": {"deployment": {"name": "a"}, "hardware": {"compute": []}}}, False),
        ({"cerebrium": {"deployment": {"name": "a"}, "runtime": {"custom": {"port": 1}}}}, False),
        (
            {"cerebrium": {"deployment": {"name": "a"}, "runtime": {"custom": {"port": 1, "dockerfile_path": "D"}}}},
            True,
        ),
        (
            {
                "cerebrium": {
                    "deployment": {"name": "a"},
                    "scaling": {"scaling_buffer": 1, "scaling_metric": "cpu_utilization"},
                }
            },
            False,
        ),
        ({"cerebrium": {"deployment": {"name": "a"}, "scaling": {"scaling_buffer": 1}}}, True),
        ({"cerebrium": {"deployment": {"name": "a"}, "scaling": {"load_balancing_algorithm": "nope"}}}, False),
        ({"cerebrium": {"deployment": {"name": "a"}, "dependencies": {"pip": {"torch": 2}}}}, False),
        ({"cerebrium": {"deployment": {"name": "a"}, "dependencies": {"paths": {"pip": "/abs"}}}}, False),
    ],
)
def test_schema_rules(validator: jsonschema.protocols.Validator, doc: dict[str, Any], ok: bool) -> None:
    assert validator.is_valid(doc) is ok
