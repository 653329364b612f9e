"""``make_plan``: config (+ resolved dependencies) → :class:`~builder.plan.model.Plan`."""

from __future__ import annotations

import os
from collections.abc import Iterable

from builder.config.model import Config
from builder.deps.model import ResolvedDependencies
from builder.errors import PlanError
from builder.plan.cache_scope import SCOPE_ENV, cache_scope
from builder.plan.canonical import canonical_bytes
from builder.plan.context import PlanContext
from builder.plan.graph import build_graph, layer_order, layer_parents, source_refs
from builder.plan.images import ResolvedBase
from builder.plan.keys import KEY_SCHEME_VERSION, step_key
from builder.plan.model import Plan, Step, StepKind, StepRef
from builder.plan.protocols import StatSource, Walker
from builder.plan.secret_ids import secret_ids as canonical_secret_ids
from builder.plan.steps import STEPS, module_for


def make_plan(
    config: Config,
    deps: ResolvedDependencies | None = None,
    *,
    stat_source: StatSource | None = None,
    walker: Walker | None = None,
    cache_scope_name: str | None = None,
    secret_ids: Iterable[str] = (),
    base: ResolvedBase | None = None,
) -> Plan:
    """Compute the plan of ``config``: steps, edges and keys.  No cache, no engine.

    ``deps`` defaults to ``builder.deps.resolve_dependencies(config)``;
    ``stat_source`` remembers file digests between plans (see
    ``builder.plan.protocols``); ``walker`` lists the project files instead of
    :func:`builder.plan.fileset.walk` (same protocols module); ``cache_scope_name`` shares the cache
    mounts with other projects of that name (default: ``$BUILDER_CACHE_SCOPE``, else this project's own);
    ``secret_ids`` are the build secrets' ids (see :mod:`builder.plan.secret_ids`): inputs of the steps that
    mount them, their values never.  ``base`` is what the base image reference pointed at
    (``builder.base_image.resolve_base``; the base step is then keyed by the image's layers and pinned to
    the digest).  Raises PlanError, or ConfigError /
    DependencyError for problems in the inputs it reads.

    >>> # plan = make_plan(load_config("fixtures/apps/minimal"))
    >>> # [s.id.value for s in plan.steps]  →  ['base', 'python', 'files', 'config']
    """
    if deps is None:
        from builder.deps import resolve_dependencies

        deps = resolve_dependencies(config)
    shared = os.environ.get(SCOPE_ENV) if cache_scope_name is None else cache_scope_name
    try:
        scope = cache_scope(config.deployment.name, shared)
    except ValueError as error:
        raise PlanError(str(error)) from None
    try:
        ids = canonical_secret_ids(secret_ids)
    except ValueError as error:
        raise PlanError(str(error), hint="name secrets with letters, digits, '_', '.' or '-'") from None
    ctx = PlanContext(config, deps, stat_source, walker, cache_scope=scope, secret_ids=ids, base=base)
    found = {}
    for module in STEPS:
        if module.KIND is StepKind.CONFIG:
            continue
        value = module.inputs(ctx)
        if value is not None:
            found[module.KIND] = value
            ctx.present.add(module.KIND.value)
    refs = {kind: value.source_refs() for kind, value in found.items() if hasattr(value, "source_refs")}
    graph = build_graph({**found, StepKind.CONFIG: True}, order=[m.KIND for m in STEPS], sources=refs)
    steps: list[Step] = []
    for kind in layer_order(graph):
        value = found[kind] if kind is not StepKind.CONFIG else module_for(kind).inputs(ctx)
        parents = layer_parents(graph, kind)
        key = step_key(kind, canonical_bytes(value), [(p, ctx.keys[p.value]) for p in parents])
        ctx.keys[kind.value] = key
        edges = tuple(StepRef(p, "layer") for p in parents) + source_refs(graph, kind)
        steps.append(Step(kind, key, edges, value))
    return Plan(config.deployment.name, tuple(steps), KEY_SCHEME_VERSION, tuple(ctx.notes))
