"""Status stream → build events: vertex digests mapped back to plan steps.

:class:`ProgressTracker` keeps the last copy of every vertex, turns vertex
updates into :mod:`builder.engines.events` values for the sink, splits log
bytes into lines (keeping the last 50 per step for failure reports) and, at
the end, tells each step's cached flag and duration.  Digests are matched to
the converter's; a vertex with an unknown digest (a daemon that re-hashes
ops) is matched by its ``[step]`` name.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.convert import Converted, step_from_name
from builder.engines.buildkit.failure import FailedStep
from builder.engines.events import (
    EngineProgress,
    EventSink,
    StepFinished,
    StepLog,
    StepStarted,
)
from builder.engines.failure_hints import hint_for, short_error
from builder.plan.model import StepKind

TAIL_LINES = 50


@dataclass(slots=True)
class VertexState:
    """The latest known state of one BuildKit vertex (merged from its status updates)."""

    name: str = ""
    cached: bool = False
    started: float | None = None
    completed: float | None = None
    error: str = ""
    announced: bool = False
    finished: bool = False
    transferred: bool = False  # the engine reported byte/step progress (e.g. layers being pulled)
    source: bool = False
    reported_cached: bool = False  # BuildKit itself said cached (not inferred for an image source)


@dataclass(frozen=True, slots=True)
class StepObservation:
    """BuildKit's view of one step's main vertex at the end of the build."""

    step: StepKind
    vertex: str
    cached: bool
    seconds: float
    error: str
    seen: bool


def timestamp_seconds(ts: object) -> float | None:
    """A protobuf Timestamp as epoch seconds, or None when it is unset (zero)."""
    seconds = getattr(ts, "seconds", 0)
    nanos = getattr(ts, "nanos", 0)
    if not seconds and not nanos:
        return None
    return float(seconds) + nanos / 1e9


@dataclass(slots=True)
class ProgressTracker:
    """Feed StatusResponses in; read events out through ``sink`` and :meth:`observations` at the end."""

    converted: Converted
    sink: EventSink | None = None
    predictions: dict[str, str] = field(default_factory=dict)
    vertices: dict[str, VertexState] = field(default_factory=dict)
    tails: dict[StepKind, collections.deque[str]] = field(default_factory=dict)
    _partial: dict[tuple[str, int], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _mains: dict[str, StepKind] = field(init=False)
    _main_names: dict[str, StepKind] = field(init=False)
    _steps: dict[str, StepKind] = field(init=False)

    def __post_init__(self) -> None:
        self._mains = {d: k for k, d in self.converted.step_digests}
        self._main_names = {self.converted.definition.names().get(d, ""): k for k, d in self.converted.step_digests}
        self._steps = dict(self.converted.vertex_steps)

    def step_of(self, digest: str, name: str = "") -> StepKind | None:
        return self._steps.get(digest) or step_from_name(name)

    def main_step(self, digest: str, name: str) -> StepKind | None:
        return self._mains.get(digest) or self._main_names.get(name)

    def _emit(self, event: object) -> None:
        if self.sink is not None:
            self.sink(event)  # type: ignore[arg-type]

    def feed(self, response: control_pb2.StatusResponse) -> None:
        """Apply one StatusResponse (thread-safe)."""
        with self._lock:
            for status in response.statuses:
                # "resolve REF" is the manifest lookup of an image source, not a download: an image whose
                # layers the engine holds already (another name or tag of the same image) is reused.
                if not status.ID.startswith("resolve "):
                    self.vertices.setdefault(status.vertex, VertexState()).transferred = True
            for v in response.vertexes:
                self._vertex(v)
            for log in response.logs:
                self._log(log.vertex, int(log.stream), bytes(log.msg))

    def _vertex(self, v: control_pb2.Vertex) -> None:
        state = self.vertices.setdefault(v.digest, VertexState())
        state.name = v.name or state.name
        if state.reported_cached and state.completed is not None and not state.error and not v.cached and not v.error:
            # Reused from the cache already: a later "started" under the same digest is BuildKit fetching the
            # cached result's layers (e.g. the image exporter unpacking a --cache-from hit into the image
            # store), reported through the vertex's progress controller.  Nothing runs: the solver only
            # executes an op whose cache load failed, and that load is reported with its error.  Only BuildKit's
            # own flag counts here: an image source's inferred "cached" must still see a later pull.
            return
        # An image source that pulled nothing is reused, whatever its flag says: BuildKit 0.8 reports
        # a docker-image vertex resolved from the local store as run, not cached.
        state.source = self.converted.is_image_source(v.digest)
        state.reported_cached = state.reported_cached or bool(v.cached)
        state.cached = bool(v.cached) or (state.source and not state.transferred and not v.error)
        state.started = timestamp_seconds(v.started) if v.HasField("started") else state.started
        state.completed = timestamp_seconds(v.completed) if v.HasField("completed") else state.completed
        state.error = v.error or state.error
        main = self.main_step(v.digest, state.name)
        if main is not None:
            if state.started is not None and not state.cached and not state.announced:
                state.announced = True
                self._emit(StepStarted(main.value, state.name))
            if state.completed is not None and not state.finished:
                state.finished = True
                self._emit(self._finished(main, state))
        elif self.step_of(v.digest, state.name) is None and state.completed is not None and not state.finished:
            state.finished = True
            self._emit(EngineProgress(state.name, True, state.cached, vertex_seconds(state)))

    def _finished(self, step: StepKind, state: VertexState) -> StepFinished:
        predicted = self.predictions.get(step.value)
        return StepFinished(
            step.value,
            state.name,
            state.cached,
            vertex_seconds(state),
            predicted if predicted in ("hit", "miss") else None,  # type: ignore[arg-type]
            short_error(state.error) or None,
        )

    def _log(self, digest: str, stream: int, data: bytes) -> None:
        step = self.step_of(digest, self.vertices.get(digest, VertexState()).name)
        text = self._partial.pop((digest, stream), "") + data.decode("utf-8", errors="replace")
        *lines, rest = text.split("\n")
        if rest:
            self._partial[(digest, stream)] = rest
        for line in lines:
            self._line(step, line.rstrip("\r"), stream)

    def _line(self, step: StepKind | None, line: str, stream: int) -> None:
        if step is None:
            return
        self.tails.setdefault(step, collections.deque(maxlen=TAIL_LINES)).append(line)
        self._emit(StepLog(step.value, line, stream))

    def flush(self) -> None:
        """Emit unterminated last lines (call once the stream has ended)."""
        with self._lock:
            for (digest, stream), rest in sorted(self._partial.items()):
                self._line(
                    self.step_of(digest, self.vertices.get(digest, VertexState()).name),
                    rest,
                    stream,
                )
            self._partial.clear()

    def observations(self) -> dict[StepKind, StepObservation]:
        """Each plan step's main vertex as last reported (unseen steps count as cached: nothing ran)."""
        out = {}
        with self._lock:
            for step, digest in self.converted.step_digests:
                state = self._find(step, digest)
                if state is None:
                    out[step] = StepObservation(step, digest, True, 0.0, "", False)
                else:
                    cached = state.cached or (state.source and not state.transferred and not state.error)
                    out[step] = StepObservation(step, digest, cached, vertex_seconds(state), state.error, True)
        return out

    def completed(self) -> dict[StepKind, StepObservation]:
        """The plan steps whose main vertex finished without error (a failed build's steps that are done)."""
        out = {}
        with self._lock:
            for step, digest in self.converted.step_digests:
                # the step's own vertex only: a same-named part (the files copy under a merge) is not the step
                state = self.vertices.get(digest)
                if state is not None and state.completed is not None and not state.error:
                    cached = state.cached or (state.source and not state.transferred)
                    out[step] = StepObservation(step, digest, cached, vertex_seconds(state), "", True)
        return out

    def _find(self, step: StepKind, digest: str) -> VertexState | None:
        if digest in self.vertices:
            return self.vertices[digest]
        for state in self.vertices.values():
            if self._main_names.get(state.name) is step:
                return state
        return None

    def failed_step(self) -> tuple[StepKind | None, str]:
        """The step whose vertex failed first (ignoring cancellations) and its error."""
        with self._lock:
            for digest, state in self.vertices.items():
                if state.error and "context canceled" not in state.error:
                    return self.step_of(digest, state.name), state.error
        return None, ""

    def tail(self, step: StepKind) -> tuple[str, ...]:
        with self._lock:
            return tuple(self.tails.get(step, ()))

    def failure(self) -> FailedStep | None:
        """The failed step with its command and log tail, for the build's error (see ``solve.SolveTracker``)."""
        step, error = self.failed_step()
        if step is None:
            return None
        tail = self.tail(step)
        hint = hint_for(step.value, tail) or "fix the command or dependency named above and build again"
        return FailedStep(step.value, self.converted.command_of(step), short_error(error), tail, hint)


def vertex_seconds(state: VertexState) -> float:
    """How long the vertex ran (0 when it never started: cached, or still unfinished)."""
    if state.started is None or state.completed is None:
        return 0.0
    return round(max(0.0, state.completed - state.started), 3)
