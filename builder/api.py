"""The documented entry points: config → plan → analysis, wired to the cache.

This is the only library module that joins ``builder.config``,
``builder.deps``, ``builder.plan`` and the ``cache`` package.  The cache is
optional: when it cannot be imported, opened or used, planning goes on without
history and one warning says why.

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

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.config import load
from builder.config.model import Config
from builder.deps.model import ResolvedDependencies
from builder.diagnostics import Diagnostic
from builder.errors import CacheError, ConfigError, LockError, PlanError
from builder.plan.analyze import Analysis, analyze
from builder.plan.context import file_rules
from builder.plan.diff import PlanDiff, diff_plans
from builder.plan.make import make_plan
from builder.plan.model import Plan
from builder.plan.protocols import StatSource, StepHistory
from builder.plan.revisions import export_revision, repository_root

__all__ = ["analyze", "build", "diff_git", "diff_plans", "diff_projects", "load_plan_config", "make_plan", "plan_project"]


def _warning(key_path: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("warning", key_path, message, hint=hint)


def load_plan_config(path: str | os.PathLike[str]) -> tuple[Config, tuple[Diagnostic, ...]]:
    """Load ``path`` (cerebrium.toml or its directory) and return (config, warnings); ConfigError when invalid."""
    result = load(path)
    if result.config is None:
        errors = result.errors
        first = errors[0] if errors else None
        raise ConfigError(
            first.format() if first and len(errors) == 1 else f"{os.fspath(path)}: invalid configuration "
            f"({len(errors)} errors)",
            file=first.file if first else None,
            key_path=first.key_path if first else None,
            line=first.line if first else None,
            diagnostics=errors,
        )
    return result.config, result.warnings


class _SafeHistory:
    """A StepHistory wrapper that turns storage failures into "no history" plus one warning."""

    def __init__(self, inner: StepHistory, warnings: list[Diagnostic]) -> None:
        self._inner = inner
        self._warnings = warnings
        self._failed = False

    def _call(self, name: str, default: Any, *args: Any) -> Any:
        if self._failed:
            return default
        try:
            return getattr(self._inner, name)(*args)
        except Exception as exc:  # noqa: BLE001 - any cache failure degrades, never crashes planning
            self._failed = True
            self._warnings.append(_warning("cache", f"the step cache failed ({type(exc).__name__}: {exc}); "
                                           "planning without history"))
            return default

    def is_built(self, key: str) -> bool:
        return bool(self._call("is_built", False, key))

    def duration(self, key: str) -> float | None:
        value = self._call("duration", None, key)
        return None if value is None else float(value)

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        value = self._call("last_plan", None, app)
        return value if isinstance(value, Mapping) else None

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        self._call("record_plan", None, app, plan_json)


class _SafeStats:
    """A StatSource wrapper: a failing stat cache means "re-read the files", not a crash."""

    def __init__(self, inner: StatSource, warnings: list[Diagnostic]) -> None:
        self._inner = inner
        self._warnings = warnings
        self._failed = False
        self.root = getattr(inner, "root", None)

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        if self._failed:
            return None
        try:
            return self._inner.get_digest(path, size, mtime_ns, inode)
        except Exception as exc:  # noqa: BLE001 - degrade to hashing
            self._fail(exc)
            return None

    def get_digests(self, keys: Sequence[tuple[str, int, int, int]]) -> Sequence[str | None]:
        """Bulk lookup (one call for the whole tree) when the inner source has it."""
        if not self._failed:
            try:
                bulk = getattr(self._inner, "get_digests", None)
                if bulk is not None:
                    return list(bulk(keys))
                return [self._inner.get_digest(key[0], key[1], key[2], key[3]) for key in keys]
            except Exception as exc:  # noqa: BLE001 - degrade to hashing
                self._fail(exc)
        return [None] * len(keys)

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        if self._failed:
            return
        try:
            self._inner.put_digests(entries)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        self._warnings.append(_warning("cache", f"the stat cache failed ({type(exc).__name__}: {exc}); "
                                       "file digests are computed from scratch"))


@contextmanager
def _opened_cache(cache_dir: str | os.PathLike[str] | None, warnings: list[Diagnostic]) -> Iterator[Any]:
    """The opened ``cache`` store, or None (plus one warning) when it is unavailable."""
    try:
        import cache as cache_pkg
    except ImportError as exc:
        warnings.append(_warning("cache", f"the cache package is not available ({exc}); planning without history"))
        yield None
        return
    _prepared.settle()
    held, _prepared.store = _prepared.store, None
    try:
        if held is not None and held[0] == _resolved_cache_root(cache_dir):
            store = held[1]
        else:
            if held is not None:
                with suppress(Exception):
                    held[1].close()
            store = cache_pkg.open_cache(cache_dir)
    except (cache_pkg.CacheUnavailable, CacheError, OSError) as exc:
        fix = "pass --cache-dir DIR (or set BUILDER_CACHE_DIR) to a writable directory"
        warnings.append(_warning("cache", f"cache unavailable: {exc}; planning without history",
                                 hint=None if "--cache-dir" in str(exc) else fix))  # said once, not twice
        yield None
        return
    try:
        yield store
    finally:
        warnings.extend(_warning("cache", str(w)) for w in getattr(store, "warnings", ()))
        with suppress(Exception):
            store.close()


def _resolve_pip(config: Config, deps: ResolvedDependencies, store: Any,
                 warnings: list[Diagnostic]) -> ResolvedDependencies:
    """``plan --resolve``: pin unpinned pip specs with uv so new releases change the pip key."""
    if deps.pip is None or deps.pip.locked:
        return deps
    try:
        from builder.deps.lock import MemoryResolutionStore
        from builder.deps.lock.uv import compile_pip

        resolutions = getattr(store, "resolutions", None) or MemoryResolutionStore()
        pinned = compile_pip(deps.pip, python_version=config.deployment.python_version, store=resolutions,
                             project_dir=config.project_dir)
    except (ImportError, LockError, OSError) as exc:
        warnings.append(_warning("cerebrium.dependencies.pip", f"could not resolve pip requirements ({exc}); "
                                 "keys are based on the specs as written",
                                 hint="check network access to the package index, or run `builder lock`"))
        return deps
    return replace(deps, pip=pinned)


def plan_project(
    path: str | os.PathLike[str] = ".",
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    resolve: bool = False,
    record: bool = True,
) -> tuple[Plan, Analysis, tuple[Diagnostic, ...]]:
    """Load, plan and analyse the project at ``path`` against the step cache.

    Returns ``(plan, analysis, diagnostics)``; diagnostics are warnings (config
    warnings, dependency notes, cache degradation, skipped files).  With
    ``resolve`` unpinned pip specs are resolved first (``uv pip compile``);
    with ``record`` the plan is appended to the app's history, so the next
    plan's reasons compare against it.  Raises ConfigError / DependencyError
    / PlanError for bad input; never raises for cache problems.

    >>> # plan, analysis, diags = plan_project("fixtures/apps/minimal", record=False)
    >>> # analysis.status("base").status  →  'hit' or 'miss'
    """
    config, config_warnings = load_plan_config(path)
    warnings: list[Diagnostic] = list(config_warnings)
    with _opened_cache(cache_dir, warnings) as store:
        plan, analysis = _plan_in(config, store, warnings, resolve=resolve, record=record)
    warnings.extend(plan.notes)
    return plan, analysis, _dedupe(warnings)


def _plan_in(config: Config, store: Any, warnings: list[Diagnostic], *, resolve: bool,
             record: bool) -> tuple[Plan, Analysis]:
    """Plan and analyse ``config`` against an opened cache ``store`` (or None); warnings are appended."""
    from builder.deps import resolve_dependencies

    deps = resolve_dependencies(config, use_lock=True)
    warnings.extend(_warning("cerebrium.dependencies", note) for note in deps.notes)
    if resolve:
        deps = _resolve_pip(config, deps, store, warnings)
    stats = _stat_source(store, config, warnings)
    plan = make_plan(config, deps, stat_source=stats)
    history = _SafeHistory(store.steps, warnings) if store is not None else None
    analysis = analyze(plan, history)
    if record and history is not None:
        history.record_plan(plan.app, plan.json_view())
    return plan, analysis


def _stat_source(store: Any, config: Config, warnings: list[Diagnostic]) -> StatSource | None:
    if store is None:
        return None
    stats = store.stats
    try:
        bound = stats.for_root(config.project_dir) if hasattr(stats, "for_root") else stats
    except Exception as exc:  # noqa: BLE001 - degrade to hashing
        warnings.append(_warning("cache", f"the stat cache failed ({exc}); file digests are computed from scratch"))
        return None
    return _SafeStats(bound, warnings)


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


# --- build (helper G): plan → BuildKit → step cache -----------------------------------------------


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
) -> tuple[Any, Analysis, tuple[Diagnostic, ...]]:
    """Plan the project at ``path`` (or read ``plan_file``), build it on BuildKit and record every step.

    Returns ``(BuildResult, analysis, diagnostics)``; ``on_event`` receives
    :mod:`builder.engines.events` values as the build runs.  ``ca_bundle``
    defaults to ``$BUILDER_CA_BUNDLE``.  ``engine_history`` also records the build in
    the engine's build history (see :class:`builder.engines.BuildOptions`).  Raises EngineUnavailable (no engine),
    SolveFailed (a step failed: ``exc.failure`` has the step, command and log
    tail) or EngineUnsupported (an option the engine cannot honour).

    >>> # result, analysis, _ = build("fixtures/apps/minimal", tag="minimal:dev", on_event=print)
    >>> # [m.step for m in result.mismatches]  →  []
    """
    from builder.engines import BuildOptions, OutputSpec

    bundle = ca_bundle if ca_bundle is not None else (os.environ.get("BUILDER_CA_BUNDLE") or None)
    try:
        spec = OutputSpec.parse(output) if output else None
    except ValueError as exc:
        raise ConfigError(str(exc), key_path="--output", hint="e.g. --output type=oci,dest=image.tar") from exc
    config, config_warnings = load_plan_config(path)
    given = _read_plan_file(plan_file, config.deployment.name) if plan_file is not None else None
    warnings: list[Diagnostic] = list(config_warnings)
    # Connecting and probing the engine is a few network round trips: they overlap planning.
    with _EngineConnection(engine) as connecting, _opened_cache(cache_dir, warnings) as store:
        if given is None:
            plan, analysis = _plan_in(config, store, warnings, resolve=False, record=True)
            warnings.extend(plan.notes)
        else:  # the given plan is built as is; the project's history is left alone
            plan = given
            analysis = analyze(plan, _SafeHistory(store.steps, warnings) if store is not None else None)
        options = BuildOptions(tag=tag, push=push, output=spec, network=network,  # type: ignore[arg-type]
                               ca_bundle=Path(bundle) if bundle else None, timeout=timeout,
                               engine_history=engine_history,
                               predictions=tuple((s.id.value, s.status) for s in analysis.steps))
        project = Path(path)
        project_dir = project if project.is_dir() else project.parent
        with connecting.engine() as bk:
            result = bk.build(plan, project_dir, options, on_event=on_event)
            base_id = _base_image_id(bk, plan, store, result)
        _record_build(plan, analysis, result, store, base_id, warnings)
        _record_steps(plan, result, store, warnings)
    _note_hint(engine, cache_dir, config)
    return result, analysis, _dedupe(warnings)


class _Prepared:
    """An engine connection and an open cache made ahead of a command (the warm server's spare child)."""

    def __init__(self) -> None:
        self.engine: tuple[str, Any, float] | None = None  # (address, BuildKitEngine, monotonic time)
        self.store: tuple[str, Any] | None = None  # (resolved cache root, CacheStore)
        self.pending: Any = None  # the thread preparing them, if still running

    def settle(self) -> None:
        """Wait for a preparation still under way (a build would have to connect anyway)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.join()


_prepared = _Prepared()
#: Set by the warm server in the processes it runs commands in: told which engine and cache a build used,
#: so the next command's process can connect and open them before that command arrives.
_hint_sink: Any = None
#: A prepared connection older than this is checked with one cheap call before it is used.
_PREPARED_FRESH_S = 10.0


def prepare(engine: str | None, cache_dir: str | None) -> None:
    """Connect to ``engine`` (detecting its capabilities) and open the cache at ``cache_dir`` ahead of a build.

    Used by the warm server while it waits for the next command; ``build`` uses
    them when that command names the same engine and cache, and ignores them
    otherwise.  Failures are left for the build itself to meet and report.
    """
    import time

    if engine:
        with suppress(Exception):
            from builder.engines.buildkit import BuildKitEngine

            connected = BuildKitEngine.connect(engine)
            connected.client.capabilities
            _prepared.engine = (engine, connected, time.monotonic())
    if cache_dir:
        with suppress(Exception):
            import cache as cache_pkg

            _prepared.store = (cache_dir, cache_pkg.open_cache(cache_dir))


def prepare_in_background(engine: str | None, cache_dir: str | None) -> None:
    """``prepare`` in a thread, so a command that arrives meanwhile starts at once (and waits only if it
    needs the engine or the cache)."""
    import threading

    thread = threading.Thread(target=prepare, args=(engine, cache_dir), name="builder-prepare", daemon=True)
    _prepared.pending = thread
    thread.start()


def _explicit_engine(address: str | None) -> str | None:
    """The one engine address ``address`` or ``$BUILDKIT_HOST`` names (None when auto-detecting)."""
    from builder.engines.buildkit.address import candidate_addresses

    try:
        found = candidate_addresses(address, os.environ)
    except Exception:  # noqa: BLE001 - a bad address is reported by the real connect
        return None
    return str(found[0]) if len(found) == 1 else None


def _take_prepared_engine(address: str | None) -> Any:
    """The prepared engine when it is the one this build asks for (and still answers), else None."""
    import time

    _prepared.settle()
    held, _prepared.engine = _prepared.engine, None
    if held is None:
        return None
    wanted, engine, made = held
    if _explicit_engine(address) != wanted:
        engine.close()
        return None
    if time.monotonic() - made > _PREPARED_FRESH_S:
        try:
            engine.client.workers()
        except Exception:  # noqa: BLE001 - a stale connection: connect afresh
            engine.close()
            return None
    return engine


def _resolved_cache_root(cache_dir: str | os.PathLike[str] | None) -> str | None:
    try:
        from cache import resolve_cache_dir

        return str(resolve_cache_dir(cache_dir))
    except Exception:  # noqa: BLE001 - open_cache reports it
        return None


def _note_hint(engine: str | None, cache_dir: str | os.PathLike[str] | None, config: Config) -> None:
    """Tell the warm server what the next build will likely use: engine, cache, project and file rules."""
    if _hint_sink is None:
        return
    with suppress(Exception):
        rules = file_rules(config)
        _hint_sink({"engine": _explicit_engine(engine), "cache_dir": _resolved_cache_root(cache_dir),
                    "project": str(Path(config.project_dir).resolve()),
                    "rules": [list(rules.include), list(rules.exclude), list(rules.always_exclude)]})


class _EngineConnection:
    """Connects to the engine (and detects its capabilities) in a background thread.

    ``engine()`` waits for it and returns the connected engine, or raises what
    connecting raised; if the build stops before asking, the connection is
    closed as soon as it is made.
    """

    def __init__(self, address: str | None) -> None:
        import threading

        self._address = address
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._taken = False
        self._thread = threading.Thread(target=self._connect, name="builder-connect", daemon=True)

    def __enter__(self) -> _EngineConnection:
        ready = _take_prepared_engine(self._address)
        if ready is not None:
            self._result = ready
        else:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._abandoned = True
            engine = None if self._taken else self._result
        if engine is not None:
            engine.close()

    def _connect(self) -> None:
        from builder.engines.buildkit import BuildKitEngine

        try:
            engine = BuildKitEngine.connect(self._address)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by engine()
            self._error = exc
            return
        with suppress(Exception):  # a failed probe is retried (and reported) when the build needs it
            engine.client.capabilities
        with self._lock:
            self._result = engine
            abandoned = self._abandoned
        if abandoned:
            engine.close()

    def engine(self) -> Any:
        """The connected :class:`BuildKitEngine` (the caller closes it)."""
        if self._thread.ident is not None:  # started (not when a prepared engine was taken)
            self._thread.join()
        if self._error is not None:
            raise self._error
        with self._lock:
            self._taken = True
            return self._result


def _read_plan_file(path: str | os.PathLike[str], app: str) -> Plan:
    """The plan in ``path`` (``builder plan --format json`` output), checked to be a plan of ``app``."""
    import json

    hint = "write it with: builder plan --format json > plan.json"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PlanError(f"{os.fspath(path)}: cannot read the plan file ({reason})", hint=hint) from exc
    try:
        plan = Plan.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlanError(f"{os.fspath(path)}: not a plan written by `builder plan --format json` ({exc})",
                        hint=hint) from exc
    if plan.app != app:
        raise PlanError(f"{os.fspath(path)}: the plan is for app {plan.app!r}, but this project is {app!r}",
                        hint="build the plan from the project it was made for, or re-plan this project")
    return plan


def _recorded_inputs(value: Any) -> Any:
    """A step's inputs as its cache record keeps them: file manifests by digest and count only.

    The record is read on every plan and build (is it built? touch it), so a 10,000-file list in
    it was parsed several times per build; the full list stays in the plan history for diffs.
    """
    if isinstance(value, dict):
        if "files" in value and "digest" in value and "count" in value:
            return {"digest": value["digest"], "count": value["count"]}
        return {k: _recorded_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_recorded_inputs(v) for v in value]
    return value


def _record_steps(plan: Plan, result: Any, store: Any, warnings: list[Diagnostic]) -> None:
    """Record every built step (new keys) and mark reused ones as used, so the next plan predicts hits."""
    import time

    if store is None:
        return
    try:
        from cache import StepRecord

        now = time.time()
        for outcome in result.steps:
            if store.steps.touch(outcome.key, now):  # already recorded: only its last use changes
                continue
            step = plan.step(outcome.step)
            store.steps.record_step(StepRecord(
                key=outcome.key, kind=step.kind.value, step_id=outcome.step, app=plan.app, engine=result.engine,
                inputs_manifest=_recorded_inputs(step.inputs_json()), result_digest=outcome.vertex,
                duration_s=outcome.seconds,
                size_bytes=outcome.size_bytes, created_at=now, last_used_at=now))
    except Exception as exc:  # noqa: BLE001 - a cache failure must not fail a finished build
        warnings.append(_warning("cache", f"could not record the built steps ({type(exc).__name__}: {exc})"))


# --- build history for `builder report` (builder/reports/record.py holds the record) ----------------


def _base_image_id(engine: Any, plan: Plan, store: Any, result: Any) -> str | None:
    """The engine's ID of the plan's base image (dockerd only), to tell a re-tagged base from a pruned cache.

    Asked only when a step ran: a re-tag always rebuilds, and a fully cached build stays one call shorter.
    """
    from builder.plan.model import StepKind

    base = plan.get(StepKind.BASE)
    image = getattr(base.inputs, "image", None) if base is not None else None
    if store is None or not isinstance(image, str) or not hasattr(engine, "image_id"):
        return None
    if all(step.cached for step in result.steps):
        return None
    return engine.image_id(image)  # type: ignore[no-any-return]


def _record_build(plan: Plan, analysis: Analysis, result: Any, store: Any, base_image_id: str | None,
                  warnings: list[Diagnostic]) -> None:
    """Append this build to the cache's build log (a failure is a warning, never a failed build)."""
    if store is None:
        return
    try:
        from builder.reports.record import record_build

        record_build(store, plan, analysis, result, base_image_id)
    except Exception as exc:  # noqa: BLE001 - a cache failure must not fail a finished build
        warnings.append(_warning("cache", f"could not record the build for `builder report` "
                                          f"({type(exc).__name__}: {exc})"))
