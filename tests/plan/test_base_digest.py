"""Base image by digest: resolution policy (fakes at the seams), keys, LLB pin, Dockerfile pin, re-tag reason."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.base_image import Resolver, resolve_base
from builder.config import load_config
from builder.deps.lock import MemoryResolutionStore
from builder.deps.lock.uv import ResolutionPolicy
from builder.diagnostics import Diagnostic
from builder.engines.buildkit.convert import convert_plan
from builder.engines.dockerfile_export import render_dockerfile
from builder.errors import ImageNotFound, RegistryUnavailable
from builder.plan import make_plan
from builder.plan.analyze import analyze
from builder.plan.images import ImageRef, ResolvedBase
from builder.plan.model import Plan, StepKind
from builder.plan.protocols import MemoryStepHistory
from builder.registry.client import ResolvedImage, chain_id

L1, L2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
D1, D2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64
REF = "127.0.0.1:5055/debian:bookworm-slim"


class FakeRegistry:
    """RegistryClient's two calls, answering from a tag table (or raising ``error``)."""

    def __init__(self, digest: str = D1, layers: str = L1, error: Exception | None = None) -> None:
        self.digest, self.layers, self.error = digest, layers, error
        self.calls: list[str] = []

    def resolve(self, ref: ImageRef, platform: str = "linux/amd64") -> ResolvedImage:
        self.calls.append("resolve")
        if self.error:
            raise self.error
        return ResolvedImage(str(ref), self.digest, "sha256:" + "c" * 64, self.layers)

    def head_digest(self, ref: ImageRef) -> str:
        self.calls.append("head")
        if self.error:
            raise self.error
        return self.digest


class FakeEngine:
    def __init__(self, data: Mapping[str, Any] | None) -> None:
        self.data = data
        self.asked: list[str] = []

    def inspect(self, ref: str) -> Mapping[str, Any] | None:
        self.asked.append(ref)
        return self.data


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(
    registry: FakeRegistry,
    store: MemoryResolutionStore,
    *,
    engine: FakeEngine | None = None,
    clock: Clock | None = None,
    ref: str = REF,
    **policy: Any,
) -> tuple[ResolvedBase | None, list[Diagnostic]]:
    clock = clock or Clock()
    notes: list[Diagnostic] = []
    resolver = Resolver(registry=registry, engine=engine or FakeEngine(None), clock=clock)  # type: ignore[arg-type]
    found = resolve_base(ref, ResolutionPolicy(max_age=60, now=clock.now, **policy), store, notes, resolver)
    return found, notes


def test_registry_answer_is_stored_and_reused_within_the_ttl() -> None:
    store, registry = MemoryResolutionStore(), FakeRegistry()
    found, _ = run(registry, store)
    assert found == ResolvedBase(REF, D1, L1)
    again, _ = run(registry, store)
    assert again == found and registry.calls == ["resolve"]  # the second plan asked nobody


def test_after_the_ttl_one_head_renews_an_unchanged_digest() -> None:
    store, registry, clock = MemoryResolutionStore(), FakeRegistry(), Clock()
    run(registry, store, clock=clock)
    clock.now += 61
    found, _ = run(registry, store, clock=clock)
    assert found == ResolvedBase(REF, D1, L1) and registry.calls == ["resolve", "head"]


def test_refresh_sees_a_retag_at_once_and_offline_keeps_the_last() -> None:
    store, registry = MemoryResolutionStore(), FakeRegistry()
    run(registry, store)
    registry.digest, registry.layers = D2, L2
    assert run(registry, store, offline=True)[0] == ResolvedBase(REF, D1, L1)
    assert run(registry, store)[0] == ResolvedBase(REF, D1, L1)  # within the TTL: the stored answer
    assert run(registry, store, refresh=True)[0] == ResolvedBase(REF, D2, L2)
    assert registry.calls == ["resolve", "head", "resolve"]


def test_no_registry_falls_back_to_the_engine_image_store() -> None:
    engine = FakeEngine({"RootFS": {"Layers": [L1, L2]}, "RepoDigests": [f"127.0.0.1:5055/debian@{D2}"]})
    found, notes = run(
        FakeRegistry(error=RegistryUnavailable("registry x is unreachable: refused")),
        MemoryResolutionStore(),
        engine=engine,
    )
    assert found == ResolvedBase(REF, D2, chain_id([L1, L2]))
    assert engine.asked == [REF]
    assert any("engine's image store" in n.message for n in notes)


def test_engine_image_without_repo_digest_is_keyed_by_its_layers_only() -> None:
    engine = FakeEngine({"RootFS": {"Layers": [L1]}, "RepoDigests": []})
    found, _ = run(
        FakeRegistry(error=ImageNotFound("no such tag")),
        MemoryResolutionStore(),
        engine=engine,
        ref="debian:bookworm-slim",
    )
    assert found == ResolvedBase("docker.io/library/debian:bookworm-slim", None, L1)


def test_nothing_answers_means_the_last_resolution_then_the_tag_as_written() -> None:
    store, registry, clock = MemoryResolutionStore(), FakeRegistry(), Clock()
    run(registry, store, clock=clock)
    clock.now += 3600
    registry.error = RegistryUnavailable("down")
    assert run(registry, store, clock=clock)[0] == ResolvedBase(REF, D1, L1)
    found, notes = run(registry, MemoryResolutionStore())
    assert found is None
    assert any("keyed by the tag as written" in n.message for n in notes)


def test_an_unreachable_registry_costs_one_attempt_per_ttl() -> None:
    store, registry = MemoryResolutionStore(), FakeRegistry(error=RegistryUnavailable("down"))
    assert run(registry, store)[0] is None
    found, notes = run(registry, store)
    assert found is None and registry.calls == ["resolve"]  # the failure is remembered for the TTL
    assert any("keyed by the tag as written" in n.message for n in notes)
    registry.error = None
    assert run(registry, store, refresh=True)[0] == ResolvedBase(REF, D1, L1)


def test_a_pinned_reference_needs_no_resolution() -> None:
    registry = FakeRegistry()
    assert run(registry, MemoryResolutionStore(), ref=f"{REF}@{D1}")[0] is None
    assert registry.calls == []


# --- the plan side: pure, given a ResolvedBase --------------------------------------------------


def plan_for(tmp_path: Path, image: str, base: ResolvedBase | None, app: str = "digest-app") -> Plan:
    root = tmp_path / app
    root.mkdir(exist_ok=True)
    (root / "main.py").write_text("print(1)\n")
    (root / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "{app}"\npython_version = "3.11"\ndocker_base_image_url = "{image}"\n'
    )
    return make_plan(load_config(root), base=base)


def test_key_follows_the_layers_not_the_name(tmp_path: Path) -> None:
    local = plan_for(tmp_path, "debian:bookworm-slim", ResolvedBase("docker.io/library/debian:bookworm-slim", None, L1))
    pushed = plan_for(tmp_path, REF, ResolvedBase(REF, D1, L1))
    retagged = plan_for(tmp_path, REF, ResolvedBase(REF, D2, L2))
    assert local.step(StepKind.BASE).key == pushed.step(StepKind.BASE).key
    assert local.step(StepKind.PYTHON).key == pushed.step(StepKind.PYTHON).key
    assert all(pushed.step(s.id).key != s.key for s in retagged.steps)


def test_unresolved_plans_keep_the_keys_they_had(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, REF, None)
    inputs = plan.step(StepKind.BASE).inputs_json()
    assert inputs == {"image": REF, "platform": "linux/amd64"}
    other = plan_for(tmp_path, REF, ResolvedBase("docker.io/library/other:1", D1, L1))  # resolved for another ref
    assert other.step(StepKind.BASE).key == plan.step(StepKind.BASE).key


def test_plan_json_llb_and_dockerfile_pin_the_digest(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, REF, ResolvedBase(REF, D1, L1))
    assert plan.step(StepKind.BASE).inputs_json() == {
        "image": REF,
        "platform": "linux/amd64",
        "digest": D1,
        "layers": L1,
    }
    assert Plan.from_json(plan.to_json()) == plan
    sources = [op for op in getattr(convert_plan(plan).definition.to_pb(), "def") if b"docker-image://" in op]
    assert len(sources) == 1 and f"docker-image://{REF}@{D1}".encode() in sources[0]
    assert f"FROM --platform=linux/amd64 {REF}@{D1}\n" in render_dockerfile(plan).dockerfile


def test_a_retag_is_predicted_as_a_full_rebuild_naming_both_digests(tmp_path: Path) -> None:
    history = MemoryStepHistory()
    before = plan_for(tmp_path, REF, ResolvedBase(REF, D1, L1))
    for step in before.steps:
        history.built[step.key] = 1.0
    history.record_plan(before.app, before.json_view())
    after = plan_for(tmp_path, REF, ResolvedBase(REF, D2, L2))
    analysis = analyze(after, history)
    assert [s.status for s in analysis.steps] == ["miss"] * len(after.steps)
    base = analysis.status(StepKind.BASE)
    assert base.reason == (f"base: {REF} re-tagged: sha256:{'a' * 12} → sha256:{'b' * 12} (invalidates every step)")
    assert [c.kind for c in base.causes] == ["base_retag"]
    assert analysis.status(StepKind.PYTHON).reason == "parent changed (base)"
    same = analyze(plan_for(tmp_path, REF, ResolvedBase(REF, D2, L1)), history)  # new manifest, same layers
    assert [s.status for s in same.steps] == ["hit"] * len(after.steps)


@pytest.mark.parametrize("other", [None, ResolvedBase(REF, None, L1)])
def test_first_resolution_and_engine_only_identities_have_reasons(tmp_path: Path, other: ResolvedBase | None) -> None:
    history = MemoryStepHistory()
    before = plan_for(tmp_path, REF, other)
    history.record_plan(before.app, before.json_view())
    base = analyze(plan_for(tmp_path, REF, ResolvedBase(REF, None, L2)), history).status(StepKind.BASE)
    expected = (
        "(was keyed by the tag as written)" if other is None else f"re-tagged: sha256:{'1' * 12} → sha256:{'2' * 12}"
    )
    assert expected in base.reason
