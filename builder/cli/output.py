"""The only code that writes to the terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from builder import errors as e
from builder.diagnostics import Diagnostic


def out(text: str) -> None:
    """Write a line to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(text: str) -> None:
    """Write ``error: text`` to stderr."""
    sys.stderr.write(f"error: {text}\n")


def warn(text: str) -> None:
    """Write ``warning: text`` to stderr."""
    sys.stderr.write(f"warning: {text}\n")


def info(text: str) -> None:
    """Write a progress/info line to stderr (keeps stdout machine-readable)."""
    sys.stderr.write(text + "\n")


def diagnostics(items: Iterable[Diagnostic]) -> None:
    """Print diagnostics, one line each, on stderr."""
    for d in items:
        if d.level == "note":
            info(d.format())
        else:
            (error if d.level == "error" else warn)(d.format())


def print_json(value: object) -> None:
    """Print a JSON document (sorted keys, stable) on stdout."""
    out(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))


def report_error(exc: e.BuilderError) -> None:
    """Print a BuilderError: its diagnostics if it has them, else its message, then its hint."""
    diags = getattr(exc, "diagnostics", ())
    if diags:
        diagnostics(diags)
    else:
        where = ""
        file = getattr(exc, "file", None)
        key_path = getattr(exc, "key_path", None)
        line = getattr(exc, "line", None)
        if file:
            where += file + (f":{line}" if line else "") + ": "
        if key_path:
            where += key_path + ": "
        error(where + exc.message)
    failure = getattr(exc, "failure", None)
    if failure is not None:
        sys.stderr.write(f"  command: {failure.command}\n")  # the user's command; builder's script is --debug's
        for line_text in failure.log_tail:
            sys.stderr.write(f"  | {line_text}\n")
    logs = getattr(exc, "logs", ())
    for line_text in logs:
        sys.stderr.write(f"  | {line_text}\n")
    if exc.hint and not diags:  # a diagnostic already carries its hint
        sys.stderr.write(f"hint: {exc.hint}\n")
