"""Graphviz ``dot`` output: layer edges solid, source edges (pip ⇠ files) dashed."""

from __future__ import annotations

from builder.plan.analyze import Analysis
from builder.plan.graph import plan_graph
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
    graph = plan_graph(plan)
    for step in plan.steps:  # edges into each step, in plan order: layer parents, then source references
        for parent, _, use in graph.in_edges(step.id, data="use"):
            style = "" if use == "layer" else f" [style=dashed, label={_quote('source files')}]"
            lines.append(f"  {_quote(parent.value)} -> {_quote(step.id.value)}{style};")
    lines.append("}")
    return "\n".join(lines)
