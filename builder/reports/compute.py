"""Build records → the report (pure: a list of dicts in, one JSON-ready dict out).

Definitions (the JSON schema in ``builder/reports/__init__.py`` repeats them):

- a step **hits** when the engine reused it (observed, not predicted); hit rate = hits / builds of the step;
- **seconds spent** sums the step's build seconds; **seconds saved** sums, for hits, the recorded
  duration of the build that made the reused result;
- **bytes added** sums the layer sizes the engine reported for misses;
- a miss with several causes splits its seconds evenly among them (**seconds lost** per cause);
- a **prediction** is a step with ``predicted`` set; it is correct when predicted == observed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REPORT_SCHEMA = 1
RECENT = 20
DISAGREEMENTS = 50
TREND_BUCKETS = 20


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What to report on: ``trend`` is ``auto`` (per day when the builds span 2+ days), ``day`` or a build count."""

    app: str | None = None
    since: float | None = None
    engine: str | None = None
    trend: str | int = "auto"
    generated_at: float | None = None


def _rate(hits: int, total: int) -> float | None:
    return None if total == 0 else round(hits / total, 4)


class _StepTotals:
    __slots__ = ("builds", "bytes", "hits", "misses", "saved", "spent")

    def __init__(self) -> None:
        self.builds = self.hits = self.misses = self.bytes = 0
        self.spent = self.saved = 0.0

    def add(self, step: Mapping[str, Any]) -> None:
        self.builds += 1
        if step["observed"] == "hit":
            self.hits += 1
            self.saved += step["saved_s"] or 0.0
        else:
            self.misses += 1
            self.bytes += step["bytes"] or 0
        self.spent += step["seconds"] or 0.0

    def to_json(self) -> dict[str, Any]:
        return {"builds": self.builds, "hits": self.hits, "misses": self.misses,
                "hit_rate": _rate(self.hits, self.builds), "seconds_spent": round(self.spent, 3),
                "seconds_saved": round(self.saved, 3), "bytes_added": self.bytes}


def matches_engine(record: Mapping[str, Any], wanted: str | None) -> bool:
    """``--engine`` filter: a case-insensitive substring of the recorded engine name (``dockerd 20``)."""
    return wanted is None or wanted.lower() in str(record.get("engine", "")).lower()


def compute(records: Iterable[Mapping[str, Any]], options: ReportOptions) -> dict[str, Any]:
    """The report over ``records`` (oldest first) that pass the options' filters.

    Records are trusted first (the fast path); if one is malformed (an edited log), every record
    is checked and the malformed ones are left out.
    """
    records = list(records)
    try:
        return _compute(records, options)
    except (KeyError, TypeError, ValueError, AttributeError):
        return _compute([r for r in records if well_formed(r)], options)


_STEP_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,), "observed": (str,), "seconds": (int, float), "saved_s": (int, float, type(None)),
    "bytes": (int,), "causes": (list,), "predicted": (str, type(None)),
}


def well_formed(record: Any) -> bool:
    """True when ``record`` has every field the report reads, with the right types."""
    if not isinstance(record, Mapping) or not isinstance(record.get("app"), str):
        return False
    if not isinstance(record.get("at"), (int, float)) or not isinstance(record.get("steps"), list):
        return False
    if not isinstance(record.get("seconds", 0.0), (int, float)):
        return False
    for step in record["steps"]:
        if not isinstance(step, Mapping) or step.get("observed") not in ("hit", "miss"):
            return False
        if any(not isinstance(step.get(k), t) for k, t in _STEP_FIELDS.items()):
            return False
        if any(not isinstance(c, Mapping) or not isinstance(c.get("kind"), str) or not isinstance(c.get("name"), str)
               for c in step["causes"]):
            return False
    return True


def _compute(records: list[Mapping[str, Any]], options: ReportOptions) -> dict[str, Any]:
    builds = [r for r in records if (options.app is None or r.get("app") == options.app)
              and (options.since is None or float(r.get("at", 0)) >= options.since)
              and matches_engine(r, options.engine)]
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": round(options.generated_at if options.generated_at is not None else _now(), 3),
        "filters": {"app": options.app, "since": options.since, "engine": options.engine},
        "builds": len(builds),
        "first_at": builds[0]["at"] if builds else None,
        "last_at": builds[-1]["at"] if builds else None,
        "apps": _apps(builds),
        "causes": _causes(builds),
        "accuracy": _accuracy(builds),
        "trend": _trend(builds, options.trend),
        "recent": [_recent(r) for r in builds[-RECENT:][::-1]],
    }


def _now() -> float:
    import time

    return time.time()


def _apps(builds: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    per_app: dict[str, dict[str, _StepTotals]] = {}
    counts: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    for record in builds:
        app = record["app"]
        counts[app] += 1
        seconds[app] += record.get("seconds") or 0.0
        steps = per_app.get(app)
        if steps is None:
            steps = per_app[app] = {}
        for step in record.get("steps", ()):
            totals = steps.get(step["id"])
            if totals is None:
                totals = steps[step["id"]] = _StepTotals()
            totals.add(step)
    out = []
    for app in sorted(per_app):
        total = _StepTotals()
        for t in per_app[app].values():
            total.builds += t.builds
            total.hits += t.hits
            total.misses += t.misses
            total.bytes += t.bytes
            total.spent += t.spent
            total.saved += t.saved
        totals_json = total.to_json()
        totals_json["steps"] = totals_json.pop("builds")
        out.append({"app": app, "builds": counts[app], "build_seconds": round(seconds[app], 3),
                    "totals": totals_json,
                    "steps": [{"step": step, **t.to_json()} for step, t in per_app[app].items()]})
    return out


def _causes(builds: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    fallback = [{"kind": "first_build", "name": "first build"}]
    for record in builds:
        app = record["app"]
        for step in record.get("steps", ()):
            if step["observed"] != "miss":
                continue
            causes = step.get("causes") or fallback
            share = (step.get("seconds") or 0.0) / len(causes)
            added = (step.get("bytes") or 0) // len(causes)
            for cause in causes:
                key = (cause["kind"], cause["name"])
                row = rows.get(key)
                if row is None:
                    row = rows[key] = {"name": key[1], "kind": key[0], "misses": 0, "seconds_lost": 0.0,
                                       "bytes_added": 0, "steps": defaultdict(int), "apps": set(),
                                       "via": defaultdict(int)}
                row["misses"] += 1
                row["seconds_lost"] += share
                row["bytes_added"] += added
                row["steps"][step["id"]] += 1
                row["apps"].add(app)
                via = cause.get("via")
                if via:
                    row["via"][via] += 1
    ranked = sorted(rows.values(), key=lambda r: (-r["seconds_lost"], -r["misses"], r["name"]))
    return [{**r, "seconds_lost": round(r["seconds_lost"], 3), "steps": dict(sorted(r["steps"].items())),
             "apps": sorted(r["apps"]), "via": dict(sorted(r["via"].items()))} for r in ranked]


def _accuracy(builds: list[Mapping[str, Any]]) -> dict[str, Any]:
    total = correct = 0
    matrix = {"hit_hit": 0, "hit_miss": 0, "miss_hit": 0, "miss_miss": 0}
    disagreements: list[dict[str, Any]] = []
    for record in builds:
        for step in record.get("steps", ()):
            predicted, observed = step.get("predicted"), step.get("observed")
            if predicted not in ("hit", "miss"):
                continue
            total += 1
            matrix[f"{predicted}_{observed}"] += 1
            if predicted == observed:
                correct += 1
            else:
                disagreements.append({"app": record["app"], "at": record["at"], "engine": record.get("engine"),
                                      "step": step["id"], "predicted": predicted, "observed": observed,
                                      "causes": [c.get("name") for c in step.get("causes") or ()]})
    return {"predictions": total, "correct": correct, "accuracy": _rate(correct, total),
            "predicted_observed": matrix, "disagreements_total": len(disagreements),
            "disagreements": disagreements[-DISAGREEMENTS:][::-1]}


def _trend(builds: list[Mapping[str, Any]], how: str | int) -> dict[str, Any]:
    if not builds:
        return {"by": "builds", "size": 0, "buckets": []}
    span_days = (float(builds[-1]["at"]) - float(builds[0]["at"])) / 86400
    if how == "day" or (how == "auto" and span_days >= 1):
        groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for record in builds:
            groups[_day(record["at"])].append(record)
        return {"by": "day", "size": 1, "buckets": [_bucket(label, rows) for label, rows in groups.items()]}
    size = int(how) if isinstance(how, int) or str(how).isdigit() else max(1, math.ceil(len(builds) / TREND_BUCKETS))
    size = max(1, size)
    buckets = []
    for start in range(0, len(builds), size):
        rows = builds[start:start + size]
        label = f"#{start + 1}" if len(rows) == 1 else f"#{start + 1}-{start + len(rows)}"
        buckets.append(_bucket(label, rows))
    return {"by": "builds", "size": size, "buckets": buckets}


def _day(at: Any) -> str:
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d")


def _bucket(label: str, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    steps: dict[str, _StepTotals] = {}
    lost = 0.0
    for record in rows:
        for step in record.get("steps", ()):
            totals = steps.get(step["id"])
            if totals is None:
                totals = steps[step["id"]] = _StepTotals()
            totals.add(step)
            if step.get("observed") == "miss":
                lost += float(step.get("seconds") or 0.0)
    hits = sum(t.hits for t in steps.values())
    total = sum(t.builds for t in steps.values())
    return {"label": label, "start": rows[0]["at"], "end": rows[-1]["at"], "builds": len(rows),
            "hits": hits, "misses": total - hits, "hit_rate": _rate(hits, total),
            "seconds_spent": round(lost, 3),
            "steps": {step: _rate(t.hits, t.builds) for step, t in steps.items()}}


def _recent(record: Mapping[str, Any]) -> dict[str, Any]:
    misses = [{"step": s["id"], "seconds": s.get("seconds", 0.0), "bytes": s.get("bytes", 0),
               "causes": [c.get("name") for c in s.get("causes") or ()],
               "predicted": s.get("predicted")} for s in record.get("steps", ()) if s.get("observed") == "miss"]
    steps = record.get("steps", ())
    return {"app": record["app"], "at": record["at"], "engine": record.get("engine"),
            "seconds": record.get("seconds", 0.0), "steps": len(steps), "hits": len(steps) - len(misses),
            "misses": misses}
