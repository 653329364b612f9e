"""The on-disk caches of ``builder``: built steps, plan history, file digests, resolutions.

This package never imports ``builder``: it stores versioned JSON records
under string keys in one diskcache directory, safe for several processes.

Example::

    from cache import open_cache, CacheUnavailable

    try:
        store = open_cache()              # --cache-dir / BUILDER_CACHE_DIR / XDG default
    except CacheUnavailable as exc:
        ...                               # plan without history; warn once with str(exc)
    with store:
        store.steps.is_built(key)         # StepHistory
        store.stats.load_snapshot(root)   # StatSource (bulk path)
        store.resolutions.get(lock_key)
        store.warnings                    # repairs/degradation to show once
"""

from typing import TYPE_CHECKING

from cache.builds import BuildLog
from cache.errors import CacheUnavailable, RecordError, RecordSchemaError
from cache.handle import CacheStore, open_cache
from cache.location import resolve_cache_dir
from cache.records import CacheStats, PlanRecord, StepRecord
from cache.resolution import ResolutionCache
from cache.stat import RootStatSource, Snapshot, StatCache, StatEntry
from cache.steps import StepCache
from cache.trust import CacheRefused

if TYPE_CHECKING:
    from cache.prune import PruneResult

__all__ = [
    "BuildLog",
    "CacheRefused",
    "CacheStats",
    "CacheStore",
    "CacheUnavailable",
    "PlanRecord",
    "PruneResult",
    "RecordError",
    "RecordSchemaError",
    "ResolutionCache",
    "RootStatSource",
    "Snapshot",
    "StatCache",
    "StatEntry",
    "StepCache",
    "StepRecord",
    "open_cache",
    "resolve_cache_dir",
]


def __getattr__(name: str) -> object:
    # PruneResult is resolved on first use: cache.prune is only needed to scan or prune the store.
    if name == "PruneResult":
        from cache.prune import PruneResult

        return PruneResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
