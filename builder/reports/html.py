"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

Charts label their own lines and bars (no legend to hunt): the hit-rate chart
writes each step's name at the end of its line, the cause chart writes the cause
and the seconds on each bar.  Every text from the history (app names, file
paths, engine names) is escaped.  Pure: report dict in, str out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from builder.reports.text import pct, size, when

#: One colour per step kind, in build order (the colour-blind-safe Okabe-Ito set, its yellow darkened to read on white).
_COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#9A8200",
    "#000000",
    "#999999",
    "#666666",
)
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1b1b1b;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
p.sub{color:#555;margin:0 0 16px}table{border-collapse:collapse;margin:6px 0 12px}
th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f5f5f5}.miss{color:#b00020}.hit{color:#0a7a32}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}
svg.chart{display:block;background:#fcfcfc;border:1px solid #e4e4e4;border-radius:4px}
svg text{font:12px system-ui,sans-serif;fill:#222}td.l{text-align:left}td:first-child{white-space:nowrap}
"""


def render_html(data: Mapping[str, Any], *, title: str = "builder report") -> str:
    """The whole page for a report dict (see :mod:`builder.reports` for its fields)."""
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='sub'>{data['builds']} builds, {escape(when(data['first_at']))} to "
        f"{escape(when(data['last_at']))}{_filters(data['filters'])}</p>",
    ]
    if not data["builds"]:
        parts.append("<p>No builds recorded yet (matching the filters): run <code>builder build</code> first.</p>")
        return "".join(parts) + "</body></html>\n"
    parts.append(_cards(data))
    parts.append("<h2>Hit rate per step over time</h2>")
    parts.append(hit_rate_chart(data["trend"]))
    parts.append("<h2>Time lost per miss cause</h2>")
    parts.append(cause_chart(data["causes"]))
    parts.append("<h2>Last builds</h2>")
    parts.append(_recent_table(data["recent"]))
    parts.append("<h2>Per app and step</h2>")
    parts.extend(_app_table(app) for app in data["apps"])
    parts.append("<h2>Prediction accuracy</h2>")
    parts.append(_accuracy(data["accuracy"]))
    return "".join(parts) + "</body></html>\n"


def _filters(filters: Mapping[str, Any]) -> str:
    shown = [f"{k} {v if k != 'since' else when(v)}" for k, v in filters.items() if v is not None]
    return escape(" · filtered by " + ", ".join(shown)) if shown else ""


def _cards(data: Mapping[str, Any]) -> str:
    steps = hits = 0
    spent = saved = 0.0
    added = 0
    for app in data["apps"]:
        t = app["totals"]
        steps += t["steps"]
        hits += t["hits"]
        spent += t["seconds_spent"]
        saved += t["seconds_saved"]
        added += t["bytes_added"]
    acc = data["accuracy"]
    cards = [
        ("builds", str(data["builds"])),
        ("step hit rate", pct(hits / steps if steps else None)),
        ("seconds building", f"{spent:.1f}"),
        ("seconds saved by hits", f"{saved:.1f}"),
        ("layers added", size(added)),
        ("predictions right", pct(acc["accuracy"])),
    ]
    return (
        "<div class='cards'>"
        + "".join(f"<div class='card'><b>{escape(v)}</b>{escape(k)}</div>" for k, v in cards)
        + "</div>"
    )


def hit_rate_chart(trend: Mapping[str, Any], *, width: int = 860, height: int = 300) -> str:
    """Lines of each step's hit rate per trend bucket, each labelled at its end."""
    buckets: Sequence[Mapping[str, Any]] = trend["buckets"]
    steps: list[str] = []
    for b in buckets:
        steps.extend(s for s in b["steps"] if s not in steps)
    left, right, top, bottom = 48, 130, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(buckets)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(rate: float) -> float:
        return top + plot_h * (1 - rate)

    out = [
        f"<svg class='chart' id='chart-hit-rate' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='hit rate per step over time'>"
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' "
            f"stroke='#ddd'/><text x='{left - 6}' y='{y(tick) + 4:.1f}' text-anchor='end'>{tick:.0%}</text>"
        )
    # Days print as MM-DD; labels are spaced so none overlap (about 80 px each at most).
    labels = [b["label"][5:] if trend["by"] == "day" else b["label"] for b in buckets]
    every = max(1, math.ceil(n * 80 / plot_w))
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(f"<text x='{x(i):.1f}' y='{top + plot_h + 16}' text-anchor='middle'>{escape(label)}</text>")
    axis = "day" if trend["by"] == "day" else f"builds, {trend['size']} per point"
    out.append(f"<text x='{left + plot_w / 2:.0f}' y='{height - 4}' text-anchor='middle' fill='#555'>{axis}</text>")
    ends: list[tuple[float, str, str, float]] = []
    for k, step in enumerate(steps):
        colour = _COLOURS[k % len(_COLOURS)]
        points = [(x(i), y(b["steps"][step])) for i, b in enumerate(buckets) if b["steps"].get(step) is not None]
        if not points:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(
            f"<polyline class='series' data-step='{escape(step)}' fill='none' stroke='{colour}' "
            f"stroke-width='2.5' points='{path}'/>"
        )
        out.extend(f"<circle cx='{px:.1f}' cy='{py:.1f}' r='3' fill='{colour}'/>" for px, py in points)
        last_rate = next(b["steps"][step] for b in reversed(buckets) if b["steps"].get(step) is not None)
        ends.append((points[-1][1], step, colour, float(last_rate)))
    out.extend(_end_labels(ends, left + plot_w + 8, top, top + plot_h))
    out.append("</svg>")
    return "".join(out)


def _end_labels(ends: list[tuple[float, str, str, float]], x: float, low: float, high: float) -> list[str]:
    """Each step's name and last rate beside the end of its line, spread apart so none overlap."""
    gap = 14.0
    ordered = sorted(ends)
    ys = [e[0] + 4 for e in ordered]
    for i in range(1, len(ys)):  # push down to keep the gap ...
        ys[i] = max(ys[i], ys[i - 1] + gap)
    if ys and ys[-1] > high + 4:  # ... and back up when the stack runs off the bottom
        ys[-1] = high + 4
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    return [
        f"<text class='end-label' x='{x:.1f}' y='{ly:.1f}' style='fill:{colour};font-weight:600'>"
        f"{escape(step)} {rate:.0%}</text>"
        for ly, (_, step, colour, rate) in zip(ys, ordered, strict=True)
    ]


def cause_chart(causes: Sequence[Mapping[str, Any]], *, width: int = 860, limit: int = 10) -> str:
    """Horizontal bars of seconds lost per cause, the name left of each bar and the figure on it."""
    shown = list(causes[:limit])
    row, top, label_w = 26, 8, 330
    height = top * 2 + row * max(1, len(shown))
    out = [
        f"<svg class='chart' id='chart-causes' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' aria-label='seconds lost per miss cause'>"
    ]
    if not shown:
        out.append(f"<text x='12' y='{top + 17}'>No misses: every step hit.</text></svg>")
        return "".join(out)
    peak = max(float(c["seconds_lost"]) for c in shown) or 1.0
    bar_max = width - label_w - 170  # room for "1234.5 s · 123 misses" after the longest bar
    for i, c in enumerate(shown):
        y = top + i * row
        w = max(2.0, bar_max * float(c["seconds_lost"]) / peak)
        name = str(c["name"]) + (f" (via {', '.join(c['via'])})" if c.get("via") else "")
        short = name if len(name) <= 46 else name[:45] + "…"
        out.append(
            f"<text x='{label_w - 8}' y='{y + 17}' text-anchor='end'><title>{escape(name)}</title>"
            f"{escape(short)}</text>"
        )
        out.append(f"<rect class='bar' x='{label_w}' y='{y + 4}' width='{w:.1f}' height='{row - 8}' fill='#D55E00'/>")
        out.append(
            f"<text x='{label_w + w + 6:.1f}' y='{y + 17}'>{float(c['seconds_lost']):.1f} s · "
            f"{c['misses']} miss{'es' if c['misses'] != 1 else ''}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _recent_table(recent: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for b in recent:
        misses = "; ".join(f"{m['step']}: {', '.join(m['causes']) or '?'}" for m in b["misses"])
        rows.append(
            f"<tr><td>{escape(when(b['at']))}</td><td class='l'>{escape(b['app'])}</td>"
            f"<td class='l'>{escape(str(b['engine'] or ''))}</td><td>{b['seconds']:.1f} s</td>"
            f"<td>{b['hits']}/{b['steps']}</td><td class='l {'miss' if b['misses'] else 'hit'}'>"
            f"{escape(misses) or 'all cached'}</td></tr>"
        )
    return (
        "<table id='recent'><tr><th>when</th><th>app</th><th>engine</th><th>took</th><th>hits</th>"
        "<th>misses and causes</th></tr>" + "".join(rows) + "</table>"
    )


def _app_table(app: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(s['step'])}</td><td>{s['builds']}</td><td>{s['hits']}</td><td>{s['misses']}</td>"
        f"<td>{pct(s['hit_rate'])}</td><td>{s['seconds_spent']:.1f}</td><td>{s['seconds_saved']:.1f}</td>"
        f"<td>{escape(size(s['bytes_added']))}</td></tr>"
        for s in app["steps"]
    )
    return (
        f"<h3>{escape(app['app'])} · {app['builds']} builds</h3><table><tr><th>step</th><th>builds</th>"
        "<th>hits</th><th>misses</th><th>hit rate</th><th>seconds spent</th><th>seconds saved</th>"
        f"<th>bytes added</th></tr>{rows}</table>"
    )


def _accuracy(acc: Mapping[str, Any]) -> str:
    m = acc["predicted_observed"]
    head = (
        f"<p>{acc['correct']} of {acc['predictions']} step predictions right ({pct(acc['accuracy'])}): "
        f"predicted hit and hit {m['hit_hit']}, predicted miss and miss {m['miss_miss']}, "
        f"predicted hit but rebuilt {m['hit_miss']}, predicted miss but reused {m['miss_hit']}.</p>"
    )
    if not acc["disagreements"]:
        return head
    rows = "".join(
        f"<tr><td>{escape(when(d['at']))}</td><td class='l'>{escape(d['app'])}</td>"
        f"<td class='l'>{escape(d['step'])}</td><td>{escape(d['predicted'])}</td>"
        f"<td>{escape(d['observed'])}</td><td class='l'>{escape(', '.join(d['causes']))}</td></tr>"
        for d in acc["disagreements"]
    )
    return (
        head + "<table id='disagreements'><tr><th>when</th><th>app</th><th>step</th><th>predicted</th>"
        f"<th>observed</th><th>cause</th></tr>{rows}</table>"
    )
