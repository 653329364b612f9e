"""The seams through which planning sees persistent state and the project's files.

Plan code never imports ``cache`` (or diskcache) or the warm server: it receives
objects that satisfy these Protocols.  ``cache.StatCache`` and ``cache.StepCache``
implement them on disk; tests use the in-memory versions below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from builder.plan.fileset import FileRules, Walked


class StatSource(Protocol):
    """Content digests of files, remembered by (path, size, mtime_ns, inode).

    ``path`` is absolute, except for a source bound to one project root
    (one that has a ``root`` attribute, like ``cache.RootStatSource``), which
    gets paths relative to that root.
    """

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        """The remembered content digest, or None when the stat tuple is new."""

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        """Remember many (path, size, mtime_ns, inode) → digest entries at once."""


class BulkStatSource(StatSource, Protocol):
    """Optional extension: look up many stat tuples in one call.

    Planning uses ``get_digests`` when a StatSource has it (one query instead of
    one per file, which matters for 100,000-file projects); keys start with the
    same (path, size, mtime_ns, inode) as ``get_digest`` and may carry more items
    after those four (the walk's permission bits), which a source ignores.
    """

    def get_digests(self, keys: Sequence[tuple[str, int, int, int]]) -> Sequence[str | None]:
        """The remembered digest of each key, aligned with ``keys`` (None where unknown)."""


class Walker(Protocol):
    """Lists a project's files for the ``files`` step, in place of :func:`builder.plan.fileset.walk`.

    It must return exactly what ``walk(base, rules)`` would return at that moment:
    a walker only saves time (the warm server's spare walks the last project ahead,
    see :mod:`builder.server.prewalk`), it never changes what is selected.
    """

    def walk(self, base: str, rules: FileRules) -> Walked:
        """The files under ``base`` (an absolute, resolved directory) selected by ``rules``."""


class StepHistory(Protocol):
    """What was built before: step records and the per-app plan history."""

    def is_built(self, key: str) -> bool:
        """True when a step with this key has been recorded as built."""

    def duration(self, key: str) -> float | None:
        """Seconds the step with this key took when last built, if known."""

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        """The JSON form of the latest plan recorded for ``app`` (see Plan.to_json)."""

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        """Append a plan (JSON form) to ``app``'s history."""


class MemoryStatSource:
    """In-memory StatSource for tests and for planning without a cache."""

    def __init__(self) -> None:
        self._d: dict[tuple[str, int, int, int], str] = {}

    def get_digest(self, path: str, size: int, mtime_ns: int, inode: int) -> str | None:
        return self._d.get((path, size, mtime_ns, inode))

    def get_digests(self, keys: Sequence[tuple[str, int, int, int]]) -> Sequence[str | None]:
        get = self._d.get
        return [get(k[:4]) for k in keys]

    def put_digests(self, entries: Mapping[tuple[str, int, int, int], str]) -> None:
        self._d.update(entries)


class MemoryStepHistory:
    """In-memory StepHistory for tests and for planning without a cache."""

    def __init__(self) -> None:
        self.built: dict[str, float | None] = {}
        self.plans: dict[str, list[Mapping[str, Any]]] = {}
        #: key → the engines (identity → description) the step was built on; absent: any engine
        self.built_on: dict[str, dict[str, str]] = {}

    def is_built(self, key: str) -> bool:
        return key in self.built

    def engines(self, key: str) -> Mapping[str, str] | None:
        """The engines step ``key`` holds for (empty: any); None when not built (as ``cache.StepCache``)."""
        return self.built_on.get(key, {}) if key in self.built else None

    def duration(self, key: str) -> float | None:
        return self.built.get(key)

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        history = self.plans.get(app)
        return history[-1] if history else None

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        self.plans.setdefault(app, []).append(plan_json)
