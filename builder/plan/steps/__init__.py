"""The closed, ordered registry of step kinds: one module per kind.

Each module has ``KIND`` (a :class:`~builder.plan.model.StepKind`), an
``Inputs`` frozen dataclass (everything an engine needs to run the step),
``inputs(ctx) -> Inputs | None`` (None: the step has nothing to do and is left
out of the plan) and ``summary(inputs) -> str`` (one display line, never
hashed).  :data:`STEPS` is the default chain order; adding a kind is a new
module plus one line here.
"""

from __future__ import annotations

from types import ModuleType

from builder.plan.model import StepKind
from builder.plan.steps import apt, base, conda, config, dockerfile, files, pip, pre_build, python, runtime, shell

STEPS: tuple[ModuleType, ...] = (
    base,
    python,
    pre_build,
    apt,
    conda,
    pip,
    runtime,
    files,
    shell,
    dockerfile,
    config,
)

_BY_KIND: dict[StepKind, ModuleType] = {m.KIND: m for m in STEPS}


def module_for(kind: StepKind) -> ModuleType:
    """The step module of ``kind``."""
    return _BY_KIND[kind]


def inputs_type(kind: StepKind) -> type:
    """The ``Inputs`` dataclass of ``kind`` (used to read plans back from JSON)."""
    cls: type = _BY_KIND[kind].Inputs
    return cls
