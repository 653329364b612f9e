"""``--rerun STEP``: run a step again whatever the engine's cache holds, and so everything built on it.

A step's key covers its inputs, never a secret's value or what an index serves today, so a rebuild that
only such a change calls for must be asked for.  ``--rerun`` does not touch any key: the engine runs the
step's command again (an ignore-cache flag on its vertex, which BuildKit carries to every vertex built
on it), stores the new layers under the same cache keys, and the next build without ``--rerun`` reuses
them.  The analysis predicts the step and the steps after it as misses with the reason ``--rerun``.

>>> rerunnable()[:3]
('python', 'pre_build', 'apt')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from builder.plan.analyze import Analysis, StepStatus
from builder.plan.model import Plan, StepKind

#: The steps that run a command (an image source, a copy or a file has nothing to run again).
RERUNNABLE = (StepKind.PYTHON, StepKind.PRE_BUILD, StepKind.APT, StepKind.CONDA, StepKind.PIP, StepKind.SHELL)


def rerunnable() -> tuple[str, ...]:
    """The step names ``--rerun`` accepts."""
    return tuple(k.value for k in RERUNNABLE)


def rerun_steps(plan: Plan, names: Iterable[str]) -> tuple[StepKind, ...]:
    """The steps ``names`` name, checked against ``plan``; ValueError saying which name is wrong and why."""
    found: list[StepKind] = []
    present = [s.id.value for s in plan.steps if s.id in RERUNNABLE]
    for name in names:
        if name not in rerunnable():
            raise ValueError(f"{name!r} is not a step that runs a command (one of: {', '.join(rerunnable())})")
        kind = StepKind(name)
        if plan.get(kind) is None:
            have = ", ".join(present) or "none"
            raise ValueError(f"this plan has no {name} step (the steps it can rerun: {have})")
        if kind not in found:
            found.append(kind)
    return tuple(sorted(found, key=lambda k: k.position))


def mark_rerun(analysis: Analysis, kinds: Iterable[StepKind], reason: str) -> Analysis:
    """``analysis`` with the first of ``kinds`` and every later step predicted as a miss for ``reason``."""
    order = [s.id for s in analysis.steps]
    positions = [order.index(k) for k in kinds if k in order]
    if not positions:
        return analysis
    first = min(positions)
    steps = tuple(
        StepStatus(s.id, "miss", reason, s.estimated_seconds) if i >= first and s.status == "hit" else s
        for i, s in enumerate(analysis.steps)
    )
    return replace(analysis, steps=steps)
