"""Progress writers for ``builder build``: rich (live), plain (BuildKit-like lines) and json (one object per line).

JSON events (stdout, one object per line, for CI runners)::

    {"event": "log", "id": "pip", "line": "UV_PIP_INSTALL_STARTED"}
    {"event": "step", "id": "pip", "cached": false, "seconds": 12.3, "predicted": "miss"}
    {"event": "done", "image": "app:dev", "seconds": 1.2, "mismatches": [{"id", "key", "predicted", "cached", "vertex"}]}
    {"event": "error", "id": "shell", "message": "..."}      (instead of "done" when the build fails)

``step`` events come once per plan step when its vertex ends; ``predicted``
is the plan's hit/miss (null without a step cache).  Plain and rich write to
stderr, so stdout stays clean.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from builder.engines.events import (
    BuildFinished,
    BuildStarted,
    EngineProgress,
    Event,
    StepFinished,
    StepLog,
    StepStarted,
)


class JsonWriter:
    """One JSON object per line on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def _write(self, value: dict[str, Any]) -> None:
        self.stream.write(json.dumps(value, ensure_ascii=False) + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepLog):
            self._write({"event": "log", "id": event.step, "line": event.line})
        elif isinstance(event, StepFinished):
            self._write(
                {
                    "event": "step",
                    "id": event.step,
                    "cached": event.cached,
                    "seconds": event.seconds,
                    "predicted": event.predicted,
                }
            )
        elif isinstance(event, BuildFinished):
            self._write(
                {
                    "event": "done",
                    "image": event.image,
                    "seconds": event.seconds,
                    "mismatches": [m.to_json() for m in event.mismatches],
                }
            )

    def close(self) -> None:
        """Nothing to tear down."""


class PlainWriter:
    """BuildKit-like lines: ``#2 [pip] uv pip install ...``, ``#2 0.42 <log line>``, ``#2 DONE 3.1s``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.numbers: dict[str, int] = {}
        self.started = 0.0

    def _n(self, key: str) -> int:
        return self.numbers.setdefault(key, len(self.numbers) + 1)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildStarted):
            self._write(f"building {event.app} on {event.engine}: {' → '.join(event.steps)}")
        elif isinstance(event, StepStarted):
            self._write(f"#{self._n(event.step)} {event.name}")
        elif isinstance(event, StepLog):
            self._write(f"#{self._n(event.step)} {event.line}")
        elif isinstance(event, StepFinished):
            n = self._n(event.step)
            if event.error:
                self._write(f"#{n} ERROR: {event.error}")
            elif event.cached:
                self._write(f"#{n} {event.name} CACHED")
            else:
                self._write(f"#{n} DONE {event.seconds:.1f}s")
        elif isinstance(event, EngineProgress):
            self._write(
                f"#{self._n(event.name)} {event.name} {'CACHED' if event.cached else 'DONE'} {event.seconds:.1f}s"
            )
        elif isinstance(event, BuildFinished):
            self._write(f"built {event.image or '(no export)'} in {event.seconds:.1f}s")

    def close(self) -> None:
        """Nothing to tear down."""


class RichWriter:
    """A live table: one row per plan step with waiting/running/cached/done and durations."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.rows: dict[str, list[str]] = {}
        self.title = "build"
        self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title, expand=True)
        for column in ("step", "status", "time", "last output"):
            table.add_column(column, overflow="ellipsis", no_wrap=True)
        for step, (status, seconds, line) in self.rows.items():
            table.add_row(step, status, seconds, line)
        return table

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildStarted):
            self.title = f"building {event.app} on {event.engine}"
            self.rows = {s: ["waiting", "", ""] for s in event.steps}
        elif isinstance(event, StepStarted):
            self.rows.setdefault(event.step, ["", "", ""])[0] = "[yellow]running[/]"
        elif isinstance(event, StepLog):
            self.rows.setdefault(event.step, ["", "", ""])[2] = event.line
        elif isinstance(event, StepFinished):
            row = self.rows.setdefault(event.step, ["", "", ""])
            row[0] = "[red]failed[/]" if event.error else ("[cyan]cached[/]" if event.cached else "[green]done[/]")
            row[1] = f"{event.seconds:.1f}s"
        elif isinstance(event, BuildFinished):
            self.title += f" — {event.image or 'no export'} in {event.seconds:.1f}s"
        self.live.update(self._table())

    def close(self) -> None:
        self.live.stop()


def make_writer(mode: str) -> JsonWriter | PlainWriter | RichWriter:
    """``auto`` = rich on a terminal, else plain."""
    if mode == "auto":
        mode = "rich" if sys.stderr.isatty() else "plain"
    if mode == "json":
        return JsonWriter()
    if mode == "rich":
        try:
            return RichWriter()
        except ImportError:  # rich is optional at run time: fall back to plain lines
            return PlainWriter()
    return PlainWriter()
