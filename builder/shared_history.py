"""Step history shared through a build cache: the records a runner writes next to ``--cache-to``, and
the history a runner reads from ``--cache-from`` (pure data; the I/O is :mod:`builder.engines.step_records`).

A runner that exports a cache also writes a small document naming the steps the cache holds
(:func:`steps_document`).  A runner that imports the cache plans against :class:`SharedHistory`:
its own step cache first, then those records — a step found only there is a hit whose reason
says ``hit: shared cache REF``.  Records whose cache manifest is gone (or was overwritten by
another export) predict nothing; the miss says why.

>>> # history = SharedHistory(local, [SharedRecords(ref, document, manifest_now)])
>>> # analyze(plan, history).status("pip").reason  →  'hit: shared cache 127.0.0.1:5000/app:cache'
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.plan.model import Plan
from builder.plan.recipes import RECIPES

__all__ = ["SCHEMA", "SharedHistory", "SharedRecords", "steps_document"]

SCHEMA = "builder-steps/1"


def steps_document(plan: Plan, result: Any, cache: str, manifest: str | None) -> dict[str, Any]:
    """The records of ``plan``'s steps built by ``result`` for the cache ``cache`` (its canonical spec text).

    Only engine-independent facts: step ids, kinds, keys, recipe revisions, durations and sizes,
    the digest of the cache manifest they hold for, and the plan (for miss reasons on other runners).
    """
    outcomes = {outcome.step: outcome for outcome in result.steps}
    steps = []
    for step in plan.steps:
        outcome = outcomes.get(step.id.value)
        if outcome is None:
            continue
        steps.append(
            {
                "id": step.id.value,
                "kind": step.kind.value,
                "key": step.key,
                "recipe": RECIPES.get(step.kind),
                "duration_s": float(outcome.seconds),
                "size_bytes": int(outcome.size_bytes),
            }
        )
    return {
        "schema": SCHEMA,
        "app": plan.app,
        "cache": cache,
        "cache_manifest": manifest,
        "created_at": round(time.time(), 3),
        "steps": steps,
        "plan": plan.to_json(),
    }


@dataclass(frozen=True, slots=True)
class SharedRecords:
    """One ``--cache-from`` cache's records: ``document`` as read, ``manifest`` the cache's manifest digest now."""

    ref: str
    document: Mapping[str, Any] | None
    manifest: str | None
    problem: str | None = None  # why the records could not be read (already said as a warning)


class SharedHistory:
    """A StepHistory: this runner's records (``local``, may be None), then the shared caches' records."""

    def __init__(self, local: Any, shared: Sequence[SharedRecords]) -> None:
        self._local = local
        self._hits: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._stale: dict[str, str] = {}
        self._plans: dict[str, Mapping[str, Any]] = {}
        for records in shared:
            self._add(records)

    def _add(self, records: SharedRecords) -> None:
        doc = records.document
        if doc is None:
            return
        stale = _stale_reason(records)
        for entry in doc.get("steps", ()):
            key = entry.get("key") if isinstance(entry, Mapping) else None
            if not isinstance(key, str):
                continue
            if stale is None:
                self._hits.setdefault(key, (records.ref, entry))
            else:
                self._stale.setdefault(key, stale)
        plan = doc.get("plan")
        app = doc.get("app")
        if isinstance(plan, Mapping) and isinstance(app, str):
            self._plans.setdefault(app, plan)

    def _local_built(self, key: str) -> bool:
        return self._local is not None and bool(self._local.is_built(key))

    def is_built(self, key: str) -> bool:
        """Built on this engine (local records), or held by a shared cache whose manifest is still there."""
        return self._local_built(key) or key in self._hits

    def hit_source(self, key: str) -> str | None:
        """``shared cache REF`` for a hit that only the shared records predict."""
        if key in self._hits and not self._local_built(key):
            return f"shared cache {self._hits[key][0]}"
        return None

    def elsewhere(self, key: str) -> str | None:
        """Why a step named by shared records (or built on another engine) is still a miss."""
        if key in self._stale:
            return self._stale[key]
        method = getattr(self._local, "elsewhere", None)
        return method(key) if callable(method) else None

    def pruned(self, key: str) -> str | None:
        """As the local history says (an engine prune)."""
        method = getattr(self._local, "pruned", None)
        return method(key) if callable(method) else None

    def duration(self, key: str) -> float | None:
        """The local duration, else the one the shared records carry."""
        found = self._local.duration(key) if self._local is not None else None
        if found is None and key in self._hits:
            seconds = self._hits[key][1].get("duration_s")
            found = float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else None
        return found

    def last_plan(self, app: str) -> Mapping[str, Any] | None:
        """The local last plan of ``app``, else the plan the shared records came with."""
        found = self._local.last_plan(app) if self._local is not None else None
        return found if found is not None else self._plans.get(app)

    def record_plan(self, app: str, plan_json: Mapping[str, Any]) -> None:
        """Recorded locally only (the shared records change when a build exports the cache)."""
        if self._local is not None:
            self._local.record_plan(app, plan_json)


def _stale_reason(records: SharedRecords) -> str | None:
    """None when the records hold for the cache as it is now, else why they do not."""
    written = records.document.get("cache_manifest") if records.document is not None else None
    if records.manifest is None:
        return f"the step records of shared cache {records.ref} name it, but the cache manifest is gone"
    if isinstance(written, str) and written != records.manifest:
        return (
            f"shared cache {records.ref} was exported again ({_short(records.manifest)}) since its step records "
            f"were written ({_short(written)})"
        )
    return None


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]
