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
    "id": (str,),
    "observed": (str,),
    "seconds": (int, float),
    "saved_s": (int, float, type(None)),
    "bytes": (int,),
    "causes": (list,),
    "predicted": (str, type(None)),
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
        if step.get("predicted") not in (None, "hit", "miss"):
            return False
        if any(not isinstance(step.get(k), t) for k, t in _STEP_FIELDS.items()):
            return False
        if any(
            not isinstance(c, Mapping) or not isinstance(c.get("kind"), str) or not isinstance(c.get("name"), str)
            for c in step["causes"]
        ):
            return False
    return True


def _compute(records: list[Mapping[str, Any]], options: ReportOptions) -> dict[str, Any]:
    builds = [
        r
        for r in records
        if (options.app is None or r["app"] == options.app)
        and (options.since is None or r["at"] >= options.since)
        and (options.engine is None or matches_engine(r, options.engine))
    ]
    trend, groups = _trend_groups(builds, options.trend)
    acc = _Pass(len(groups))
    for record, group in zip(builds, groups, strict=True):
        acc.add(record, group)
    trend["buckets"] = [acc.bucket(i, label, rows) for i, (label, rows) in enumerate(trend.pop("groups"))]
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": round(options.generated_at if options.generated_at is not None else _now(), 3),
        "filters": {"app": options.app, "since": options.since, "engine": options.engine},
        "builds": len(builds),
        "first_at": builds[0]["at"] if builds else None,
        "last_at": builds[-1]["at"] if builds else None,
        "apps": acc.apps(),
        "causes": acc.causes(),
        "accuracy": acc.accuracy(),
        "trend": trend,
        "recent": [_recent(r) for r in builds[-RECENT:][::-1]],
    }


def _now() -> float:
    import time

    return time.time()


# Step totals are lists (one pass over 70,000 steps is the report's hot loop): builds, hits, bytes, spent, saved.
_B, _H, _BY, _SP, _SA = range(5)
_FALLBACK = ({"kind": "first_build", "name": "first build"},)


def _totals_json(t: list[Any]) -> dict[str, Any]:
    return {
        "builds": t[_B],
        "hits": t[_H],
        "misses": t[_B] - t[_H],
        "hit_rate": _rate(t[_H], t[_B]),
        "seconds_spent": round(t[_SP], 3),
        "seconds_saved": round(t[_SA], 3),
        "bytes_added": t[_BY],
    }


class _Pass:
    """Everything the report counts, gathered in one pass over the builds' steps."""

    def __init__(self, groups: int) -> None:
        self.per_app: dict[str, dict[str, list[Any]]] = {}
        self.app_builds: dict[str, list[float]] = {}
        self.buckets: list[dict[str, list[Any]]] = [{} for _ in range(max(groups, 0) + 1)]
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.matrix = {"hit_hit": 0, "hit_miss": 0, "miss_hit": 0, "miss_miss": 0}
        self.disagreements: list[dict[str, Any]] = []

    def add(self, record: Mapping[str, Any], group: int) -> None:
        app = record["app"]
        steps = self.per_app.get(app)
        if steps is None:
            steps = self.per_app[app] = {}
            self.app_builds[app] = [0, 0.0]
        counts = self.app_builds[app]
        counts[0] += 1
        counts[1] += record.get("seconds") or 0.0
        bucket = self.buckets[group]
        for step in record["steps"]:
            sid = step["id"]
            observed = step["observed"]
            seconds = step["seconds"] or 0.0
            t = steps.get(sid)
            if t is None:
                t = steps[sid] = [0, 0, 0, 0.0, 0.0]
            b = bucket.get(sid)
            if b is None:
                b = bucket[sid] = [0, 0, 0, 0.0, 0.0]
            t[_B] += 1
            b[_B] += 1
            t[_SP] += seconds
            if observed == "hit":
                t[_H] += 1
                b[_H] += 1
                t[_SA] += step["saved_s"] or 0.0
            else:
                t[_BY] += step["bytes"] or 0
                b[_SP] += seconds
                self._miss(app, step, seconds)
            predicted = step["predicted"]
            if predicted is not None:
                self.matrix[f"{predicted}_{observed}"] += 1
                if predicted != observed:
                    self.disagreements.append(
                        {
                            "app": app,
                            "at": record["at"],
                            "engine": record.get("engine"),
                            "step": sid,
                            "predicted": predicted,
                            "observed": observed,
                            "causes": [c["name"] for c in step["causes"]],
                        }
                    )

    def _miss(self, app: str, step: Mapping[str, Any], seconds: float) -> None:
        causes = step["causes"] or _FALLBACK
        share = seconds / len(causes)
        added = (step["bytes"] or 0) // len(causes)
        for cause in causes:
            key = (cause["kind"], cause["name"])
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = {
                    "name": key[1],
                    "kind": key[0],
                    "misses": 0,
                    "seconds_lost": 0.0,
                    "bytes_added": 0,
                    "steps": defaultdict(int),
                    "apps": set(),
                    "via": defaultdict(int),
                }
            row["misses"] += 1
            row["seconds_lost"] += share
            row["bytes_added"] += added
            row["steps"][step["id"]] += 1
            row["apps"].add(app)
            via = cause.get("via")
            if via:
                row["via"][via] += 1

    def apps(self) -> list[dict[str, Any]]:
        out = []
        for app in sorted(self.per_app):
            steps = self.per_app[app]
            total = [sum(t[i] for t in steps.values()) for i in range(5)]
            totals = _totals_json(total)
            totals["steps"] = totals.pop("builds")
            builds, seconds = self.app_builds[app]
            out.append(
                {
                    "app": app,
                    "builds": builds,
                    "build_seconds": round(seconds, 3),
                    "totals": totals,
                    "steps": [{"step": sid, **_totals_json(t)} for sid, t in steps.items()],
                }
            )
        return out

    def causes(self) -> list[dict[str, Any]]:
        ranked = sorted(self.rows.values(), key=lambda r: (-r["seconds_lost"], -r["misses"], r["name"]))
        return [
            {
                **r,
                "seconds_lost": round(r["seconds_lost"], 3),
                "steps": dict(sorted(r["steps"].items())),
                "apps": sorted(r["apps"]),
                "via": dict(sorted(r["via"].items())),
            }
            for r in ranked
        ]

    def accuracy(self) -> dict[str, Any]:
        total = sum(self.matrix.values())
        correct = self.matrix["hit_hit"] + self.matrix["miss_miss"]
        return {
            "predictions": total,
            "correct": correct,
            "accuracy": _rate(correct, total),
            "predicted_observed": dict(self.matrix),
            "disagreements_total": len(self.disagreements),
            "disagreements": self.disagreements[-DISAGREEMENTS:][::-1],
        }

    def bucket(self, index: int, label: str, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        steps = self.buckets[index]
        hits = sum(t[_H] for t in steps.values())
        total = sum(t[_B] for t in steps.values())
        return {
            "label": label,
            "start": rows[0]["at"],
            "end": rows[-1]["at"],
            "builds": len(rows),
            "hits": hits,
            "misses": total - hits,
            "hit_rate": _rate(hits, total),
            "seconds_spent": round(sum(t[_SP] for t in steps.values()), 3),
            "steps": {sid: _rate(t[_H], t[_B]) for sid, t in steps.items()},
        }


def _trend_groups(builds: list[Mapping[str, Any]], how: str | int) -> tuple[dict[str, Any], list[int]]:
    """The trend's shape (with ``groups``: (label, builds) pairs) and each build's group index."""
    if not builds:
        return {"by": "builds", "size": 0, "groups": []}, []
    span_days = (float(builds[-1]["at"]) - float(builds[0]["at"])) / 86400
    index: list[int] = []
    if how == "day" or (how == "auto" and span_days >= 1):
        order: dict[str, int] = {}
        members: list[list[Mapping[str, Any]]] = []
        for record in builds:
            day = _day(record["at"])
            if day not in order:
                order[day] = len(members)
                members.append([])
            members[order[day]].append(record)
            index.append(order[day])
        return {"by": "day", "size": 1, "groups": list(zip(order, members, strict=True))}, index
    size = how if isinstance(how, int) else max(1, math.ceil(len(builds) / TREND_BUCKETS))
    groups = []
    for n, start in enumerate(range(0, len(builds), size)):
        rows = builds[start : start + size]
        label = f"#{start + 1}" if len(rows) == 1 else f"#{start + 1}-{start + len(rows)}"
        groups.append((label, rows))
        index.extend([n] * len(rows))
    return {"by": "builds", "size": size, "groups": groups}, index


_DAYS: dict[int, str] = {}


def _day(at: Any) -> str:
    """UTC date of ``at`` (memoised per day number: 10,000 builds span a few hundred days at most)."""
    number = int(float(at) // 86400)
    text = _DAYS.get(number)
    if text is None:
        text = _DAYS[number] = datetime.fromtimestamp(number * 86400, UTC).strftime("%Y-%m-%d")
    return text


def _recent(record: Mapping[str, Any]) -> dict[str, Any]:
    misses = [
        {
            "step": s["id"],
            "seconds": s.get("seconds", 0.0),
            "bytes": s.get("bytes", 0),
            "causes": [c.get("name") for c in s.get("causes") or ()],
            "predicted": s.get("predicted"),
        }
        for s in record.get("steps", ())
        if s.get("observed") == "miss"
    ]
    steps = record.get("steps", ())
    return {
        "app": record["app"],
        "at": record["at"],
        "engine": record.get("engine"),
        "seconds": record.get("seconds", 0.0),
        "steps": len(steps),
        "hits": len(steps) - len(misses),
        "misses": misses,
    }
