"""Shared shape of the ``pre_build`` and ``shell`` steps: user shell commands.

Inputs: ``commands`` (in order; each is stripped and empty ones dropped),
``shell`` (argv prefix each command is run with) and ``workdir``.  Commands
are the user's shell text by design; they are passed as one argv item to
``/bin/sh -c`` and never interpolated into other strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.context import APP_DIR


@dataclass(frozen=True, slots=True)
class CommandInputs:
    commands: tuple[str, ...]
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    workdir: str = APP_DIR


def make(commands: tuple[str, ...], workdir: str = APP_DIR) -> CommandInputs | None:
    kept = tuple(c.strip() for c in commands if c.strip())
    return CommandInputs(kept, workdir=workdir) if kept else None


def summary(value: CommandInputs) -> str:
    first = value.commands[0]
    first = first if len(first) <= 60 else first[:57] + "..."
    more = f" (+{len(value.commands) - 1} more)" if len(value.commands) > 1 else ""
    return f"$ {first}{more}"
