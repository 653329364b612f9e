"""Status stream → ``dockerfile`` step events, one per Dockerfile instruction vertex (``[n/m] …``).

BuildKit's dockerfile.v0 frontend names each instruction's vertex
``[2/4] RUN …`` (``[stage 2/4] …`` in a multi-stage file); those are the
``dockerfile`` step's progress.  The ``[config] …`` vertex is the
cerebrium.toml layer added on top; everything else (``[internal] …``,
``exporting …``) is engine work.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.failure import FailedStep
from builder.engines.buildkit.progress import VertexState, timestamp_seconds, vertex_seconds
from builder.engines.events import EngineProgress, EventSink, StepFinished, StepLog, StepStarted
from builder.engines.failure_hints import hint_for
from builder.plan.model import StepKind

CONFIG_STEP = StepKind.CONFIG.value
CONFIG_PREFIX = "[config] "
_INSTRUCTION = re.compile(r"^\[(?:[^\]\s]+ )?\d+/\d+\] ")
_TAIL = 50


def is_instruction(name: str) -> bool:
    """``[2/4] RUN …`` or ``[stage-0 2/4] RUN …`` (a Dockerfile instruction), not ``[internal] …``/``exporting …``."""
    return _INSTRUCTION.match(name) is not None


@dataclass(slots=True)
class InstructionTracker:
    """Feed StatusResponses in; ``dockerfile``/``config`` step events go to ``sink`` as they happen."""

    sink: EventSink | None = None
    step: str = StepKind.DOCKERFILE.value
    vertices: dict[str, VertexState] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, response: control_pb2.StatusResponse) -> None:
        """Apply one StatusResponse (thread-safe)."""
        with self._lock:
            for v in response.vertexes:
                self._vertex(v)
            for log in response.logs:
                for line in bytes(log.msg).decode("utf-8", "replace").splitlines():
                    self.tail = (self.tail + [line])[-_TAIL:]
                    self._emit(StepLog(self.step, line, int(log.stream) or 1))

    def flush(self) -> None:
        """Nothing is buffered: log lines are emitted as they arrive."""

    def _vertex(self, v: Any) -> None:
        state = self.vertices.get(v.digest)
        if state is None:
            state = self.vertices[v.digest] = VertexState(v.name)
            self.order.append(v.digest)
        state.cached = state.cached or bool(v.cached)
        state.started = timestamp_seconds(v.started) or state.started
        state.completed = timestamp_seconds(v.completed) or state.completed
        state.error = v.error or state.error
        step = (
            self.step if is_instruction(state.name) else CONFIG_STEP if state.name.startswith(CONFIG_PREFIX) else None
        )
        if step and state.started and not state.announced and not state.cached:
            state.announced = True
            self._emit(StepStarted(step, state.name))
        if state.completed and not state.finished:
            state.finished = True
            seconds = vertex_seconds(state)
            if step:
                self._emit(StepFinished(step, state.name, state.cached, seconds, None, state.error or None))
            else:
                self._emit(EngineProgress(state.name, True, state.cached, seconds))

    def _emit(self, event: Any) -> None:
        if self.sink is not None:
            self.sink(event)

    def instructions(self) -> list[VertexState]:
        """The instruction vertices in first-seen order."""
        return [self.vertices[d] for d in self.order if is_instruction(self.vertices[d].name)]

    def config_vertex(self) -> VertexState | None:
        """The ``[config]`` layer's vertex, when one was built."""
        return next((self.vertices[d] for d in self.order if self.vertices[d].name.startswith(CONFIG_PREFIX)), None)

    def failed(self) -> VertexState | None:
        """The first vertex that reported an error (cancellations of its siblings aside)."""
        with self._lock:
            states = [self.vertices[d] for d in self.order]
        return next(
            (v for v in states if v.error and "context canceled" not in v.error),
            next((v for v in states if v.error), None),
        )

    def failure(self) -> FailedStep | None:
        """The failed instruction with the log tail, for the build's error (see ``solve.SolveTracker``)."""
        failed = self.failed()
        if failed is None:
            return None
        tail = tuple(self.tail)
        return FailedStep(
            self.step,
            failed.name,
            f"{failed.name}: {failed.error}",
            tail,
            hint_for(self.step, tail) or "fix the Dockerfile instruction named above and build again",
        )
