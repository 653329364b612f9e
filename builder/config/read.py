"""The only I/O of ``builder.config``: find, read and decode ``cerebrium.toml``.

Every way the file can be unusable (missing, a directory without the file,
empty, binary, not UTF-8, too large, a TOML syntax error) becomes one error
:class:`~builder.diagnostics.Diagnostic`; nothing here raises for bad input.

>>> source = read_source("fixtures/apps/minimal")
>>> source.data["cerebrium"]["deployment"]["name"]
'minimal'
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.diagnostics import Diagnostic

CONFIG_NAME = "cerebrium.toml"
MAX_BYTES = 1024 * 1024
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_TOML_EOF = re.compile(r"\s*\(at end of document\)$")


@dataclass(frozen=True, slots=True)
class Source:
    """A decoded config file, or the reason there is none.

    ``display`` is the path as the user wrote it (for messages); ``path`` the
    absolute resolved file.  ``data`` is None iff ``diagnostics`` holds an error.
    """

    display: str
    path: Path | None = None
    text: str | None = None
    data: dict[str, Any] | None = None
    diagnostics: tuple[Diagnostic, ...] = ()


def locate(path: str | os.PathLike[str]) -> tuple[str, Path]:
    """The display path and absolute path of the config file for ``path``.

    A directory means the ``cerebrium.toml`` inside it.
    """
    given = os.fspath(path) or "."
    if os.path.isdir(given):
        given = os.path.join(given, CONFIG_NAME)
    display = os.path.normpath(given)
    return display, Path(os.path.abspath(display))


def read_source(path: str | os.PathLike[str]) -> Source:
    """Read and decode the config at ``path`` (a file or its directory)."""
    original = os.fspath(path) or "."
    display, absolute = locate(original)
    raw, problem = _read_bytes(original, display, absolute)
    if problem is not None:
        return Source(display, absolute, diagnostics=(problem,))
    assert raw is not None
    text, problem = _decode(raw, display)
    if problem is not None:
        return Source(display, absolute, diagnostics=(problem,))
    assert text is not None
    deep = nesting_too_deep(text)
    if deep is not None:
        return Source(display, absolute, text=text, diagnostics=(_too_deep(display, deep),))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Source(display, absolute, text=text, diagnostics=(_syntax_error(exc, text, display),))
    except RecursionError:  # the scan above missed a form of nesting: still a config error, never a crash
        return Source(display, absolute, text=text, diagnostics=(_too_deep(display, None),))
    return Source(display, absolute.resolve(), text=text, data=data)


#: Arrays and inline tables nested deeper than this are refused before parsing (the parser and the
#: validators recurse once per level; no real config comes near it).
MAX_NESTING = 64


def nesting_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting of values first exceeds MAX_NESTING, or None.

    A scan over the text, skipping strings and comments; table headers open
    and close on their line, so they never add up.
    """
    depth, line, i, n = 0, 1, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            end = _string_end(text, i + len(quote), quote)
            line += text.count("\n", i, end)
            i = end
            continue
        elif ch in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return None


def _string_end(text: str, start: int, quote: str) -> int:
    """The index just past the string that opened before ``start`` (end of text when unterminated)."""
    i = start
    while True:
        end = text.find(quote, i)
        if end < 0:
            return len(text)
        if quote[0] == '"' and _escaped(text, end):
            i = end + 1
            continue
        return end + len(quote)


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index - backslashes - 1 >= 0 and text[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _too_deep(display: str, line: int | None) -> Diagnostic:
    return _fail(
        display,
        f"a value is nested more than {MAX_NESTING} levels deep",
        "flatten the value: cerebrium.toml needs at most a few levels of arrays and tables",
        line=line,
    )


def _fail(display: str, message: str, hint: str | None = None, line: int | None = None) -> Diagnostic:
    return Diagnostic("error", "", message, line=line, file=display, hint=hint)


def _read_bytes(original: str, display: str, absolute: Path) -> tuple[bytes | None, Diagnostic | None]:
    if not absolute.exists():
        if absolute.is_symlink():
            return None, _fail(
                display,
                f"is a symlink to {os.readlink(absolute)!r}, which does not exist",
                f"point the link at {CONFIG_NAME}, or pass the real file's path",
            )
        if os.path.isdir(original):
            return None, _fail(
                os.path.normpath(original),
                f"no {CONFIG_NAME} in this directory",
                f"create {CONFIG_NAME} with a [cerebrium.deployment] name, or pass the file's path",
            )
        return None, _fail(display, "file not found", f"pass the path of {CONFIG_NAME} or of its directory")
    if absolute.is_dir():
        return None, _fail(display, "is a directory, not a file", f"pass the path of {CONFIG_NAME}")
    try:
        st = absolute.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            return None, _fail(
                display,
                "is not a regular file (a FIFO, socket or device)",
                f"pass the path of {CONFIG_NAME}, a plain text file",
            )
        size = st.st_size
        if size > MAX_BYTES:
            return None, _fail(
                display,
                f"file is too large ({size} bytes; the limit is 1 MiB)",
                f"is this really {CONFIG_NAME}? a config is a few kB",
            )
        # O_NONBLOCK: if the path was swapped for a FIFO after the check, open fails or reads nothing
        fd = os.open(absolute, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, _fail(display, f"cannot read the file: {exc.strerror or exc}")
    if len(raw) > MAX_BYTES:  # grew while we looked
        return None, _fail(display, "file is too large (the limit is 1 MiB)")
    return raw, None


def _decode(raw: bytes, display: str) -> tuple[str | None, Diagnostic | None]:
    if not raw.strip():
        return None, _fail(display, "file is empty", 'add [cerebrium.deployment] with name = "my-app"')
    if b"\x00" in raw:
        return None, _fail(display, "file is binary (it contains NUL bytes), not TOML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, _fail(
            display,
            f"file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at line {line})",
            "save the file as UTF-8",
            line=line,
        )
    return text.removeprefix("\ufeff"), None


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, display: str) -> Diagnostic:
    """One line naming where the TOML is broken: line, column and tomllib's reason."""
    message = str(exc)
    line: int | None = None
    where = ""
    match = _TOML_POSITION.search(message)
    if match:
        line, column = int(match.group(1)), int(match.group(2))
        message = message[: match.start()]
        where = f" at line {line}, column {column}"
    elif _TOML_EOF.search(message):
        message = _TOML_EOF.sub("", message)
        line = text.count("\n") + 1
        where = " at the end of the file"
    reason = message[:1].lower() + message[1:] if message else "invalid TOML"
    return _fail(display, f"TOML syntax error{where}: {reason}", line=line)
