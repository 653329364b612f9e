"""``--refresh`` with apt/conda packages without a version: those steps run again on the engine.

Their keys cannot see a new Debian/conda release, so the LLB marks their exec vertices (and every
vertex built on them, whose cache keys alone would hand back the old results) ``ignore_cache``,
and the plan predicts them as misses with the reason ``--refresh``.
"""

from __future__ import annotations

from pathlib import Path

from builder.api import plan_project
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.plan.model import Plan, StepKind
from cache import open_cache
from cache.records import StepRecord


def _built(cache: Path, plan: Plan) -> None:
    """Record every step of ``plan`` as built, as a build would."""
    with open_cache(cache) as store:
        for step in plan.steps:
            store.steps.record_step(
                StepRecord(
                    key=step.key,
                    kind=step.id.value,
                    step_id=step.id.value,
                    app=plan.app,
                    engine="buildkit",
                    inputs_manifest={},
                    result_digest=None,
                    duration_s=1.0,
                    size_bytes=1,
                    created_at=0.0,
                    last_used_at=0.0,
                )
            )


def _app(tmp_path: Path, apt: str) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('x')\n")
    (app / "cerebrium.toml").write_text(
        f'[cerebrium.deployment]\nname = "rr"\n[cerebrium.dependencies.apt]\ncurl = "{apt}"\n'
        '[cerebrium.dependencies.pip]\nrequests = "==2.32.3"\n'
    )
    return app


def _ignored(converted: object) -> set[str]:
    definition = converted.definition  # type: ignore[attr-defined]
    names = definition.names()
    return {names[d] for d, meta in definition.op_metadata().items() if meta.ignore_cache and d in names}


def test_refresh_reruns_the_apt_step_and_what_is_built_on_it(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    app = _app(tmp_path, "latest")
    plan, _, _ = plan_project(app, cache_dir=cache, offline=True)
    _built(cache, plan)
    _, first, _ = plan_project(app, cache_dir=cache, offline=True)
    assert [s.status for s in first.steps] == ["hit"] * len(first.steps)
    _, refreshed, _ = plan_project(app, cache_dir=cache, refresh=True, record=False)
    order = [s.id for s in refreshed.steps]
    after_apt = order[order.index(StepKind.APT) :]
    for status in refreshed.steps:
        if status.id in after_apt:
            assert (status.status, status.reason) == ("miss", "--refresh"), status
        else:
            assert status.status == "hit", status

    plain = convert_plan(plan)
    assert _ignored(plain) == set()
    rerun = convert_plan(plan, ConvertOptions(rerun=frozenset({StepKind.APT})))
    ignored = _ignored(rerun)
    names = rerun.definition.names()
    assert names[rerun.digest_of(StepKind.APT)] in ignored
    assert names[rerun.digest_of(StepKind.PIP)] in ignored  # built on the refreshed apt layer
    assert names[rerun.digest_of(StepKind.BASE)] not in ignored
    # the op bytes (and so the step keys' LLB) are the same: ignore_cache is metadata only
    assert rerun.definition.digests == plain.definition.digests


def test_refresh_leaves_pinned_apt_packages_cached(tmp_path: Path) -> None:
    app = _app(tmp_path, "7.88.1-10+deb12u8")
    plan, _, _ = plan_project(app, cache_dir=tmp_path / "cache", offline=True)
    _built(tmp_path / "cache", plan)
    _, analysis, _ = plan_project(app, cache_dir=tmp_path / "cache", refresh=True, record=False)
    assert [s.status for s in analysis.steps] == ["hit"] * len(analysis.steps)
