"""Compare two plans without any cache: which steps change, and why.

This is ``builder diff`` (the check a CI runner posts on a pull request) and
the core of :func:`builder.plan.analyze.analyze`, which compares a plan with
the last one recorded for the app.  Both sides may be :class:`Plan` values or
their JSON form (as stored in history).

>>> # d = diff_plans(make_plan(old_config), make_plan(new_config))
>>> # [(c.id, c.change, c.reason) for c in d.changes]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from builder.plan.causes import Cause, input_causes
from builder.plan.changes import describe
from builder.plan.graph import layer_descendants, plan_graph
from builder.plan.model import Plan, StepKind

ChangeKind = Literal["same", "inputs", "parent", "recipe", "added", "removed"]


@dataclass(frozen=True, slots=True)
class StepChange:
    """How one step differs between two plans.

    ``change``: ``same`` (equal key), ``inputs`` (its own inputs changed;
    ``details`` says how), ``parent`` (own inputs equal, a parent changed),
    ``recipe`` (inputs and parents equal: builder now carries the step out
    differently, after an upgrade), ``added`` / ``removed`` (present in only one plan).
    """

    id: StepKind
    change: ChangeKind
    details: tuple[str, ...] = ()
    old_key: str | None = None
    new_key: str | None = None
    cause: StepKind | None = None  # for "parent": the changed ancestor
    causes: tuple[Cause, ...] = ()  # for "inputs": what changed, as key paths and file paths

    @property
    def reason(self) -> str:
        """One human line, e.g. ``pip: torch ==2.0.0 → ==2.1.0``."""
        if self.change == "inputs":
            text = f"{self.id.value}: {'; '.join(self.details)}"
            return text + (" (invalidates every step)" if self.id is StepKind.BASE else "")
        if self.change == "parent":
            return f"parent changed ({self.cause.value})" if self.cause else "parent changed"
        if self.change == "recipe":
            return f"{self.id.value}: same inputs, but this builder version builds the step differently"
        return {"same": "unchanged", "added": "new step", "removed": "step removed"}[self.change]


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """Step-by-step comparison of two plans (new plan order, then removed steps)."""

    old_app: str
    new_app: str
    changes: tuple[StepChange, ...]

    @property
    def changed(self) -> tuple[StepChange, ...]:
        return tuple(c for c in self.changes if c.change != "same")

    @property
    def cause(self) -> StepKind | None:
        """The first step (in build order) whose own inputs changed, was added or removed."""
        for c in self.changes:
            if c.change in ("inputs", "recipe", "added", "removed"):
                return c.id
        return None

    @property
    def config_only(self) -> bool:
        """True when the only change is the ``config`` step: no layer is rebuilt."""
        return [c.id for c in self.changed] == [StepKind.CONFIG]

    def change_for(self, step_id: str | StepKind) -> StepChange | None:
        for c in self.changes:
            if c.id == step_id:
                return c
        return None


def diff_plans(old: Plan | Mapping[str, Any], new: Plan | Mapping[str, Any]) -> PlanDiff:
    """Compare ``old`` with ``new`` step by step (see :class:`StepChange`).

    Inputs are only serialised for steps whose keys differ, so comparing two
    unchanged 100,000-file plans costs no manifest encoding.
    """
    before = {s["id"]: s for s in _steps(old)}
    after = _steps(new)
    graph = plan_graph(new)
    invalid: dict[StepKind, StepKind] = {}  # step → the nearest changed step above it (the new plan's layer edges)
    changes: list[StepChange] = []
    for step in after:  # build order: every ancestor of a step is decided before it
        change = _explain(_compare(before.get(step["id"]), step), before.get(step["id"]), step, invalid)
        if change.change in ("inputs", "recipe", "added"):
            invalid.update(dict.fromkeys(layer_descendants(graph, change.id), change.id))
        changes.append(change)
    ids = {s["id"] for s in after}
    changes.extend(StepChange(StepKind(i), "removed", old_key=s["key"]) for i, s in before.items() if i not in ids)
    return PlanDiff(_app(old), _app(new), tuple(changes))


def _app(plan: Plan | Mapping[str, Any]) -> str:
    return plan.app if isinstance(plan, Plan) else str(plan.get("app", ""))


def _steps(plan: Plan | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Step mappings with ``id``, ``key``, ``parents`` and a lazily serialised ``inputs``."""
    if isinstance(plan, Plan):
        return list(plan.json_view()["steps"])
    return list(plan.get("steps", ()))


def own_inputs(inputs: Mapping[str, Any]) -> Mapping[str, Any]:
    """``inputs`` without fields derived from other steps' keys (the config step's plan-key labels)."""
    image = inputs.get("image")
    if not isinstance(image, Mapping) or not isinstance(image.get("labels"), Mapping):
        return inputs
    labels = {k: v for k, v in image["labels"].items() if not k.startswith("dev.builder.plan.")}
    return {**inputs, "image": {**image, "labels": labels}}


def _compare(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> StepChange:
    """The step's own change: ``added``, ``same``, ``inputs``, or ``recipe`` (pending :func:`_explain`)."""
    kind = StepKind(new["id"])
    if old is None:
        return StepChange(kind, "added", new_key=new["key"])
    keys = {"old_key": old["key"], "new_key": new["key"]}
    if old["key"] == new["key"]:
        return StepChange(kind, "same", **keys)
    old_inputs, new_inputs = own_inputs(old.get("inputs", {})), own_inputs(new.get("inputs", {}))
    if old_inputs != new_inputs:
        return StepChange(
            kind,
            "inputs",
            describe(kind.value, old_inputs, new_inputs),
            **keys,
            causes=input_causes(kind.value, old_inputs, new_inputs),
        )
    if list(old.get("parents", ())) != list(new.get("parents", ())):
        return StepChange(kind, "parent", **keys)  # its layer parents differ: the cause is found by _explain
    return StepChange(kind, "recipe", **keys)


def _explain(
    change: StepChange, old: Mapping[str, Any] | None, new: Mapping[str, Any], invalid: Mapping[StepKind, StepKind]
) -> StepChange:
    """A key change with equal own inputs is a ``parent`` change when a changed step lies above it.

    The cause is the nearest changed layer ancestor; failing that, a layer parent the old plan had and the
    new one has not.  With neither, only the way the step is built can differ: ``recipe``.
    """
    if change.change not in ("recipe", "parent") or old is None:
        return change
    cause = invalid.get(change.id)
    if cause is None:
        removed = [p for p in old.get("parents", ()) if p not in new.get("parents", ())]
        cause = StepKind(removed[0]) if removed else None
    if cause is None:
        return replace(change, change="recipe") if change.change == "parent" else change
    return replace(change, change="parent", cause=cause)
