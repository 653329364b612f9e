"""The report as plain text (pure: report dict in, str out)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def pct(rate: float | None) -> str:
    """``87%`` (or ``-`` when there is nothing to rate)."""
    return "-" if rate is None else f"{rate * 100:.0f}%"


def size(n: int) -> str:
    """Bytes in the largest unit that keeps the number under 1024 (``1.2 MiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def when(at: float | None) -> str:
    """Epoch seconds as ``2026-12-06 11:20 UTC``."""
    return "-" if at is None else datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), *(fmt.format(*r) for r in rows)]


def render_text(data: Mapping[str, Any]) -> str:
    """Per-app step table, top causes, prediction accuracy, trend and the last builds."""
    if not data["builds"]:
        return "no builds recorded yet (matching the filters): run `builder build` first\n"
    lines = [f"{data['builds']} builds from {when(data['first_at'])} to {when(data['last_at'])}", ""]
    for app in data["apps"]:
        t = app["totals"]
        lines.append(
            f"app {app['app']}: {app['builds']} builds, hit rate {pct(t['hit_rate'])}, "
            f"{t['seconds_spent']:.1f} s spent, {t['seconds_saved']:.1f} s saved by hits, "
            f"{size(t['bytes_added'])} added"
        )
        rows = [
            [
                s["step"],
                str(s["builds"]),
                str(s["hits"]),
                str(s["misses"]),
                pct(s["hit_rate"]),
                f"{s['seconds_spent']:.1f}",
                f"{s['seconds_saved']:.1f}",
                size(s["bytes_added"]),
            ]
            for s in app["steps"]
        ]
        lines += [
            "  " + r
            for r in _table(["step", "builds", "hits", "misses", "hit rate", "spent s", "saved s", "added"], rows)
        ]
        lines.append("")
    lines.append("top miss causes (by time lost):")
    causes = data["causes"][:10]
    if causes:
        rows = [
            [
                c["name"] + (f" (via {', '.join(c['via'])})" if c["via"] else ""),
                str(c["misses"]),
                f"{c['seconds_lost']:.1f}",
                ", ".join(c["steps"]),
            ]
            for c in causes
        ]
        lines += ["  " + r for r in _table(["cause", "misses", "lost s", "steps"], rows)]
    else:
        lines.append("  none: every step hit")
    acc = data["accuracy"]
    lines += ["", f"predictions: {acc['correct']} of {acc['predictions']} right ({pct(acc['accuracy'])})"]
    for d in acc["disagreements"][:10]:
        because = f" ({', '.join(d['causes'])})" if d["causes"] else ""
        lines.append(
            f"  {when(d['at'])} {d['app']} {d['step']}: predicted {d['predicted']}, was {d['observed']}{because}"
        )
    trend = data["trend"]
    lines += ["", f"trend (per {'day' if trend['by'] == 'day' else str(trend['size']) + ' builds'}):"]
    lines += [
        f"  {b['label']:<14} {b['builds']:>5} builds  hit rate {pct(b['hit_rate']):>4}  "
        f"{b['seconds_spent']:.1f} s rebuilding"
        for b in trend["buckets"]
    ]
    lines += ["", "last builds:"]
    for b in data["recent"][:10]:
        missed = "; ".join(f"{m['step']} ({', '.join(m['causes']) or '?'})" for m in b["misses"]) or "all cached"
        lines.append(f"  {when(b['at'])} {b['app']} {b['seconds']:.1f} s: {missed}")
    return "\n".join(lines) + "\n"
