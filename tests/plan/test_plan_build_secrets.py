"""Build secret ids in the plan: inputs of the steps that mount them, their values never."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.api import load_plan_config, plan_project
from builder.errors import PlanError
from builder.plan.make import make_plan
from builder.plan.model import Plan, StepKind
from builder.plan.secret_ids import SECRET_STEPS, check_secret_id, secret_ids, secret_path

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"


def _keys(plan: Plan) -> dict[StepKind, str]:
    return {s.id: s.key for s in plan.steps}


@pytest.mark.parametrize("good", ["token", "pip_index_url", "A1", "x.y-z", "9" * 64])
def test_usable_ids(good: str) -> None:
    assert check_secret_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "../x", "a/b", "-x", "_x", "a b", "a\x00", "9" * 65, "ca-bundle", "builder-x"]
)
def test_unusable_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="secret id"):
        check_secret_id(bad)


def test_ids_are_canonical_and_mounted_under_run_secrets() -> None:
    assert secret_ids(["b", "a", "b"]) == ("a", "b")
    assert secret_path("a") == "/run/secrets/a"


def test_a_secret_changes_the_keys_of_the_steps_that_mount_it_and_what_is_built_on_them() -> None:
    config, _ = load_plan_config(APPS / "build-basic")
    plain, secret = make_plan(config), make_plan(config, secret_ids=["token"])
    before, after = _keys(plain), _keys(secret)
    assert before[StepKind.BASE] == after[StepKind.BASE] and before[StepKind.PYTHON] == after[StepKind.PYTHON]
    first = min((s for s in plain.steps if s.id in SECRET_STEPS), key=lambda s: s.id.position)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {s.id for s in plain.steps if s.id.position >= first.id.position}
    for step in secret.steps:
        expected = ("token",) if step.id in SECRET_STEPS else ()
        assert getattr(step.inputs, "secrets", ()) == expected, step.id


def test_without_secrets_the_plan_json_has_no_secrets_field_and_keys_are_unchanged() -> None:
    config, _ = load_plan_config(APPS / "build-basic")
    plan = make_plan(config)
    assert '"secrets"' not in json.dumps(plan.to_json())
    assert make_plan(config, secret_ids=[]) == plan


def test_the_secret_ids_round_trip_through_plan_json_and_a_bad_id_in_a_plan_file_is_refused() -> None:
    config, _ = load_plan_config(APPS / "build-basic")
    plan = make_plan(config, secret_ids=["token", "netrc"])
    data = plan.to_json()
    assert data == json.loads(json.dumps(data))
    assert Plan.from_json(data) == plan
    shell = next(s for s in data["steps"] if s["id"] == "shell")
    assert shell["inputs"]["secrets"] == ["netrc", "token"]
    shell["inputs"]["secrets"] = ["../../etc/shadow"]
    with pytest.raises((PlanError, ValueError, TypeError)):
        Plan.from_json(data)


def test_make_plan_refuses_a_bad_id() -> None:
    config, _ = load_plan_config(APPS / "build-basic")
    with pytest.raises(PlanError, match="secret id 'a/b'"):
        make_plan(config, secret_ids=["a/b"])


def test_a_secrets_value_is_in_no_key_and_planning_reads_no_value(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(APPS / "build-basic", app)
    one, _, _ = plan_project(app, record=False, resolve=False, secrets={"token": b"value-one"})
    two, _, _ = plan_project(app, record=False, resolve=False, secrets={"token": b"value-two"})
    unread, _, _ = plan_project(app, record=False, resolve=False, secrets=["id=token,src=/does/not/exist"])
    assert _keys(one) == _keys(two) == _keys(unread)
    assert "value-one" not in json.dumps(one.to_json())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "token", "pip_index_url"]), min_size=1, max_size=6))
def test_keys_depend_on_the_set_of_ids_only(ids: list[str]) -> None:
    config, _ = load_plan_config(APPS / "quickstart")
    assert _keys(make_plan(config, secret_ids=ids)) == _keys(make_plan(config, secret_ids=sorted(set(ids))))
