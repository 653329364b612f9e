"""Graphviz ``dot`` output: layer edges solid, source edges (pip ⇠ files) dashed."""

from __future__ import annotations

from builder.plan.analyze import Analysis
from builder.plan.keys import short
from builder.plan.model import Plan

_COLOR = {"hit": "palegreen", "miss": "lightsalmon"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_dot(plan: Plan, analysis: Analysis) -> str:
    """A ``digraph`` with one node per step (colour = hit/miss) and one edge per reference."""
    lines = [f"digraph {_quote('plan ' + plan.app)} {{", "  rankdir=TB;", "  node [shape=box, style=filled];"]
    for step in plan.steps:
        status = analysis.status(step.id)
        label = f"{step.id.value}\n{status.status} {short(step.key)}"
        if status.status == "miss":
            label += f"\n{status.reason}"
        lines.append(f"  {_quote(step.id.value)} [label={_quote(label)}, fillcolor={_COLOR[status.status]}];")
    for step in plan.steps:
        for parent in step.parents:
            lines.append(f"  {_quote(parent.value)} -> {_quote(step.id.value)};")
        for source in step.sources:
            lines.append(f"  {_quote(source.value)} -> {_quote(step.id.value)} "
                         f"[style=dashed, label={_quote('source files')}];")
    lines.append("}")
    return "\n".join(lines)
