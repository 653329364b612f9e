"""Build secrets through the recipe RunSpec: both lowerings mount them, nothing else changes; ``--rerun``."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.api import plan_project
from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.engines.dockerfile_export import render_dockerfile
from builder.plan.analyze import Analysis, StepStatus
from builder.plan.model import Plan, StepKind
from builder.plan.rerun import mark_rerun, rerun_steps
from builder.plan.secret_ids import SECRET_STEPS
from builder.recipes import run_specs
from tests.recipes.test_parity import export_forms, llb_forms, spec_forms

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"
IDS = ("pip_index_url", "token")


def _plan(name: str, secrets: object = None) -> Plan:
    plan, _, _ = plan_project(APPS / name, record=False, resolve=False, secrets=secrets)
    return plan


@pytest.mark.parametrize("name", ["build-basic", "conda", "quickstart"])
def test_every_step_that_runs_commands_mounts_the_secrets_readable_by_root_only(name: str) -> None:
    specs = run_specs(_plan(name, {i: b"v" for i in IDS}))
    for kind, spec in specs.items():
        mounted = {s.id: s for s in spec.secrets if s.user}
        if kind not in SECRET_STEPS:
            assert mounted == {}, kind
            continue
        assert sorted(mounted) == list(IDS), kind
        for secret_id, secret in mounted.items():
            assert (secret.target, secret.mode, secret.env) == (f"/run/secrets/{secret_id}", 0o400, ())


def test_the_pip_step_reads_its_index_secrets_only_when_it_has_secrets() -> None:
    assert run_specs(_plan("build-basic"))[StepKind.PIP].script == "pip.sh"
    assert run_specs(_plan("build-basic", {"token": b"v"}))[StepKind.PIP].script == "pip_secrets.sh"


@pytest.mark.parametrize("name", ["build-basic", "conda", "quickstart"])
def test_both_lowerings_carry_the_secret_mounts(name: str) -> None:
    plan = _plan(name, {i: b"v" for i in IDS})
    expected, llb, export = spec_forms(plan), llb_forms(plan), export_forms(plan)
    for kind, form in expected.items():
        assert llb[kind] == form and export[kind] == form, kind
        secrets = {m[2] for m in form["mounts"] if m[0] == "secret"}
        assert set(IDS) <= secrets if kind in SECRET_STEPS else not secrets & set(IDS)


def test_llb_secret_mounts_are_optional_and_keyed_by_id_only() -> None:
    plan = _plan("build-basic", {"token": b"value-never-seen"})
    definition = convert_plan(plan, ConvertOptions()).definition
    found = []
    for digest in definition.digests:
        op = definition.op(digest)
        if op.WhichOneof("op") == "exec":
            found += [
                (m.dest, m.secretOpt.ID, m.secretOpt.mode, m.secretOpt.optional)
                for m in op.exec.mounts
                if m.mountType == ops_pb2.SECRET
            ]
    assert found and set(found) == {("/run/secrets/token", "token", 0o400, True)}
    assert len(found) == len([s for s in plan.steps if s.id in SECRET_STEPS])
    assert b"value-never-seen" not in definition.to_pb().SerializeToString()


def test_the_export_mounts_each_secret_on_the_run_lines() -> None:
    plan = _plan("build-basic", ["id=token,env=UNSET"])
    mount = "--mount=type=secret,id=token,target=/run/secrets/token,mode=0400"
    assert render_dockerfile(plan).dockerfile.count(mount) == len([s for s in plan.steps if s.id in SECRET_STEPS]) == 3
    assert "/run/secrets/token" not in render_dockerfile(_plan("build-basic")).dockerfile


def _ignored(plan: Plan, rerun: frozenset[StepKind]) -> tuple[set[StepKind], list[str]]:
    converted = convert_plan(plan, ConvertOptions(merge=True, rerun=rerun))
    meta = converted.definition.op_metadata()
    steps = {k for k, digest in converted.step_digests if meta[digest].ignore_cache}
    return steps, list(converted.definition.digests)


def test_rerun_ignores_the_cache_of_the_step_and_what_is_built_on_it_without_changing_the_llb() -> None:
    plan = _plan("build-basic")
    none, plain = _ignored(plan, frozenset())
    assert none == set()
    ignored, digests = _ignored(plan, frozenset({StepKind.PIP}))
    assert {StepKind.PIP, StepKind.SHELL} <= ignored and not ignored & {StepKind.BASE, StepKind.PYTHON, StepKind.APT}
    assert digests == plain  # same op bytes: the keys and the vertices stay; only the metadata says rerun


def test_rerun_names_are_checked_against_the_plan() -> None:
    plan = _plan("quickstart")
    assert rerun_steps(plan, ["shell", "pip", "shell"]) == (StepKind.PIP, StepKind.SHELL)
    with pytest.raises(ValueError, match="'files' is not a step that runs a command"):
        rerun_steps(plan, ["files"])
    with pytest.raises(ValueError, match="this plan has no apt step .*: python, pip, shell"):
        rerun_steps(plan, ["apt"])


def test_rerun_predicts_the_step_and_the_later_ones_as_misses() -> None:
    kinds = (StepKind.BASE, StepKind.PIP, StepKind.FILES, StepKind.SHELL)
    hits = Analysis("app", tuple(StepStatus(k, "hit", "cached", 1.0) for k in kinds))
    marked = mark_rerun(hits, [StepKind.PIP], "--rerun")
    assert [(s.status, s.reason) for s in marked.steps] == [("hit", "cached")] + [("miss", "--rerun")] * 3
    assert mark_rerun(hits, [StepKind.APT], "--rerun") == hits  # not in the plan: nothing to mark
