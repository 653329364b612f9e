"""Diagnostics: problems found in user input, as values.

The library never prints.  Loaders collect every problem in one pass into a
:class:`Diagnostics` collector and return (or raise with) the frozen list; the
CLI decides how to show them.

>>> d = Diagnostics()
>>> d.error("cerebrium.deployment.name", "is required", line=None)
>>> d.has_errors
True
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

#: "note": information a command shows but that is no problem (e.g. ``numpy latest → 2.1.3``).
Level = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where it is (key path, line, file) and what to do about it."""

    level: Level
    key_path: str
    message: str
    line: int | None = None
    file: str | None = None
    hint: str | None = None

    def format(self) -> str:
        """One human line: ``file:line: key.path: message (hint)``."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        text = f"{where}{self.key_path}: {self.message}" if self.key_path else f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_json(self) -> dict[str, object]:
        """The stable JSON form used by ``--format json``."""
        return {
            "path": self.key_path,
            "line": self.line,
            "message": self.message if not self.hint else f"{self.message} ({self.hint})",
        }


class Diagnostics:
    """An ordered collector of :class:`Diagnostic` values."""

    def __init__(self, file: str | None = None) -> None:
        self._items: list[Diagnostic] = []
        self.file = file

    def add(self, diagnostic: Diagnostic) -> None:
        self._items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self._items.extend(diagnostics)

    def error(self, key_path: str, message: str, *, line: int | None = None, hint: str | None = None) -> None:
        self._items.append(Diagnostic("error", key_path, message, line, self.file, hint))

    def warning(self, key_path: str, message: str, *, line: int | None = None, hint: str | None = None) -> None:
        self._items.append(Diagnostic("warning", key_path, message, line, self.file, hint))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self._items if d.level == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self._items if d.level == "warning")

    @property
    def has_errors(self) -> bool:
        return any(d.level == "error" for d in self._items)

    def freeze(self) -> tuple[Diagnostic, ...]:
        return tuple(self._items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word`` (difflib), or None when none is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
