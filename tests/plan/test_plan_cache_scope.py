"""Cache mount ids carry the project's scope: its own by default, a shared one only when named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from plan_helpers import FULL_TOML, plan_of, write_project

from builder.errors import PlanError
from builder.plan.cache_scope import SCOPE_ENV, cache_scope, scoped
from builder.plan.model import CacheMount
from builder.recipes import run_specs


def mount_ids(plan) -> set[str]:
    specs = run_specs(plan).values()
    tools_runs = [spec.tools for spec in specs if spec.tools is not None]
    return {m.id for spec in specs for m in spec.caches} | {m.id for t in tools_runs for m in t.caches}


@given(st.text(max_size=40), st.text(max_size=40))
def test_each_app_has_its_own_deterministic_scope(a: str, b: str) -> None:
    assert cache_scope(a, None) == cache_scope(a, None)
    assert re.fullmatch(r"app-[0-9a-f]{16}", cache_scope(a, None))
    assert (cache_scope(a, None) == cache_scope(b, None)) == (a == b)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True), st.text(max_size=20))
def test_a_named_scope_is_the_same_for_every_app(name: str, app: str) -> None:
    assert cache_scope(app, name) == f"shared-{name}" == cache_scope("other", name)


@pytest.mark.parametrize("bad", ["a b", "../x", "x/y", "-x", "x" * 65, "é", "a,b", "a=b"])
def test_a_named_scope_must_be_a_plain_name(bad: str) -> None:
    with pytest.raises(ValueError, match=SCOPE_ENV):
        cache_scope("app", bad)


def test_scoped_keeps_target_and_sharing_and_an_empty_scope_changes_nothing() -> None:
    mounts = (CacheMount("/c", "builder-x", "locked"),)
    assert scoped(mounts, "app-1") == (CacheMount("/c", "builder-x-app-1", "locked"),)
    assert scoped(mounts, "") == mounts


def test_every_cache_mount_of_a_plan_is_in_its_apps_scope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCOPE_ENV, raising=False)
    a = plan_of(write_project(tmp_path / "a", FULL_TOML))
    b = plan_of(write_project(tmp_path / "b", FULL_TOML.replace('name = "inv"', 'name = "other"')))
    ids_a, ids_b = mount_ids(a), mount_ids(b)
    assert {"builder-tools-rattler", "builder-apt-archives"} <= {i.rsplit("-app-", 1)[0] for i in ids_a}
    assert all(i.endswith("-" + cache_scope("inv", None)) for i in ids_a)
    assert not ids_a & ids_b  # two projects share no cache mount


def test_a_named_scope_is_shared_by_projects_and_a_bad_one_is_a_plan_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SCOPE_ENV, "team-ci")
    a = plan_of(write_project(tmp_path / "a", FULL_TOML))
    b = plan_of(write_project(tmp_path / "b", FULL_TOML.replace('name = "inv"', 'name = "other"')))
    assert mount_ids(a) == mount_ids(b) and all(i.endswith("-shared-team-ci") for i in mount_ids(a))
    monkeypatch.setenv(SCOPE_ENV, "team ci")
    with pytest.raises(PlanError, match="BUILDER_CACHE_SCOPE='team ci' is not a plain name"):
        plan_of(write_project(tmp_path / "c", FULL_TOML))
