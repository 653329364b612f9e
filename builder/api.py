"""The documented entry points: config → plan → analysis, wired to the cache and the engine.

This is the only library module that joins ``builder.config``,
``builder.deps``, ``builder.plan``, the step history (:mod:`builder.history`,
over the ``cache`` package) and the engine.  The cache is optional: when it
cannot be imported, opened or used, planning goes on without history and one
warning says why.

Embedding in a CI runner::

    from builder import plan_project

    plan, analysis, diagnostics = plan_project("path/to/app", record=False)
    for step in plan.steps:
        status = analysis.status(step.id)
        print(step.id, step.key, status.status, status.reason)
    if analysis.misses:
        print(analysis.summary())        # "2 of 7 steps rebuild (cause: pip), ..."

Comparing two revisions without a cache::

    from builder import diff_plans, load_config, make_plan

    d = diff_plans(make_plan(load_config("old/")), make_plan(load_config("new/")))
    print([c.reason for c in d.changed])
"""

from __future__ import annotations

import functools
import gc
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from builder.config import LoadResult, load
from builder.config.locate import located
from builder.config.model import Config
from builder.deps.model import ResolvedDependencies
from builder.diagnostics import Diagnostic
from builder.engine_connection import EngineConnection
from builder.engines.identity import identify_at
from builder.errors import BuilderError, ConfigError, DependencyError, LockError, PlanError, SolveFailed
from builder.files_bases import FilesRoute, choose_route, record_route
from builder.history import (
    EngineScope,
    base_image_id,
    history,
    opened_cache,
    record_build,
    record_steps,
    stat_source,
)
from builder.plan.analyze import Analysis, analyze
from builder.plan.cache_specs import FLAGS, CacheSpec, Direction, parse_cache_spec, specs_from_env
from builder.plan.diff import PlanDiff, diff_plans
from builder.plan.make import make_plan
from builder.plan.model import FileManifest, Plan, ProjectFiles, StepKind
from builder.plan.protocols import Walker
from builder.plan.rerun import mark_rerun, rerun_steps
from builder.revisions import export_revision, repository_root
from builder.shared_history import SharedHistory, SharedRecords, steps_document

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "analyze",
    "build",
    "diff_git",
    "diff_plans",
    "diff_projects",
    "load_plan_config",
    "make_plan",
    "plan_project",
    "resolve_by_default",
]

# ``$BUILDER_RESOLVE`` values that turn default resolution of unpinned pip specs off.
_OFF = frozenset({"off", "0", "false", "no"})
# Seconds one resolution may take while planning: an unreachable or stalled index must not hang a plan.
RESOLVE_TIMEOUT = 120.0


def load_plan_config(path: str | os.PathLike[str]) -> tuple[Config, tuple[Diagnostic, ...]]:
    """Load ``path`` (cerebrium.toml or its directory) and return (config, warnings); ConfigError when invalid."""
    result = load(path)
    if result.config is None:
        errors = result.errors
        first = errors[0] if errors else None
        raise ConfigError(
            first.format()
            if first and len(errors) == 1
            else f"{os.fspath(path)}: invalid configuration ({len(errors)} errors)",
            file=first.file if first else None,
            key_path=first.key_path if first else None,
            line=first.line if first else None,
            diagnostics=errors,
        )
    return result.config, result.warnings


def check_project(path: str | os.PathLike[str] = ".") -> LoadResult:
    """Every check ``plan`` makes without an engine or cache, with all problems of the project.

    The config, its dependencies (grammar, ``paths`` files, inline + paths
    conflicts, duplicates, conda specs) and the plan itself (image references,
    ``dockerfile_path``, the file selection) are checked; each problem names
    the file as the user gave it, its line and key path.  ``config`` is None
    exactly when ``plan_project`` would raise for this project.

    >>> # result = check_project("fixtures/apps/minimal"); result.ok  →  True
    """
    from builder.deps import resolve_dependencies

    result = load(path)
    config = result.config
    if config is None:
        return result
    found = list(result.diagnostics)
    try:
        deps = resolve_dependencies(config, use_lock=True)
    except DependencyError as exc:  # already placed in the user's files by resolve_sets
        return LoadResult(None, (*found, *exc.as_diagnostics()))
    found.extend(deps.warnings)
    try:
        plan = make_plan(config, deps)
    except (ConfigError, DependencyError, PlanError) as exc:
        return LoadResult(None, (*found, *located(config, _diagnostics_of(exc))))
    found.extend(located(config, plan.notes))
    return LoadResult(config, _dedupe(found))


def _diagnostics_of(exc: BuilderError) -> tuple[Diagnostic, ...]:
    """The error diagnostics an exception stands for (its list, or one made of its message and location)."""
    listed = tuple(getattr(exc, "diagnostics", ()))
    if listed:
        return listed
    return (
        Diagnostic(
            "error",
            getattr(exc, "key_path", None) or "",
            exc.message,
            getattr(exc, "line", None),
            getattr(exc, "file", None),
            exc.hint,
        ),
    )


def _planning_error(config: Config, exc: BuilderError) -> BuilderError:
    """``exc`` (raised by make_plan) with its problems placed in the user's files, as ``check_project`` shows them."""
    if not isinstance(exc, (ConfigError, DependencyError)):
        return exc  # about the project directory itself, not a key: already says which path
    diags = located(config, _diagnostics_of(exc))
    first = diags[0]
    return DependencyError(
        exc.message if len(diags) == 1 else f"{len(diags)} problems",
        file=first.file,
        key_path=first.key_path,
        line=first.line,
        hint=exc.hint,
        diagnostics=diags,
    )


def _resolve_pip(
    config: Config, deps: ResolvedDependencies, store: Any, warnings: list[Diagnostic], policy: Any = None
) -> ResolvedDependencies:
    """Pin unpinned pip specs (latest, ranges, VCS branches) with uv, so a new release changes the pip key.

    A stored resolution answers while ``policy`` (a ResolutionPolicy; default:
    the TTL of ``$BUILDER_RESOLVE_TTL`` or one hour) says it is fresh; the
    pip step is then keyed by, and installs, exactly the resolved pins.
    """
    if deps.pip is None or deps.pip.locked or all(r.pinned for r in deps.pip.requirements):
        return deps
    try:
        from builder.deps.lock import MemoryResolutionStore
        from builder.deps.lock.uv import ResolutionPolicy, compile_pip

        resolutions = getattr(store, "resolutions", None) or MemoryResolutionStore()
        policy = policy or ResolutionPolicy.from_env()

        def pins(chosen: ResolutionPolicy) -> Any:
            return compile_pip(
                deps.pip,  # type: ignore[arg-type]
                python_version=config.deployment.python_version,
                store=resolutions,
                project_dir=config.project_dir,
                policy=chosen,
                timeout=RESOLVE_TIMEOUT,
            )

        try:
            pinned = pins(policy)
        except LockError as exc:
            if policy.offline:
                raise
            # The index is out of reach (or uv failed): the last resolution is better than the bare specs.
            pinned = pins(replace(policy, offline=True, refresh=False))
            warnings.append(
                Diagnostic(
                    "warning",
                    "cerebrium.dependencies.pip",
                    f"could not ask the package index ({exc}); using the last resolution of the pip requirements",
                    hint="check network access to the package index, or pass --offline to skip asking",
                )
            )
    except (ImportError, LockError, OSError) as exc:
        warnings.append(
            Diagnostic(
                "warning",
                "cerebrium.dependencies.pip",
                f"could not resolve pip requirements ({exc}); keys are based on the specs as written",
                hint="check network access to the package index, or run `builder lock`",
            )
        )
        return deps
    warnings.extend(_resolved_notes(deps.pip.requirements, pinned.requirements))
    return replace(deps, pip=pinned)


def _unresolved_latest(deps: ResolvedDependencies) -> list[Diagnostic]:
    """Warnings naming the apt/conda packages without a version: resolution covers pip only, so those
    steps keep what they installed the first time until their inputs change."""
    found = []
    if deps.apt is not None:
        names = [p.name for p in deps.apt.packages if not p.version]
        if names:
            found.append(
                Diagnostic(
                    "warning",
                    "cerebrium.dependencies.apt",
                    f"apt packages without a version ({', '.join(names)}) "
                    "are not re-resolved: the apt step keeps what it installed first",
                    hint='pin versions (name = "1.2-3") to choose when they change, or pass --refresh to rerun the step',
                )
            )
    if deps.conda is not None and deps.conda.lock_file is None:
        names = [s.name for s in deps.conda.specs if s.spec.strip() == s.name]
        if names:
            found.append(
                Diagnostic(
                    "warning",
                    "cerebrium.dependencies.conda",
                    f"conda packages without a version "
                    f"({', '.join(names)}) are not re-resolved: the conda step keeps what it "
                    "installed first",
                    hint="pin versions or run `builder lock`; --refresh reruns the step",
                )
            )
    return found


def _refreshed(deps: ResolvedDependencies, analysis: Analysis) -> tuple[tuple[StepKind, ...], Analysis]:
    """``--refresh`` with apt/conda packages without a version: those steps run again (their keys cannot
    see a new release), and so does everything built on them; the analysis predicts them as misses."""
    rerun = []
    if deps.apt is not None and any(not p.version for p in deps.apt.packages):
        rerun.append(StepKind.APT)
    if (
        deps.conda is not None
        and deps.conda.lock_file is None
        and any(s.spec.strip() == s.name for s in deps.conda.specs)
    ):
        rerun.append(StepKind.CONDA)
    if not rerun:
        return (), analysis
    return tuple(rerun), mark_rerun(analysis, rerun, "--refresh")


def _resolved_notes(written: Sequence[Any], pinned: Sequence[Any]) -> list[Diagnostic]:
    """``numpy latest → 2.1.3`` for every unpinned requirement, as notes (shown by ``builder plan``)."""
    versions = {r.name: r.specifier.removeprefix("==") for r in pinned if r.name}
    notes = []
    for req in written:
        if req.pinned or not req.name or req.name not in versions:
            continue
        spec = req.url or req.specifier or "latest"
        notes.append(Diagnostic("note", "cerebrium.dependencies.pip", f"{req.name} {spec} → {versions[req.name]}"))
    return notes


def plan_project(
    path: str | os.PathLike[str] = ".",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    resolve: bool | None = None,
    record: bool = True,
    walker: Walker | None = None,
    refresh: bool = False,
    offline: bool = False,
    secrets: Any = None,
    rerun: Sequence[str] = (),
    registry_credentials: Any = None,
    engine: str | None = None,
    tls: Any = None,
    connect_timeout: float | None = None,
    cache_from: Sequence[Any] | None = None,
) -> tuple[Plan, Analysis, tuple[Diagnostic, ...]]:
    """Load, plan and analyse the project at ``path`` against the step cache.

    Returns ``(plan, analysis, diagnostics)``; diagnostics are warnings (config
    warnings, dependency notes, cache degradation, skipped files).  Unpinned
    pip specs are resolved to exact pins first (``uv pip compile``) unless
    ``resolve`` is False (None, the default: on unless ``$BUILDER_RESOLVE=off``);
    an unreachable index falls back to the last resolution, else to the specs as
    written (with a warning);
    with ``record`` the plan is appended to the app's history, so the next
    plan's reasons compare against it; ``walker`` lists the project files
    (see :class:`~builder.plan.protocols.Walker`; the warm server passes one).  A resolution is reused for
    ``$BUILDER_RESOLVE_TTL`` seconds (default 3600); ``refresh`` asks the
    index now, ``offline`` reuses the last resolution whatever its age (both
    imply ``resolve``).  ``secrets`` names the build secrets the build will get, as for :func:`build`
    (only their ids are used: they are inputs of the steps that mount them; no value is read);
    ``rerun`` predicts those steps and the later ones as misses (``--rerun``, see :mod:`builder.plan.rerun`).
    Resolving also pins the base image to the digest its tag names now (:mod:`builder.base_image`, same
    TTL and flags); ``registry_credentials`` is a hook ``host -> credentials | None`` for private registries.
    Hits are predicted for the engine ``engine`` names (as for :func:`build`:
    else ``BUILDKIT_HOST``, else auto-detected), which is asked who it is only when a step record
    needs it; a step built on another engine only is a miss saying so, and when no engine answers,
    steps built on any engine count (a warning says so; ``analysis.predicted_for`` tells which).
    ``cache_from`` (buildx syntax or CacheSpec values; None: ``$BUILDER_CACHE_FROM``) adds the step
    records written next to those shared caches: a step only they hold is a hit "hit: shared cache REF".
    Raises ConfigError / DependencyError / PlanError for bad input; never raises for cache or
    engine problems.

    >>> # plan, analysis, diags = plan_project("fixtures/apps/minimal", record=False)
    >>> # analysis.status("base").status  →  'hit' or 'miss'
    """
    config, config_warnings = load_plan_config(path)
    warnings: list[Diagnostic] = list(config_warnings)
    policy = _policy(resolve, refresh, offline)
    from builder.engines.build_secrets import secret_ids_of

    ids = secret_ids_of(secrets)
    scope = EngineScope(lambda: identify_at(engine, tls, connect_timeout), warnings)
    shared = cache_specs_or_env(cache_from, "import")
    with opened_cache(cache_dir, warnings) as store:
        plan, analysis, _rerun = _plan_in(
            config,
            store,
            warnings,
            resolve=policy,
            record=record,
            walker=walker,
            secret_ids=ids,
            credentials=registry_credentials,
            engine=engine,
            scope=scope,
            ask_engine=engine is not None,
            shared=shared,
        )
    analysis = mark_rerun(analysis, _checked_rerun(plan, rerun), "--rerun")
    warnings.extend(located(config, plan.notes))
    return plan, analysis, _dedupe(warnings)


def resolve_by_default() -> bool:
    """Whether unpinned pip specs are resolved when the caller does not say: yes, unless
    ``$BUILDER_RESOLVE`` is ``off`` (or ``0``, ``false``, ``no``), e.g. for an air-gapped machine."""
    return os.environ.get("BUILDER_RESOLVE", "").strip().lower() not in _OFF


def _policy(resolve: bool | None, refresh: bool, offline: bool) -> Any:
    """The ResolutionPolicy for these flags, or None when pip specs are planned as written.

    ``resolve=None`` follows :func:`resolve_by_default`; ``refresh`` and ``offline`` imply resolving."""
    if resolve is None:
        resolve = resolve_by_default()
    if not (resolve or refresh or offline):
        return None
    from builder.deps.lock.uv import ResolutionPolicy

    return ResolutionPolicy.from_env(refresh=refresh, offline=offline)


def _gc_paused(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the cyclic GC paused: planning a large project allocates millions of acyclic
    tuples, lists and strings, and each automatic collection re-traverses all of them (measured on a
    50,000-file one-file edit: ~35% of ``builder build``'s time under load).  Restored afterwards."""

    @functools.wraps(func)
    def paused(*args: P.args, **kwargs: P.kwargs) -> R:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


@_gc_paused
def _plan_in(
    config: Config,
    store: Any,
    warnings: list[Diagnostic],
    *,
    resolve: Any,
    record: bool,
    walker: Walker | None,
    secret_ids: tuple[str, ...] = (),
    credentials: Any = None,
    engine: str | None = None,
    scope: EngineScope | None = None,
    ask_engine: bool = False,
    shared: Sequence[Any] = (),
) -> tuple[Plan, Analysis, tuple[StepKind, ...]]:
    """Plan and analyse ``config`` against an opened cache ``store`` (or None); warnings are appended.

    Also returns the steps to run again whatever the engine cache holds (``--refresh``, see _refreshed)."""
    from builder.deps import resolve_dependencies

    deps = resolve_dependencies(config, use_lock=True)
    warnings.extend(Diagnostic("warning", "cerebrium.dependencies", note) for note in deps.notes)
    warnings.extend(deps.warnings)
    base = None
    if resolve:
        deps = _resolve_pip(config, deps, store, warnings, resolve)
        warnings.extend(_unresolved_latest(deps))
        base = _resolve_base(config, store, warnings, resolve, credentials, engine)
    try:
        plan = make_plan(
            config,
            deps,
            stat_source=stat_source(store, config, warnings),
            walker=walker,
            secret_ids=secret_ids,
            base=base,
        )
    except (ConfigError, DependencyError, PlanError) as exc:
        located_exc = _planning_error(config, exc)
        if located_exc is exc:
            raise
        raise located_exc from exc
    steps: Any = history(store, warnings, scope)
    if shared:
        steps = SharedHistory(steps, _read_shared(shared, warnings, credentials))
    analysis = _scoped(analyze(plan, steps), scope, ask=ask_engine, shared=shared)
    rerun: tuple[StepKind, ...] = ()
    if resolve is not None and resolve.refresh:
        rerun, analysis = _refreshed(deps, analysis)
    if record and steps is not None:
        steps.record_plan(plan.app, plan.json_view())
    return plan, analysis, rerun


def _resolve_base(
    config: Config, store: Any, warnings: list[Diagnostic], policy: Any, credentials: Any, engine: str | None
) -> Any:
    """The base image's digest and layers (``builder.base_image``), or None (Dockerfile apps, pinned refs,
    nothing answered); the same TTL policy as pip resolution.  ``engine`` (the build's ``--engine``) is
    whose image store answers when no registry does (default: ``$DOCKER_HOST`` / ``$BUILDKIT_HOST``)."""
    if config.runtime is not None and config.runtime.dockerfile_path:
        return None
    from builder.base_image import DockerImages, Resolver, registry_client, resolve_base
    from builder.registry.credentials import lookup

    resolutions = getattr(store, "resolutions", None)
    resolver = Resolver(
        registry=registry_client(credentials if credentials is not None else lookup),
        engine=DockerImages.for_engine(engine, os.environ),
    )
    return resolve_base(config.deployment.docker_base_image_url, policy, resolutions, warnings, resolver)


def _scoped(
    analysis: Analysis, scope: EngineScope | None, *, ask: bool = False, shared: Sequence[Any] = ()
) -> Analysis:
    """``analysis`` saying for which engine (and shared caches) it predicted (``ask``: ask the engine even if
    no record needed it)."""
    if scope is None:
        return analysis
    return replace(analysis, predicted_for=scope.predicted_for([s.location for s in shared], ask=ask))


def _read_shared(specs: Sequence[Any], warnings: list[Diagnostic], credentials: Any = None) -> list[SharedRecords]:
    """The step records next to each ``--cache-from`` cache, with its manifest digest now (a failure: a warning).

    ``credentials``: the registry login hook (None: docker's logins), as for the base image."""
    from builder.engines.step_records import RecordsUnavailable, cache_manifest, read_records

    found = []
    for spec in specs:
        where = spec.location
        try:
            document = read_records(spec, credentials)
            manifest = cache_manifest(spec, exporting=False, credentials=credentials) if document is not None else None
        except RecordsUnavailable as exc:
            warnings.append(
                Diagnostic(
                    "warning",
                    "--cache-from",
                    f"no step records from {where}: {exc.message}; its hits are not predicted",
                )
            )
            continue
        if document is not None and document.get("app") is not None:
            found.append(SharedRecords(where, document, manifest))
    return found


def _publish_steps(
    plan: Plan, result: Any, specs: Sequence[Any], warnings: list[Diagnostic], credentials: Any = None
) -> None:
    """Write the step records next to each registry/local cache the build exported (a failure: a warning)."""
    from builder.engines.step_records import RecordsUnavailable, cache_manifest, write_records

    for spec in specs:
        if spec.type not in ("registry", "local"):
            continue
        try:
            manifest = cache_manifest(spec, exporting=True, credentials=credentials)
            document = steps_document(plan, result, spec.location, manifest)
            try:
                write_records(spec, document, credentials)
            except RecordsUnavailable:  # too big with the plan: the records alone still predict hits
                write_records(spec, {**document, "plan": None}, credentials)
        except RecordsUnavailable as exc:
            warnings.append(
                Diagnostic(
                    "warning",
                    "--cache-to",
                    f"the step records were not written next to {spec.location}: {exc.message}",
                    hint="other runners importing this cache predict its steps as misses (BuildKit still reuses them)",
                )
            )


def _dedupe(items: list[Diagnostic]) -> tuple[Diagnostic, ...]:
    seen: set[tuple[str, str]] = set()
    out = []
    for d in items:
        if (d.key_path, d.message) not in seen:
            seen.add((d.key_path, d.message))
            out.append(d)
    return tuple(out)


def diff_projects(old: str | os.PathLike[str], new: str | os.PathLike[str]) -> tuple[PlanDiff, tuple[Diagnostic, ...]]:
    """Plan two projects (config files or directories) without any cache and compare them.

    >>> # d, _ = diff_projects("v1/", "v2/"); d.cause  →  StepKind.PIP
    """
    plans = []
    warnings: list[Diagnostic] = []
    for path in (old, new):
        config, found = load_plan_config(path)
        warnings.extend(found)
        plan = make_plan(config)
        warnings.extend(plan.notes)
        plans.append(plan)
    return diff_plans(plans[0], plans[1]), _dedupe(warnings)


def diff_git(rev_old: str, rev_new: str, path: str | os.PathLike[str] = ".") -> tuple[PlanDiff, tuple[Diagnostic, ...]]:
    """Compare the project at ``path`` between two git revisions (``git archive`` into temp dirs).

    Raises PlanError when ``path`` is not in a git work tree or a revision is unknown.
    """
    project = Path(path).resolve()
    directory = project if project.is_dir() else project.parent
    top = repository_root(directory)
    rel = directory.relative_to(top).as_posix()
    name = project.name if project.is_file() else None
    with tempfile.TemporaryDirectory(prefix="builder-diff-") as tmp:
        targets = []
        for label, rev in (("old", rev_old), ("new", rev_new)):
            dest = Path(tmp) / label
            dest.mkdir()
            export_revision(top, rev, rel, dest)
            target = dest / rel if rel != "." else dest
            targets.append(target / name if name else target)
        return diff_projects(targets[0], targets[1])


def build(
    path: str | os.PathLike[str] = ".",
    *,
    engine: str | None = None,
    tag: str | None = None,
    push: bool = False,
    output: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
    network: str | None = None,
    timeout: float | None = None,
    plan_file: str | os.PathLike[str] | None = None,
    on_event: Any = None,
    engine_history: bool = False,
    walker: Walker | None = None,
    resolve: bool | None = None,
    refresh: bool = False,
    offline: bool = False,
    tls: Any = None,
    connect_timeout: float | None = None,
    secrets: Any = None,
    rerun: Sequence[str] = (),
    cache_to: Sequence[CacheSpec | str] | CacheSpec | str | None = None,
    cache_from: Sequence[CacheSpec | str] | CacheSpec | str | None = None,
    credentials: Any = None,
) -> tuple[Any, Analysis, tuple[Diagnostic, ...]]:
    """Plan the project at ``path`` (or read ``plan_file``), build it on BuildKit and record every step.

    ``cache_to`` / ``cache_from`` are shared caches in buildx's syntax (``"type=registry,ref=…,mode=max"``)
    or :class:`~builder.plan.cache_specs.CacheSpec` values; None (the default) reads
    ``$BUILDER_CACHE_TO`` / ``$BUILDER_CACHE_FROM``, ``()`` means none.  The step records are written
    next to each registry/local export and read from each import, as for :func:`plan_project`.

    Returns ``(BuildResult, analysis, diagnostics)``; ``on_event`` receives
    :mod:`builder.engines.events` values as the build runs.  ``ca_bundle``
    defaults to ``$BUILDER_CA_BUNDLE``.  ``engine_history`` also records the build in
    the engine's build history (see :class:`builder.engines.BuildOptions`); ``walker`` as for
    :func:`plan_project`.  ``resolve`` / ``refresh`` / ``offline`` pin unpinned pip specs first, as for
    :func:`plan_project`.  Raises EngineUnavailable (no engine),
    SolveFailed (a step failed: ``exc.failure`` has the step, command and log
    tail) or EngineUnsupported (an option the engine cannot honour).  ``tls`` (a
    :class:`builder.engines.buildkit.tls.TLSConfig`) is how to reach a TCP engine (default: from
    ``BUILDKIT_TLS_*`` / ``DOCKER_CERT_PATH``; ``TLSConfig(insecure=True)`` for plain TCP);
    ``connect_timeout`` bounds the connect and TLS handshake (default 10 s).
    ``secrets``: build secrets, as ``--secret`` strings (``["id=token,src=token.txt"]``, read now) or a
    mapping of id to value (``{"token": b"..."}``); each is mounted at ``/run/secrets/ID`` in the
    pre_build, apt, conda, pip and shell steps, its id an input of their keys, its value nowhere
    (see :mod:`builder.engines.build_secrets`).  ``rerun``: step names to run again whatever the engine
    cache holds, with everything built on them (see :mod:`builder.plan.rerun`).
    ``push`` pushes ``tag`` (which must name a registry, e.g. ``127.0.0.1:5000/app:dev``);
    ``result.pushed`` is ``REPOSITORY@DIGEST``.  Registry logins for the push and for private
    base images come from ``credentials(host)`` (default
    :func:`builder.registry.credentials.lookup`: docker's config and credential helpers);
    RegistryAuthError / RegistryUnavailable say a registry refused or was unreachable.

    >>> # result, analysis, _ = build("fixtures/apps/minimal", tag="minimal:dev", on_event=print)
    >>> # [m.step for m in result.mismatches]  →  []
    """
    from builder.engines import BuildOptions, OutputSpec
    from builder.engines.build_secrets import secrets_from
    from builder.engines.buildkit.push import registry_host

    user_secrets = secrets_from(secrets)  # read at the edge, before anything else: a missing file fails fast
    if push:
        registry_host(tag)  # before planning: a push without a registry in --tag is a usage error
    bundle = ca_bundle if ca_bundle is not None else (os.environ.get("BUILDER_CA_BUNDLE") or None)
    caches_to = cache_specs_or_env(cache_to, "export")
    caches_from = cache_specs_or_env(cache_from, "import")
    try:
        spec = OutputSpec.parse(output) if output else None
    except ValueError as exc:
        raise ConfigError(str(exc), key_path="--output", hint="e.g. --output type=oci,dest=image.tar") from exc
    config, config_warnings = load_plan_config(path)
    warnings: list[Diagnostic] = list(config_warnings)
    # Connecting and probing the engine is a few network round trips: they overlap planning.
    with EngineConnection(engine, tls, connect_timeout) as connecting, opened_cache(cache_dir, warnings) as store:
        scope = EngineScope(lambda: connecting.engine().identity(), warnings)
        given = None
        if plan_file is not None:  # a summary-only files step is completed from the project (digest checked)
            given = _read_plan_file(
                plan_file, config.deployment.name, lambda: _project_files(config, store, warnings, walker)
            )
        if given is None:
            plan, analysis, refreshed = _plan_in(
                config,
                store,
                warnings,
                resolve=_policy(resolve, refresh, offline),
                record=True,
                walker=walker,
                secret_ids=user_secrets.ids,
                credentials=credentials,
                engine=engine,
                scope=scope,
                ask_engine=True,
                shared=caches_from,
            )
            warnings.extend(plan.notes)
        else:  # the given plan is built as is; the project's history is left alone
            plan = given
            given_history: Any = history(store, warnings, scope)
            if caches_from:
                given_history = SharedHistory(given_history, _read_shared(caches_from, warnings, credentials))
            analysis = _scoped(analyze(plan, given_history), scope, ask=True, shared=caches_from)
            refreshed = ()
            warnings.extend(_plan_file_secrets(plan, user_secrets.ids, plan_file or ""))
        asked = _checked_rerun(plan, rerun)
        analysis = mark_rerun(analysis, asked, "--rerun")
        rerun_kinds = sorted({*refreshed, *asked}, key=lambda k: k.position)
        options = BuildOptions(
            tag=tag,
            push=push,
            output=spec,
            network=network,  # type: ignore[arg-type]
            ca_bundle=Path(bundle) if bundle else None,
            timeout=timeout,
            netrc=_index_credentials(config)
            if any(plan.get(k) is not None for k in (StepKind.PIP, StepKind.CONDA))
            else None,
            secrets=user_secrets.values,
            engine_history=engine_history,
            predictions=tuple((s.id.value, s.status) for s in analysis.steps),
            rerun=tuple(k.value for k in rerun_kinds),
            cache_to=caches_to,
            cache_from=caches_from,
            credentials=credentials,
        )
        project = Path(path)
        project_dir = project if project.is_dir() else project.parent
        with connecting.engine() as bk:
            route = _files_route(bk, plan, store)
            if route.note is not None:
                warnings.append(route.note)
            options = replace(options, files_changes=route.changes, files_base=route.export)
            try:
                result = bk.build(plan, project_dir, options, on_event=on_event)
            except SolveFailed as exc:  # what completed is in the engine's cache: the next plan predicts it
                record_steps(plan, _Completed(exc.completed, exc.engine), store, warnings, scope.identity())
                raise
            base_id = base_image_id(bk, plan, store, result)
        warnings.extend(Diagnostic("warning", "--cache-from", note) for note in getattr(result, "notes", ()))
        record_build(plan, analysis, result, store, base_id, warnings)
        exported = [spec for spec in caches_to if spec.type in ("registry", "local")]
        _gc_paused(record_steps)(plan, result, store, warnings, scope.identity(), [spec.location for spec in exported])
        _publish_steps(plan, result, exported, warnings, credentials)
        if store is not None and bk.keeps_files_bases():
            record_route(plan, store, route, warnings)
    return result, analysis, _dedupe(warnings)


@_gc_paused
def _files_route(bk: Any, plan: Plan, store: Any) -> FilesRoute:
    """How the files step is copied on this engine (see :mod:`builder.files_bases`)."""
    if store is None or not bk.keeps_files_bases():
        return FilesRoute()
    return choose_route(plan, store, lambda ref: bk.image_id(ref) is not None)


def _checked_rerun(plan: Plan, names: Sequence[str]) -> tuple[StepKind, ...]:
    """``--rerun`` names checked against ``plan`` (ConfigError naming the flag)."""
    if isinstance(names, str):
        names = (names,)
    try:
        return rerun_steps(plan, names)
    except ValueError as exc:
        raise ConfigError(str(exc), key_path="--rerun", hint="e.g. --rerun pip (repeatable)") from None


def _plan_file_secrets(plan: Plan, given: tuple[str, ...], plan_file: str | os.PathLike[str]) -> list[Diagnostic]:
    """A plan file's steps mount the secrets it was planned with: each must be given now (else ConfigError);
    a secret given but not in the plan is not mounted (a warning)."""
    planned = sorted({i for s in plan.steps for i in getattr(s.inputs, "secrets", ())})
    missing = [i for i in planned if i not in given]
    if missing:
        raise ConfigError(
            f"the plan {os.fspath(plan_file)} mounts the build secret(s) {', '.join(missing)}, which this build "
            "was not given",
            key_path="--secret",
            hint=f"pass --secret id={missing[0]},src=FILE (or env=VAR) for each",
        )
    unused = [i for i in given if i not in planned]
    if not unused:
        return []
    return [
        Diagnostic(
            "warning",
            "--secret",
            f"the plan {os.fspath(plan_file)} was made without the build secret(s) {', '.join(unused)}: "
            "they are not mounted",
            hint="re-plan with the same --secret flags: `builder plan --secret ... --format json`",
        )
    ]


def cache_specs_or_env(
    given: Sequence[CacheSpec | str] | CacheSpec | str | None, direction: Direction
) -> tuple[CacheSpec, ...]:
    """``--cache-to``/``--cache-from`` values as CacheSpecs; None reads ``BUILDER_CACHE_TO``/``_FROM``.

    Flags (or API arguments) replace the environment variable; they do not add to it.
    """
    if given is None:
        return specs_from_env(os.environ, direction)
    if isinstance(given, (str, CacheSpec)):  # one value given bare
        given = [given]
    flag = FLAGS[direction]
    specs = [s if isinstance(s, CacheSpec) else parse_cache_spec(s, flag=flag) for s in given]
    return tuple(dict.fromkeys(specs))


@dataclass(frozen=True, slots=True)
class _Completed:
    """The completed steps of a failed build, shaped like the BuildResult that ``record_steps`` reads."""

    steps: tuple[Any, ...]
    engine: str


def _index_credentials(config: Config) -> bytes | None:
    """The user:password pairs the project's pip and conda channel URLs carry, as one netrc (the pip and conda
    steps get it as a secret; the plan itself never holds them)."""
    from builder.deps import resolve_dependencies
    from builder.deps.model import netrc_text

    deps = resolve_dependencies(config, use_lock=False)
    pip = deps.pip.credentials if deps.pip is not None else ()
    conda = deps.conda.credentials if deps.conda is not None else ()
    return netrc_text((*pip, *conda))


def _project_files(config: Config, store: Any, warnings: list[Diagnostic], walker: Walker | None) -> FileManifest:
    """The project's current files manifest (what a summary-only plan's files step stands for)."""
    from builder.deps import resolve_dependencies

    plan = make_plan(
        config,
        resolve_dependencies(config, use_lock=True),
        stat_source=stat_source(store, config, warnings),
        walker=walker,
    )
    step = plan.get(StepKind.FILES)
    return step.inputs.manifest if step is not None else FileManifest.of(())


def _read_plan_file(path: str | os.PathLike[str], app: str, project_files: ProjectFiles | None = None) -> Plan:
    """The plan in ``path`` (``builder plan --format json`` output), checked to be a plan of ``app``.

    ``project_files()`` gives the project's manifest when the plan's files step has only a summary."""
    import json

    hint = "write it with: builder plan --format json > plan.json"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlanError(f"{os.fspath(path)}: cannot read the plan file ({reason})", hint=hint) from exc
    try:
        plan = Plan.from_json(json.loads(text), project_files)
    except PlanError as exc:
        raise PlanError(f"{os.fspath(path)}: {exc.message}", hint=exc.hint) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlanError(
            f"{os.fspath(path)}: not a plan written by `builder plan --format json` ({exc})", hint=hint
        ) from exc
    if plan.app != app:
        raise PlanError(
            f"{os.fspath(path)}: the plan is for app {plan.app!r}, but this project is {app!r}",
            hint="build the plan from the project it was made for, or re-plan this project",
        )
    return plan
