"""``builder report``: cache-hit analysis over the recorded builds (text, JSON, one HTML page).

Every ``builder build`` appends one record to the cache's build log
(:mod:`builder.reports.record`); :func:`report` aggregates them.

JSON (``builder report --format json``, also ``report(...).to_json()``), schema 1.
Field names are stable; new fields may be added, a changed meaning bumps ``schema``::

    {"schema": 1, "generated_at": epoch s, "filters": {"app", "since", "engine"},
     "builds": int, "first_at": epoch s|null, "last_at": epoch s|null,
     "apps": [{"app", "builds", "build_seconds",
               "totals": {"steps", "hits", "misses", "hit_rate", "seconds_spent", "seconds_saved", "bytes_added"},
               "steps": [{"step", "builds", "hits", "misses", "hit_rate",      # hit = the engine reused it
                          "seconds_spent", "seconds_saved", "bytes_added"}]}], # saved: recorded build time of hits
     "causes": [{"name", "kind", "misses", "seconds_lost", "bytes_added",     # ranked by seconds_lost
                 "steps": {step: misses}, "apps": [app], "via": {step: n}}],   # via: the changed parent
     "accuracy": {"predictions", "correct", "accuracy",
                  "predicted_observed": {"hit_hit", "hit_miss", "miss_hit", "miss_miss"},
                  "disagreements_total", "disagreements": [{"app", "at", "engine", "step",
                                                            "predicted", "observed", "causes": [name]}]},
     "trend": {"by": "day"|"builds", "size": int, "buckets": [{"label", "start", "end", "builds", "hits",
               "misses", "hit_rate", "seconds_spent", "steps": {step: hit_rate}}]},
     "recent": [{"app", "at", "engine", "seconds", "steps", "hits",
                 "misses": [{"step", "seconds", "bytes", "causes": [name], "predicted"}]}]}

Cause ``kind``: ``setting`` (name = config key path, e.g. ``cerebrium.dependencies.pip.torch``),
``file`` (a project file path), ``parent`` (``parent changed``), ``builder_upgrade``,
``first_build``, ``new_step``, ``evicted`` (``evicted from cache``), ``base_retag``
(``base image re-tagged``), ``engine_cache`` (``engine cache pruned``).
A miss with several causes splits its seconds evenly among them.  Rates are 0..1 or null.

>>> import builder
>>> # r = builder.report(app="my-app", since="7d"); r["accuracy"]["accuracy"]
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from builder.errors import CacheError, ConfigError
from builder.reports.compute import REPORT_SCHEMA, ReportOptions, compute

__all__ = ["REPORT_SCHEMA", "Report", "parse_since", "report"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Report(Mapping[str, Any]):
    """The report as a read-only mapping equal to its JSON form (``to_json()`` gives a plain dict)."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict (schema :data:`REPORT_SCHEMA`)."""
        return self._data

    def __repr__(self) -> str:
        return f"Report(builds={self._data['builds']}, apps={[a['app'] for a in self._data['apps']]})"


def parse_since(text: str | float | None, *, now: float | None = None) -> float | None:
    """``7d`` / ``12h`` / ``30m`` / ``2w`` ago, or an ISO date/time (UTC unless it says), as epoch seconds.

    Raises ConfigError naming ``--since`` and the accepted forms.
    """
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    moment = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return moment - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither a duration nor a date",
            key_path="--since",
            hint="use a duration like 7d, 12h, 30m, 2w or a date like 2026-12-01 (or 2026-12-01T09:00)",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def report(
    path: str | os.PathLike[str] | None = None,
    *,
    app: str | None = None,
    since: str | float | None = None,
    engine: str | None = None,
    trend: str | int = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
) -> Report:
    """Hit rates, miss causes, time lost, prediction accuracy and trend over the recorded builds.

    ``path`` (a project or its cerebrium.toml) selects that project's app; ``app`` selects one by
    name; neither reports every app.  ``since`` is a duration (``7d``) or a date; ``engine`` a
    substring of the recorded engine name (``dockerd 20``); ``trend`` ``auto``, ``day`` or N builds.
    Raises ConfigError for bad arguments and CacheError when the cache cannot be opened.

    >>> # builder.report("fixtures/apps/minimal", since="7d")["apps"][0]["totals"]["hit_rate"]
    """
    if path is not None and app is not None:
        raise ConfigError(
            "give a project path or --app, not both",
            key_path="--app",
            hint="builder report PATH, or builder report --app NAME",
        )
    if path is not None:
        from builder.api import load_plan_config

        config, _ = load_plan_config(path)
        app = config.deployment.name
    if isinstance(trend, str) and trend not in ("auto", "day") and not trend.isdigit():
        raise ConfigError(
            f"{trend!r} is not auto, day or a number of builds",
            key_path="--trend",
            hint="e.g. --trend day or --trend 10",
        )
    if isinstance(trend, str) and trend.isdigit():
        trend = int(trend)
    if isinstance(trend, int) and trend < 1:
        raise ConfigError("--trend needs at least 1 build per point", key_path="--trend", hint="e.g. --trend 10")
    options = ReportOptions(app=app, since=parse_since(since), engine=engine, trend=trend)
    return Report(compute(_records(cache_dir, app, options.since), options))


def _records(cache_dir: str | os.PathLike[str] | None, app: str | None, since: float | None) -> list[dict[str, Any]]:
    try:
        from cache import BuildLog, resolve_cache_dir

        root = resolve_cache_dir(cache_dir)
    except (ImportError, RuntimeError, KeyError, OSError) as exc:
        raise CacheError(
            f"cannot find the cache ({exc})",
            hint="pass --cache-dir DIR (or set BUILDER_CACHE_DIR) to the cache builds used",
        ) from exc
    try:
        return BuildLog(root).read(app=app, since=since)
    except OSError as exc:
        raise CacheError(
            f"{root}: cannot read the build log ({exc.strerror or exc})",
            hint="check the permissions of the cache directory",
        ) from exc
