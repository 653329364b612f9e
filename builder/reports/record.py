"""What one build adds to the history ``builder report`` reads: a small JSON record.

Built from values the build already holds (the plan, its analysis and the
engine's :class:`~builder.engines.BuildResult`) plus the recorded duration of
each step that was a hit (the seconds the hit saved).  The record, one line of
``cache.BuildLog``::

    {"schema": 1, "app": str, "at": epoch seconds, "engine": str, "seconds": float,
     "builder": version, "base_image_id": str|null, "config_only": bool,
     "steps": [{"id", "predicted": "hit"|"miss"|null, "observed": "hit"|"miss",
                "seconds", "saved_s", "bytes", "causes": [{"kind", "name", "via"?}]}]}

Miss causes come from the analysis (:mod:`builder.plan.causes`).  A step predicted
to hit that the engine rebuilt gets a cause only a build can see: ``base image
re-tagged`` when the base image's ID differs from the one the last build of the app
on the same engine saw (IDs are looked up only in builds where a step ran: a re-tag
always rebuilds), else ``engine cache pruned``.

>>> # record_build(store, plan, analysis, result, base_image_id=None)   # appends to store.builds
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from builder._version import __version__
from builder.plan import causes as names
from builder.plan.analyze import Analysis
from builder.plan.model import Plan


def build_record(
    plan: Plan,
    analysis: Analysis,
    result: Any,
    *,
    saved: Mapping[str, float | None],
    base_image_id: str | None,
    previous: Mapping[str, Any] | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """The history record of one finished build (see the module docstring).

    ``saved`` maps the key of each step that hit to the seconds its recorded build took;
    ``previous`` is the app's last build record (for the re-tagged base check).
    """
    retagged = _retagged(previous, base_image_id, result.engine)
    statuses = {s.id.value: s for s in analysis.steps}
    steps = []
    for outcome in result.steps:
        observed = "hit" if outcome.cached else "miss"
        status = statuses.get(outcome.step)
        if observed == "hit":
            causes: list[dict[str, Any]] = []
        elif outcome.predicted == "hit":
            cause = (
                names.fixed("base_retag", names.BASE_RETAGGED)
                if retagged
                else names.fixed("engine_cache", names.ENGINE_PRUNED)
            )
            causes = [cause.to_json()]
        else:
            found = (
                status.causes
                if status is not None and status.causes
                else (names.fixed("first_build", names.FIRST_BUILD),)
            )
            causes = [c.to_json() for c in found]
        recorded = saved.get(outcome.key) if observed == "hit" else None
        steps.append(
            {
                "id": outcome.step,
                "predicted": outcome.predicted,
                "observed": observed,
                "seconds": round(float(outcome.seconds), 3),
                "saved_s": None if recorded is None else round(float(recorded), 3),
                "bytes": int(getattr(outcome, "size_bytes", 0) or 0) if observed == "miss" else 0,
                "causes": causes,
            }
        )
    return {
        "app": plan.app,
        "at": round(time.time() if at is None else at, 3),
        "engine": result.engine,
        "seconds": round(float(result.seconds), 3),
        "builder": __version__,
        "base_image_id": base_image_id,
        "config_only": analysis.config_only,
        "steps": steps,
    }


def _retagged(previous: Mapping[str, Any] | None, base_image_id: str | None, engine: str) -> bool:
    if previous is None or not base_image_id or previous.get("engine") != engine:
        return False
    before = previous.get("base_image_id")
    return isinstance(before, str) and bool(before) and before != base_image_id


def record_build(store: Any, plan: Plan, analysis: Analysis, result: Any, base_image_id: str | None) -> None:
    """Append the record of a finished build to ``store.builds`` (an opened ``cache`` store).

    Reads each hit's recorded duration (one lookup per hit) and the app's previous
    build (a tail read of the log).  Raises what the store raises; the caller turns
    that into a warning.
    """
    saved = {}
    for outcome in result.steps:
        if outcome.cached:
            saved[outcome.key] = store.steps.duration(outcome.key)
    surprised = any(o.predicted == "hit" and not o.cached for o in result.steps)
    # Only a step that rebuilt against the prediction needs the last base image ID seen (a tail read).
    previous = store.builds.last(plan.app, engine=result.engine, having="base_image_id") if surprised else None
    store.builds.append(
        build_record(plan, analysis, result, saved=saved, base_image_id=base_image_id, previous=previous)
    )
