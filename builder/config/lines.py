r"""Key path → line number, read from the TOML source text.

``tomllib`` returns values without positions, so this module scans the text a
second time and records the 1-based line where each key path is written:
table headers, plain and dotted keys, quoted keys, and keys inside inline
tables (including inline tables spanning lines inside arrays).  It is best
effort: on text it cannot follow it returns what it found so far and never
raises.  Parents that are only implied (``cerebrium`` by
``[cerebrium.deployment]``) get the line of their first mention.

>>> key_lines('[cerebrium.deployment]\nname = "x"\n')["cerebrium.deployment.name"]
2
"""

from __future__ import annotations

import bisect
import contextlib
import re
from collections.abc import Sequence

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# A bare scalar: number, bool, date/time (which may hold one space).
_SCALAR = re.compile(r"[^\s,\]\}#]+(?: [0-9][0-9:.+\-Z]*)?")
_BLANK = re.compile(r"(?:[ \t]+|#[^\n]*)+")
_BLANK_LINES = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)+")
_BASIC_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL_STRING = re.compile(r"'([^'\n]*)'")
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def join_key(parts: Sequence[str]) -> str:
    """Join key parts into a display path, quoting parts that are not bare keys.

    >>> join_key(["cerebrium", "dependencies", "pip", "ruamel.yaml"])
    'cerebrium.dependencies.pip."ruamel.yaml"'
    """
    return ".".join(p if _BARE_KEY.fullmatch(p) else _quote(p) for p in parts)


def _quote(part: str) -> str:
    escaped = part.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def key_lines(text: str) -> dict[str, int]:
    """Map every key path written in ``text`` to the line where it appears."""
    scanner = _Scanner(text)
    # Best effort: on confusing text keep what was found before it.
    with contextlib.suppress(_StopScanError, IndexError, ValueError):
        scanner.document()
    return scanner.lines


class _StopScanError(Exception):
    """The scanner met text it cannot follow."""


class _Scanner:
    """A small recursive scanner over valid TOML, recording key positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[str, int] = {}
        # Offsets of every newline: a position's line is a binary search away,
        # so moving through the text never has to count.
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    @property
    def line(self) -> int:
        """The 1-based line of the current position."""
        return bisect.bisect_left(self._newlines, self.pos) + 1

    # -- low level -------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def advance(self, n: int = 1) -> None:
        self.pos += n

    def skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces and comments (and newlines when ``newlines``)."""
        pattern = _BLANK_LINES if newlines else _BLANK
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def record(self, parts: Sequence[str], line: int) -> None:
        """Record ``parts`` and each implied parent (first mention wins)."""
        path = ""
        for part in parts:
            piece = part if _BARE_KEY.fullmatch(part) else _quote(part)
            path = f"{path}.{piece}" if path else piece
            self.lines.setdefault(path, line)

    # -- grammar ---------------------------------------------------------
    def document(self) -> None:
        table: list[str] = []
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self.peek() == "[":
                table = self.header()
            else:
                self.keyval(table)
            self.skip_blank(newlines=False)

    def header(self) -> list[str]:
        array = self.peek(2) == "[["
        self.advance(2 if array else 1)
        line = self.line
        parts = self.key("]")
        self.advance(2 if array else 1)
        self.record(parts, line)
        return parts

    def keyval(self, prefix: list[str]) -> None:
        line = self.line
        parts = prefix + self.key("=")
        self.advance()  # '='
        self.record(parts, line)
        self.value(parts)

    def key(self, terminator: str) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            ch = self.peek()
            if ch in ('"', "'"):
                parts.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    raise _StopScanError
                parts.append(match.group())
                self.advance(match.end() - self.pos)
            self.skip_blank(newlines=False)
            if self.peek() == ".":
                self.advance()
                continue
            if self.peek() == terminator:
                return parts
            raise _StopScanError

    def value(self, path: list[str]) -> None:
        self.skip_blank(newlines=False)
        ch = self.peek()
        if ch in ('"', "'"):
            self.string()
        elif ch == "{":
            self.inline_table(path)
        elif ch == "[":
            self.array(path)
        else:
            match = _SCALAR.match(self.text, self.pos)
            if not match:
                raise _StopScanError
            self.advance(match.end() - self.pos)

    def inline_table(self, path: list[str]) -> None:
        self.advance()  # '{'
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            if self.peek() == ",":
                self.advance()
                continue
            self.keyval(path)

    def array(self, path: list[str]) -> None:
        self.advance()  # '['
        while True:
            self.skip_blank(newlines=True)
            ch = self.peek()
            if ch == "]":
                self.advance()
                return
            if ch == ",":
                self.advance()
                continue
            if not ch:
                raise _StopScanError
            self.value(path)

    def string(self) -> str:
        quote = self.peek()
        if self.peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.pos + 3)
            if end < 0:
                raise _StopScanError
            while self.text[end + 3 : end + 4] == quote:  # up to two quotes may close the body
                end += 1
            raw = self.text[self.pos + 3 : end]
            self.advance(end + 3 - self.pos)
            return raw
        match = (_BASIC_STRING if quote == '"' else _LITERAL_STRING).match(self.text, self.pos)
        if not match:
            raise _StopScanError
        self.pos = match.end()
        body = match.group(1)
        if quote == '"' and "\\" in body:
            body = _ESCAPE.sub(_unescape, body)
        return body


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code in _ESCAPES:
        return _ESCAPES[code]
    return chr(int(code[1:], 16))
