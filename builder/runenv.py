"""Environment for the app at run time: ``--env KEY=VALUE`` and ``--env-file FILE`` (docker's format).

The values are secrets as far as builder knows: they go into the container's environment and
nowhere else — not into the image, the plan, a step key, the cache or any message. Errors name
the file and line or the flag, never the value.

An env file holds one ``KEY=VALUE`` per line; lines starting with ``#`` and blank lines are
skipped; a bare ``KEY`` takes its value from the caller's environment (and is left out when the
caller has none). As in docker, nothing is unquoted: the value is everything after the first ``=``.

>>> parse_env_lines(["# keys", "A=1", "B= two words", "HOME"], environ={"HOME": "/root"})
{'A': '1', 'B': ' two words', 'HOME': '/root'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from builder.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


class RunEnv(dict[str, str]):
    """Name → value for the container; its repr shows the names only, never a value."""

    def __repr__(self) -> str:
        return f"RunEnv({sorted(self)})"

    def container_env(self) -> list[str]:
        """The Engine API's ``Env`` list (``KEY=VALUE``), in a stable order."""
        return [f"{k}={v}" for k, v in sorted(self.items())]


def _check_name(name: str, where: str) -> None:
    if not _NAME.match(name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ConfigError(
            f"{shown!r} is not an environment variable name",
            key_path=where,
            hint="names are letters, digits and _ (not starting with a digit)",
        )


def parse_env_lines(
    lines: Iterable[str], *, environ: Mapping[str, str] | None = None, file: str = "<env>"
) -> dict[str, str]:
    """Parse env-file lines into name → value (later lines win)."""
    source = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.lstrip()
        if not sep:
            name = name.strip()
        where = f"{file}:{number}"
        if not name:
            raise ConfigError(
                "a line with no variable name",
                file=file,
                line=number,
                hint="write KEY=VALUE, or a bare KEY to pass the caller's value",
            )
        _check_name(name, where)
        if sep:
            values[name] = value
        elif name in source:
            values[name] = source[name]
    return values


def read_env_file(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables in the env file at ``path`` (ConfigError naming the file when unreadable)."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise ConfigError(
            f"{name}: cannot read the env file ({reason})",
            file=name,
            key_path="--env-file",
            hint="pass a file of KEY=VALUE lines",
        ) from None
    return parse_env_lines(text.splitlines(), environ=environ, file=name)


def resolve_run_env(
    pairs: Sequence[str] = (), files: Sequence[str | os.PathLike[str]] = (), *, environ: Mapping[str, str] | None = None
) -> RunEnv:
    """``--env-file`` files in order, then ``--env`` pairs (which win), as a :class:`RunEnv`."""
    source = os.environ if environ is None else environ
    env = RunEnv()
    for path in files:
        env.update(read_env_file(path, environ=source))
    for pair in pairs:
        name, sep, value = pair.partition("=")
        _check_name(name, "--env")
        if sep:
            env[name] = value
        elif name in source:
            env[name] = source[name]
    return env
