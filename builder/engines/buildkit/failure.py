"""What a Status tracker reports about the step that failed, for the one solve path's error."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FailedStep:
    """The failed step: its id, the command it ran, the engine's error, its last log lines and a hint."""

    step: str
    command: str
    error: str
    tail: tuple[str, ...]
    hint: str
