"""Cache-hit analysis: which steps will rebuild, why, and for how long.

A step is a **hit** when its key is recorded as built in the
:class:`~builder.plan.protocols.StepHistory`, else a **miss**.  For each miss
the reason names the *cause*: the first step whose own inputs changed since
the last plan recorded for the same app, with a field-level diff
(``pip: torch ==2.0.0 → ==2.1.0``); later steps say ``parent changed (pip)``.
A change confined to ``config`` is reported as "no layer rebuild".
Estimates come from recorded durations (the same key, else the key the step
had in the last plan).

>>> from builder.plan.protocols import MemoryStepHistory
>>> # a = analyze(plan, MemoryStepHistory()); a.steps[0].status  →  'miss'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from builder.plan import causes as _causes
from builder.plan.causes import ENGINE_PRUNED, OTHER_ENGINE, Cause, fixed
from builder.plan.diff import PlanDiff, diff_plans
from builder.plan.model import Plan, Step, StepKind
from builder.plan.protocols import StepHistory

Status = Literal["hit", "miss"]


@dataclass(frozen=True, slots=True)
class StepStatus:
    """The analysis of one step."""

    id: StepKind
    status: Status
    reason: str
    estimated_seconds: float | None
    causes: tuple[Cause, ...] = ()  # a miss's reason as names (see builder.plan.causes); empty for a hit


@dataclass(frozen=True, slots=True)
class Analysis:
    """Per-step status for a plan, in plan order, plus the overall cause."""

    app: str
    steps: tuple[StepStatus, ...]
    cause: StepKind | None = None
    has_history: bool = False
    config_only: bool = False
    #: The recorded plan (JSON form) this one was compared with; None when there was none or nothing missed.
    previous: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    #: For which engine (and shared caches) the hits were predicted: ``{"engine": {"id", "description"} | None,
    #: "note": str, "cache_from": [...]}``, set by ``builder.api``; None when planned without an engine in view.
    predicted_for: Mapping[str, Any] | None = field(default=None, compare=False)

    def status(self, step_id: str | StepKind) -> StepStatus:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def misses(self) -> tuple[StepStatus, ...]:
        return tuple(s for s in self.steps if s.status == "miss")

    @property
    def estimated_seconds(self) -> float | None:
        """Total estimated build time of the misses (None when any miss has no estimate)."""
        values = [s.estimated_seconds for s in self.misses]
        return None if any(v is None for v in values) else float(sum(v for v in values if v is not None))

    def summary(self) -> str:
        """One line: ``2 of 7 steps rebuild (cause: pip), estimated 41.2 s``."""
        n = len(self.misses)
        if n == 0:
            return f"all {len(self.steps)} steps cached"
        text = f"{n} of {len(self.steps)} steps rebuild"
        if self.config_only:
            text += " (image config only: no layer rebuild)"
        elif self.cause is not None:
            text += f" (cause: {self.cause.value})"
        total = self.estimated_seconds
        return text + (f", estimated {total:.1f} s" if total is not None else "")


def analyze(plan: Plan, history: StepHistory | None) -> Analysis:
    """Mark each step of ``plan`` hit or miss against ``history`` and explain every miss.

    The last recorded plan is only read when something misses (a hit needs no reason).
    """
    built = [history is not None and history.is_built(step.key) for step in plan.steps]
    previous = history.last_plan(plan.app) if history is not None and not all(built) else None
    diff = _diff_or_none(previous, plan)
    if diff is None:
        previous = None
    statuses = []
    for step, hit in zip(plan.steps, built, strict=True):
        if hit:
            statuses.append(StepStatus(step.id, "hit", _hit_reason(history, step.key), 0.0))
        else:
            pruned = _pruned(history, step.key)
            elsewhere = None if pruned else _optional(history, "elsewhere", step.key)
            reason = pruned or elsewhere or _reason(step, diff, plan.app)
            estimate = _estimate(step, diff, history)
            causes = (
                (fixed("engine_cache", ENGINE_PRUNED),)
                if pruned
                else (fixed("engine_cache", OTHER_ENGINE),)
                if elsewhere
                else _miss_causes(step, diff)
            )
            statuses.append(StepStatus(step.id, "miss", reason, estimate, causes))
    config_only = (
        diff is not None and diff.config_only and [s.id for s in statuses if s.status == "miss"] == [StepKind.CONFIG]
    )
    if config_only:
        statuses = [_no_layer(s) if s.id is StepKind.CONFIG else s for s in statuses]
    has_history = previous is not None or (history is not None and all(built))
    return Analysis(plan.app, tuple(statuses), diff.cause if diff else None, has_history, config_only, previous)


def _diff_or_none(previous: Mapping[str, Any] | None, plan: Plan) -> PlanDiff | None:
    """The diff against the recorded plan; None when there is none or it cannot be read (old/foreign form)."""
    if not previous:
        return None
    try:
        return diff_plans(previous, plan)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _no_layer(status: StepStatus) -> StepStatus:
    reason = status.reason.removeprefix("config: ")
    return StepStatus(
        status.id,
        status.status,
        f"no layer rebuild: image config only ({reason})",
        status.estimated_seconds,
        status.causes,
    )


def _optional(history: StepHistory | None, name: str, key: str) -> str | None:
    """The answer of an optional StepHistory method (``elsewhere``, ``hit_source``), when it has one."""
    method = getattr(history, name, None)
    value = method(key) if callable(method) else None
    return value if isinstance(value, str) and value else None


def _hit_reason(history: StepHistory | None, key: str) -> str:
    """``cached``, or where the hit comes from when not from this machine's records (``hit: shared cache REF``)."""
    source = _optional(history, "hit_source", key)
    return f"hit: {source}" if source else "cached"


def _pruned(history: StepHistory | None, key: str) -> str | None:
    """ "the engine pruned it" when the history knows (an optional StepHistory method)."""
    pruned = getattr(history, "pruned", None)
    note = pruned(key) if callable(pruned) else None
    return f"the engine pruned it ({note})" if isinstance(note, str) and note else None


def _reason(step: Step, diff: PlanDiff | None, app: str) -> str:
    if diff is None:
        return f"not built before (no earlier plan of {app!r} in the cache)"
    change = diff.change_for(step.id)
    if change is None or change.change == "added":
        return "new step (not in the last plan)"
    if change.change == "same":
        return "same key as the last plan, but not built yet (or evicted from the cache)"
    return change.reason


def _miss_causes(step: Step, diff: PlanDiff | None) -> tuple[Cause, ...]:
    """The same decision as :func:`_reason`, as names to count over many builds."""
    if diff is None:
        return (_causes.fixed("first_build", _causes.FIRST_BUILD),)
    change = diff.change_for(step.id)
    if change is None or change.change == "added":
        return (_causes.fixed("new_step", _causes.NEW_STEP),)
    if change.change == "same":
        return (_causes.fixed("evicted", _causes.EVICTED),)
    if change.change == "parent":
        return (_causes.parent_changed(change.cause.value if change.cause else None),)
    if change.change == "recipe":
        return (_causes.fixed("builder_upgrade", _causes.BUILDER_UPGRADE),)
    return change.causes


def _estimate(step: Step, diff: PlanDiff | None, history: StepHistory | None) -> float | None:
    if history is None:
        return None
    seconds = history.duration(step.key)
    if seconds is None and diff is not None:
        change = diff.change_for(step.id)
        if change is not None and change.old_key:
            seconds = history.duration(change.old_key)
    return None if seconds is None else round(float(seconds), 3)
