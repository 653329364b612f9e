"""What was built before, as planning and building see it: adapters over the ``cache`` package.

``builder.api`` opens the cache here and hands planning the two seams of
:mod:`builder.plan.protocols` (a :class:`StepHistory` and a :class:`StatSource`),
wrapped so that any storage failure degrades to "no history" (or "hash the
files again") plus one warning, never a crash.  After a build, every step's
outcome is recorded here, so the next plan predicts hits.

The ``cache`` package is optional: when it cannot be imported or opened,
:func:`opened_cache` yields None and says why once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from builder.config.model import Config
from builder.diagnostics import Diagnostic
from builder.errors import CacheError
from builder.plan.model import Plan
from builder.plan.protocols import StatSource, StepHistory

__all__ = [
    "EngineScope",
    "SafeHistory",
    "SafeStats",
    "base_image_id",
    "cache_warning",
    "history",
    "opened_cache",
    "record_build",
    "record_steps",
    "recorded_inputs",
    "stat_source",
]


def cache_warning(message: str, hint: str | None = None) -> Diagnostic:
    """A warning about the cache (key path ``cache``)."""
    return Diagnostic("warning", "cache", message, hint=hint)


class EngineScope:
    """The engine a plan predicts for, identified only when a step record needs it.

    ``lookup`` returns the engine's identity (an object with ``id`` and ``description``, see
    :mod:`builder.engines.identity`) or raises; a failure means "no engine reachable": hits are
    then predicted from the records of every engine, and one warning says so.
    """

    def __init__(self, lookup: Callable[[], Any], warnings: list[Diagnostic]) -> None:
        self._lookup = lookup
        self._warnings = warnings
        self._asked = False
        self._identity: Any = None
        self.unreachable: str | None = None

    def identity(self) -> Any:
        """The engine's identity, or None when it could not be asked (asked once)."""
        if not self._asked:
            self._asked = True
            try:
                self._identity = self._lookup()
            except Exception as exc:
                self.unreachable = str(getattr(exc, "message", None) or exc).splitlines()[0]
                self._warnings.append(
                    Diagnostic(
                        "warning",
                        "engine",
                        f"no engine reachable ({self.unreachable}): hits are predicted from steps built on any engine",
                        hint="pass --engine ADDR (or set BUILDKIT_HOST) to predict for the engine that will build",
                    )
                )
        return self._identity

    def predicted_for(self, cache_from: Sequence[str] = (), *, ask: bool = False) -> dict[str, Any]:
        """The plan JSON's ``predicted_for``; the engine is asked here only with ``ask`` (else only when a
        step record needed it: a plan without records predicts no hit, whatever the engine)."""
        found = self.identity() if ask or self._asked else None
        engine: Any = None
        if not self._asked:
            note = "any engine: no step is recorded as built, so no engine was asked"
        elif found is not None:
            note = f"engine {found.description}"
            engine = {"id": found.id, "description": found.description}
        else:
            note = f"no engine (unreachable: {self.unreachable}): steps built on any engine count as hits"
        if cache_from:
            note += "; shared cache " + ", ".join(cache_from)
        return {"engine": engine, "note": note, "cache_from": list(cache_from)}


class SafeHistory:
    """A StepHistory wrapper that turns storage failures into "no history" plus one warning.

    With an :class:`EngineScope`, a step counts as built only when its record holds for that
    engine (records from before engines were recorded hold for any); ``elsewhere`` then says
    which engines hold it instead.
    """

    def __init__(self, inner: StepHistory, warnings: list[Diagnostic], scope: EngineScope | None = None) -> None:
        self._inner = inner
        self._warnings = warnings
        self._failed = False
        self._scope = scope
        self._elsewhere: dict[str, str] = {}

    def _call(self, name: str, default: Any, *args: Any) -> Any:
        if self._failed:
            return default
        try:
            return getattr(self._inner, name)(*args)
        except Exception as exc:
            self._failed = True
            self._warnings.append(
                cache_warning(f"the step cache failed ({type(exc).__name__}: {exc}); planning without history")
            )
            return default

    def is_built(self, key: str) -> bool:
        """True when the step with ``key`` is recorded as built on the scope's engine (False when the cache failed)."""
        if not self._call("is_built", False, key):
            return False
        if self._scope is None or not hasattr(self._inner, "engines"):
            return True
        engines = self._call("engines", None, key)
        if not engines:  # recorded before engines were: holds for any
            return True
        found = self._scope.identity()
        if found is None or found.id in engines:
            return True
        where = "; ".join(sorted(set(engines.values())))
        self._elsewhere[key] = f"built on {where}, not on this engine ({found.description})"
        return False

    def elsewhere(self, key: str) -> str | None:
        """Why step ``key`` misses although recorded: it was built on other engines only (else None)."""
        return self._elsewhere.get(key)

    def duration(self, key: str) -> float | None:
        """Seconds the step took when last built, if known."""
        value = self._call("duration", None, key)
        return None if value is None else float(value)

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        """The JSON form of ``app``'s latest recorded plan, if any."""
        value = self._call("last_plan", None, app)
        return value if isinstance(value, Mapping) else None

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        """Append a plan to ``app``'s history (nothing when the cache failed)."""
        self._call("record_plan", None, app, plan_json)

    def pruned(self, key: str) -> str | None:
        """Why the engine no longer holds the step ``key`` (``builder engine prune`` freed it), else None."""
        value = self._call("pruned", None, key) if hasattr(self._inner, "pruned") else None
        return value if isinstance(value, str) else None


class SafeStats:
    """A StatSource wrapper: a failing stat cache means "re-read the files", not a crash."""

    def __init__(self, inner: StatSource, warnings: list[Diagnostic]) -> None:
        self._inner = inner
        self._warnings = warnings
        self._failed = False
        self.root = getattr(inner, "root", None)

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered digest, or None (also when the cache failed)."""
        if self._failed:
            return None
        try:
            return self._inner.get_digest(path, size, mtime_ns, inode)
        except Exception as exc:
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
            except Exception as exc:
                self._fail(exc)
        return [None] * len(keys)

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        """Remember new digests (dropped when the cache failed)."""
        if self._failed:
            return
        try:
            self._inner.put_digests(entries)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        self._warnings.append(
            cache_warning(
                f"the stat cache failed ({type(exc).__name__}: {exc}); file digests are computed from scratch"
            )
        )


@contextmanager
def opened_cache(cache_dir: str | os.PathLike[str] | None, warnings: list[Diagnostic]) -> Iterator[Any]:
    """The opened ``cache`` store, or None (plus one warning) when it is unavailable."""
    try:
        import cache as cache_pkg
    except ImportError as exc:
        warnings.append(cache_warning(f"the cache package is not available ({exc}); planning without history"))
        yield None
        return
    try:
        store = cache_pkg.open_cache(cache_dir)
    except (cache_pkg.CacheUnavailable, CacheError, OSError) as exc:
        fix = "pass --cache-dir DIR (or set BUILDER_CACHE_DIR) to a writable directory"
        warnings.append(
            cache_warning(
                f"cache unavailable: {exc}; planning without history", hint=None if "--cache-dir" in str(exc) else fix
            )
        )  # said once, not twice
        yield None
        return
    try:
        yield store
    finally:
        warnings.extend(cache_warning(str(w)) for w in getattr(store, "warnings", ()))
        with suppress(Exception):
            store.close()


def history(store: Any, warnings: list[Diagnostic], scope: EngineScope | None = None) -> SafeHistory | None:
    """The step history of an opened ``store`` (None without a cache), scoped to ``scope``'s engine if given."""
    return SafeHistory(store.steps, warnings, scope) if store is not None else None


def stat_source(store: Any, config: Config, warnings: list[Diagnostic]) -> StatSource | None:
    """The stat cache of an opened ``store``, bound to the project's root (None without a cache)."""
    if store is None:
        return None
    stats = store.stats
    try:
        bound = stats.for_root(config.project_dir) if hasattr(stats, "for_root") else stats
    except Exception as exc:
        warnings.append(cache_warning(f"the stat cache failed ({exc}); file digests are computed from scratch"))
        return None
    return SafeStats(bound, warnings)


def recorded_inputs(value: Any) -> Any:
    """A step's inputs as its cache record keeps them: file manifests by digest and count only.

    The record is read on every plan and build (is it built? touch it), so a 10,000-file list in
    it was parsed several times per build; the full list stays in the plan history for diffs.
    """
    if isinstance(value, dict):
        if "files" in value and "digest" in value and "count" in value:
            return {"digest": value["digest"], "count": value["count"]}
        return {k: recorded_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [recorded_inputs(v) for v in value]
    return value


def record_steps(
    plan: Plan,
    result: Any,
    store: Any,
    warnings: list[Diagnostic],
    identity: Any = None,
    cache_to: Sequence[str] = (),
) -> None:
    """Record every built step (new keys) and mark reused ones as used, so the next plan predicts hits.

    ``result`` has ``steps`` (StepOutcome values: all of a build's, or the completed ones of a
    failed build) and ``engine`` (its description).  Each record also holds for the engine
    ``identity`` names and for the shared caches the build exported to (``cache_to`` refs).
    """
    import time

    if store is None:
        return
    try:
        from cache import StepRecord

        now = time.time()
        engine_id = identity.id if identity is not None else ""
        described = identity.description if identity is not None else str(result.engine)
        caches = tuple(cache_to)
        for outcome in result.steps:
            if _seen_again(store.steps, outcome.key, engine_id, described, now, caches):
                continue
            step = plan.step(outcome.step)
            store.steps.record_step(
                StepRecord(
                    key=outcome.key,
                    kind=step.kind.value,
                    step_id=outcome.step,
                    app=plan.app,
                    engine=result.engine,
                    inputs_manifest=recorded_inputs(step.inputs_json()),
                    result_digest=outcome.vertex,
                    duration_s=outcome.seconds,
                    size_bytes=outcome.size_bytes,
                    created_at=now,
                    last_used_at=now,
                    engines={engine_id: described} if engine_id else {},
                    caches=caches,
                )
            )
    except Exception as exc:
        warnings.append(cache_warning(f"could not record the built steps ({type(exc).__name__}: {exc})"))


def _seen_again(steps: Any, key: str, engine_id: str, described: str, now: float, caches: tuple[str, ...]) -> bool:
    """Update an existing record (last use, engine, caches); False when ``key`` is not recorded yet."""
    if (not engine_id and not caches) or not hasattr(steps, "seen_on"):
        return bool(steps.touch(key, now))
    if not steps.seen_on(key, engine_id, described, when=now, cache=caches[0] if caches else None):
        return False
    for cache in caches[1:]:
        steps.seen_on(key, engine_id, described, when=now, cache=cache)
    return True


def base_image_id(engine: Any, plan: Plan, store: Any, result: Any) -> str | None:
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


def record_build(
    plan: Plan, analysis: Any, result: Any, store: Any, base_image: str | None, warnings: list[Diagnostic]
) -> None:
    """Append this build to the cache's build log for ``builder report`` (a failure is a warning, never a failed
    build).  Runs before :func:`record_steps`, which the record's "evicted" cause reads around."""
    if store is None:
        return
    try:
        from builder.reports.record import record_build as append_record

        append_record(store, plan, analysis, result, base_image)
    except Exception as exc:
        warnings.append(cache_warning(f"could not record the build for `builder report` ({type(exc).__name__}: {exc})"))
