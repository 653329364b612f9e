"""Build progress as frozen data: what an engine reports while it executes a plan.

Events arrive in order through a callback (``on_event``) or an iterator
(:func:`builder.engines.buildkit.BuildKitEngine.iter_build`).  Every event that
belongs to a plan step carries the step id; engine-made work (exporting,
image resolution) uses ``step=None``.

>>> StepLog("pip", "UV_PIP_INSTALL_STARTED", 1).line
'UV_PIP_INSTALL_STARTED'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Prediction = Literal["hit", "miss"]


@dataclass(frozen=True, slots=True)
class BuildStarted:
    """The solve was sent; ``steps`` are the plan step ids in order."""

    app: str
    steps: tuple[str, ...]
    engine: str


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A step's vertex began executing (not sent for cached steps)."""

    step: str
    name: str


@dataclass(frozen=True, slots=True)
class StepLog:
    """One line of a step's output (``stream`` 1 = stdout, 2 = stderr)."""

    step: str
    line: str
    stream: int = 1


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step ended: ``cached`` is BuildKit's flag; ``predicted`` the plan's analysis; ``error`` on failure."""

    step: str
    name: str
    cached: bool
    seconds: float
    predicted: Prediction | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EngineProgress:
    """Engine-made work outside the plan's steps (exporting to image, resolving the base...)."""

    name: str
    done: bool
    cached: bool = False
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A step whose BuildKit ``cached`` flag disagrees with the plan's hit/miss prediction."""

    step: str
    key: str
    predicted: Prediction
    cached: bool
    vertex: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.step,
            "key": self.key,
            "predicted": self.predicted,
            "cached": self.cached,
            "vertex": self.vertex,
        }


@dataclass(frozen=True, slots=True)
class BuildFinished:
    """The build ended successfully: the image (name or id) and every prediction mismatch."""

    image: str | None
    seconds: float
    mismatches: tuple[Mismatch, ...]


Event = BuildStarted | StepStarted | StepLog | StepFinished | EngineProgress | BuildFinished
EventSink = Callable[[Event], None]
