"""The opened cache: ``open_cache()`` and ``CacheStore``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from cache.builds import BuildLog
from cache.errors import CacheUnavailable
from cache.location import resolve_cache_dir
from cache.records import CacheStats
from cache.resolution import ResolutionCache
from cache.stat import StatCache
from cache.steps import HISTORY_LIMIT, StepCache
from cache.store import DEFAULT_TIMEOUT_S, Store, open_store, remove_other_stores

if TYPE_CHECKING:
    from cache.prune import PruneResult

# cache.prune is imported by the methods that scan the whole store (summary, prune, clear): a build or
# plan only looks keys up, and importing it (two dataclasses) is a measurable part of a cached build.


class CacheStore:
    """An opened cache directory, its three caches and the build log (``builds``).

    ``steps`` (StepHistory), ``stats`` (StatSource) and ``resolutions`` share
    one store.  After a storage failure the store is *degraded*: reads miss,
    writes are dropped, and ``warnings`` says why (show it once).

    Example::

        with open_cache("/tmp/c") as c:
            c.steps.is_built(key)
            for w in c.warnings: ...
    """

    def __init__(self, store: Store, *, history_limit: int = HISTORY_LIMIT) -> None:
        self._store = store
        self.path: Path = store.root
        self.steps = StepCache(store, history_limit=history_limit)
        self.stats = StatCache(store)
        self.resolutions = ResolutionCache(store)
        self.builds = BuildLog(store.root)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Warnings about repairs and degradation since opening."""
        return self._store.warnings

    @property
    def degraded(self) -> bool:
        """True once a storage error made the cache stop reading and writing."""
        return self._store.degraded

    def summary(self) -> CacheStats:
        """Counts and sizes of everything stored."""
        from cache.prune import collect_stats

        return collect_stats(self._store)

    def prune(self, *, max_bytes: int | None = None, older_than_s: float | None = None) -> PruneResult:
        """Drop entries unused for ``older_than_s`` seconds, then LRU ones until within ``max_bytes``."""
        from cache.prune import prune

        result = prune(self._store, max_bytes=max_bytes, older_than_s=older_than_s)
        self.stats.invalidate()
        return result

    def clear(self) -> int:
        """Remove every entry (and stores of other versions); the number of entries removed."""
        from cache.prune import list_entries

        removed = len(list_entries(self._store))
        self._store.clear()
        self.stats.invalidate()
        remove_other_stores(self.path)
        return removed + self.builds.clear()

    def close(self) -> None:
        """Close the database (idempotent)."""
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_cache(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    timeout: float = DEFAULT_TIMEOUT_S,
    history_limit: int = HISTORY_LIMIT,
    shared: bool | None = None,
) -> CacheStore:
    """Open the cache at ``cache_dir`` (default: see ``cache.location``).

    Creates the directory, and repairs a damaged database by moving it aside
    (with a warning in ``CacheStore.warnings``).  Raises ``CacheUnavailable``
    with the reason and a fix when the directory cannot be used; callers then
    plan without history.  ``clock`` and ``timeout`` (seconds to wait for a
    busy database) are for tests and tuning.  A directory another user could
    change raises ``CacheRefused`` unless ``shared`` (default: ``$BUILDER_CACHE_SHARED``,
    see ``cache.trust``) says it is shared on purpose.
    """
    try:
        root = resolve_cache_dir(cache_dir)
    except (RuntimeError, KeyError) as exc:  # Path.home() without HOME or a passwd entry
        raise CacheUnavailable(
            f"cannot find a default cache directory ({exc}); pass --cache-dir or set BUILDER_CACHE_DIR"
        ) from exc
    return CacheStore(open_store(root, clock=clock, timeout=timeout, shared=shared), history_limit=history_limit)
