"""The readable tree of ``builder plan`` (and of ``builder diff``): pure strings."""

from __future__ import annotations

from builder.plan.analyze import Analysis
from builder.plan.diff import PlanDiff
from builder.plan.keys import short
from builder.plan.model import Plan
from builder.plan.steps import module_for

_MARK = {"hit": "✓", "miss": "✗"}


def render_plan(plan: Plan, analysis: Analysis) -> str:
    """A tree of the steps with hit/miss, key, what the step does, reasons and estimates."""
    width = max(len(s.id.value) for s in plan.steps)
    lines = [f"plan for {plan.app}: {analysis.summary()}"]
    target = analysis.predicted_for
    if target is not None and isinstance(target.get("note"), str):
        lines.append(f"predicted for {target['note']}")
    last_reason = ""
    for n, step in enumerate(plan.steps):
        status = analysis.status(step.id)
        branch = "└─" if n == len(plan.steps) - 1 else "├─"
        cont = "  " if n == len(plan.steps) - 1 else "│ "
        estimate = ""
        if status.status == "miss" and status.estimated_seconds is not None:
            estimate = f"  ~{status.estimated_seconds:.1f} s"
        lines.append(
            f"{branch} {_MARK[status.status]} {step.id.value:<{width}}  {status.status:<4}  "
            f"{short(step.key)}  {module_for(step.id).summary(step.inputs)}{estimate}"
        )
        if status.status == "miss" and status.reason != last_reason:  # repeats add nothing
            lines.append(f"{cont}     {' ' * width}  why: {status.reason}")
            last_reason = status.reason
        elif status.status == "hit" and status.reason != "cached" and status.reason != last_reason:
            lines.append(f"{cont}     {' ' * width}  {status.reason}")
            last_reason = status.reason
        for source in step.sources:
            paths = ", ".join(getattr(getattr(step.inputs, "local", None), "paths", ()))
            lines.append(f"{cont}     {' ' * width}  ⇠ reads {paths or 'files'} from the {source.value} step's sources")
    return "\n".join(lines)


def render_diff(diff: PlanDiff) -> str:
    """One line per step: ``= base``, ``~ pip  pip: torch ==2.0.0 → ==2.1.0``, ``+``/``-``."""
    marks = {"same": "=", "inputs": "~", "parent": "~", "recipe": "~", "added": "+", "removed": "-"}
    changed = diff.changed
    if not changed:
        head = "no step changes"
    elif diff.config_only:
        head = "only the image config changes: no layer rebuild"
    else:
        head = f"{len(changed)} step(s) change" + (f" (cause: {diff.cause.value})" if diff.cause else "")
    width = max((len(c.id.value) for c in diff.changes), default=4)
    lines = [head]
    for c in diff.changes:
        text = "unchanged" if c.change == "same" else c.reason
        lines.append(f"{marks[c.change]} {c.id.value:<{width}}  {text}")
    return "\n".join(lines)
