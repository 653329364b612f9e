"""Value checks for single options: TOML type, enum and range.

Each check returns a :class:`Checked` holding either the converted value or a
message and hint, so the section validators can collect every problem in one
pass.  TOML types are named the way a person reads the file ("a string", "an
integer"), and the hint shows how to write the value.

>>> check_value(OPTION_PORT, True).message
'must be an integer, not a boolean'
"""

from __future__ import annotations

import datetime as dt
import math
import posixpath
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from builder.config.spec import RUNTIME_CUSTOM, Option
from builder.diagnostics import did_you_mean

OPTION_PORT = RUNTIME_CUSTOM.options["port"]


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of one check: ``ok`` with ``value``, or ``message``/``hint``."""

    value: object = None
    message: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the value passed."""
        return self.message is None


def toml_type(value: object) -> str:
    """How a person names the TOML type of ``value``."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.date | dt.time):
        return "a date/time"
    return "an unknown value"


def toml_literal(value: object) -> str:
    """A short TOML spelling of a scalar value for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int | float):
        return str(value)
    return toml_type(value)


def check_value(option: Option, value: object) -> Checked:
    """Check ``value`` against ``option``'s kind, enum and range."""
    checker = _CHECKERS[option.kind]
    checked = checker(option, value)
    if not checked.ok:
        return checked
    if option.enum is not None:
        return _check_enum(option, checked)
    return _check_range(option, checked)


def _check_str(option: Option, value: object) -> Checked:
    if isinstance(value, str):
        return Checked(value)
    hint = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        # python_version = 3.10 is the float 3.1: show the quoted spelling meant.
        shown = f"{value:.2f}" if option.name == "python_version" and isinstance(value, float) else str(value)
        hint = f'quote it: {option.name} = "{shown}"'
    return Checked(message=f"must be a string, not {toml_type(value)}", hint=hint)


def _check_bool(option: Option, value: object) -> Checked:
    if isinstance(value, bool):
        return Checked(value)
    hint = None
    word = value.strip().lower() if isinstance(value, str) else None
    if word in ("true", "false"):
        hint = f"write {option.name} = {word} without quotes"
    elif word in ("yes", "on", "no", "off"):
        hint = f"write {option.name} = {'true' if word in ('yes', 'on') else 'false'}"
    elif isinstance(value, int) and value in (0, 1):
        hint = f"write {option.name} = {'true' if value else 'false'}"
    return Checked(message=f"must be a boolean (true or false), not {toml_type(value)}", hint=hint)


def _check_int(option: Option, value: object) -> Checked:
    if isinstance(value, int) and not isinstance(value, bool):
        return Checked(value)
    hint = None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        hint = f"write {option.name} = {int(value)}"
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        hint = f"write {option.name} = {int(value)} without quotes"
    return Checked(message=f"must be an integer, not {toml_type(value)}", hint=hint)


def _check_float(option: Option, value: object) -> Checked:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = None
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
            hint = f"write {option.name} = {value.strip()} without quotes"
        return Checked(message=f"must be a number, not {toml_type(value)}", hint=hint)
    if not math.isfinite(value):
        return Checked(message=f"must be a finite number, not {value}")
    return Checked(float(value))


def _check_str_list(option: Option, value: object) -> Checked:
    if not isinstance(value, list):
        hint = None
        if isinstance(value, str):
            hint = f"write {option.name} = {_array_literal(value, split=option.name == 'entrypoint')}"
        return Checked(message=f"must be an array of strings, not {toml_type(value)}", hint=hint)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return Checked(message=f"item {index + 1} must be a string, not {toml_type(item)}")
    return Checked(tuple(value))


def _array_literal(value: str, *, split: bool) -> str:
    """``value`` as a TOML array: one item, or its words when it is a command line."""
    items = [value]
    if split:
        try:
            items = shlex.split(value) or [value]
        except ValueError:
            items = value.split() or [value]
    shown = ", ".join(toml_literal(item) for item in items[:8])
    return f"[{shown}{', ...' if len(items) > 8 else ''}]"


def _check_compute(option: Option, value: object) -> Checked:
    if isinstance(value, str):
        return Checked((value,))
    if isinstance(value, list):
        if not value:
            return Checked(message="must not be an empty array", hint='write compute = "CPU" or a GPU type')
        return _check_str_list(option, value)
    return Checked(message=f"must be a string or an array of strings, not {toml_type(value)}")


def _check_enum(option: Option, checked: Checked) -> Checked:
    assert option.enum is not None
    if checked.value in option.enum:
        return checked
    choices = ", ".join(f'"{c}"' for c in option.enum)
    guess = did_you_mean(str(checked.value), [c for c in option.enum if c])
    hint = f'did you mean "{guess}"?' if guess else None
    return Checked(message=f"must be one of {choices}, not {toml_literal(checked.value)}", hint=hint)


def _check_range(option: Option, checked: Checked) -> Checked:
    value = checked.value
    if not isinstance(value, int | float) or isinstance(value, bool):
        return checked
    low, high = option.minimum, option.maximum
    shown = _number(value)
    if low is not None and high is not None and not low <= value <= high:
        return Checked(message=f"must be between {_number(low)} and {_number(high)}, not {shown}")
    if low is not None and value < low:
        return Checked(message=f"must be at least {_number(low)}, not {shown}")
    if high is not None and value > high:
        return Checked(message=f"must be at most {_number(high)}, not {shown}")
    if option.exclusive_minimum is not None and value <= option.exclusive_minimum:
        return Checked(message=f"must be greater than {_number(option.exclusive_minimum)}, not {shown}")
    return checked


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_CHECKERS = {
    "str": _check_str,
    "bool": _check_bool,
    "int": _check_int,
    "float": _check_float,
    "str_list": _check_str_list,
    "compute": _check_compute,
}


# ---------------------------------------------------------------------------
# Paths and ports


def relative_path_problem(value: str) -> str | None:
    """Why ``value`` is not a safe project-relative path, or None when it is."""
    if not value.strip():
        return "must not be empty"
    if "\x00" in value:
        return "must not contain a NUL character"
    if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", value):
        return f"must be relative to the project directory, not the absolute path {toml_literal(value)}"
    if posixpath.normpath(value.replace("\\", "/")).split("/")[0] == "..":
        return f"must stay inside the project directory ({toml_literal(value)} leaves it)"
    return None


_PORT_FLAGS = ("--port", "-p", "--server.port", "--server-port", "--http-port", "--listen-port")
_BIND_FLAGS = ("--bind", "-b", "--host-port", "--listen")


def entrypoint_ports(argv: Sequence[str]) -> tuple[int, ...]:
    """The ports an entrypoint names (``--port 8000``, ``--bind 0.0.0.0:8000`` …).

    Items holding spaces (``["sh", "-c", "uvicorn app --port 8000"]``) are
    split like a shell would; values that are not numbers (``$PORT``) are skipped.

    >>> entrypoint_ports(["gunicorn", "-b", "0.0.0.0:8080", "app:app"])
    (8080,)
    """
    found: list[int] = []
    for flag, value in _flag_values(_split_words(argv)):
        if flag in _PORT_FLAGS and re.fullmatch(r"\d{1,5}", value):
            found.append(int(value))
        elif flag in _BIND_FLAGS:
            match = re.fullmatch(r"(?:\[[^\]]*\]|[^:/]*):(\d{1,5})", value)
            if match:
                found.append(int(match.group(1)))
    return tuple(found)


def _split_words(argv: Sequence[str]) -> list[str]:
    words: list[str] = []
    for item in argv:
        if " " in item.strip():
            try:
                words.extend(shlex.split(item))
            except ValueError:
                words.extend(item.split())
        else:
            words.append(item)
    return words


def _flag_values(words: Sequence[str]) -> Iterator[tuple[str, str]]:
    for index, word in enumerate(words):
        if word.startswith("--") and "=" in word:
            flag, _, value = word.partition("=")
            yield flag, value
        elif word in _PORT_FLAGS or word in _BIND_FLAGS:
            if index + 1 < len(words):
                yield word, words[index + 1]
        elif len(word) > 2 and word[:2] in ("-p", "-b") and word[2:3] != "-":
            yield word[:2], word[2:]
