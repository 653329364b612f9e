"""Shared shape of the ``pre_build`` and ``shell`` steps: user shell commands.

Inputs: ``commands`` (in order; each is stripped and empty ones dropped),
``script`` (how the list runs) and ``workdir``.  As the Cerebrium CLI does, the
whole list runs as ONE ``bash`` script with ``set -e`` (``script="bash"``), so
``export``, ``cd`` and ``source`` in one command carry over to the next, and the
first failing command stops the step and is named with its position.  Commands
are the user's shell text by design; they reach the build inside a generated
script file, never as part of builder's own scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from builder.plan.context import APP_DIR
from builder.plan.secret_ids import check_plan_ids, secrets_field


@dataclass(frozen=True, slots=True)
class CommandInputs:
    commands: tuple[str, ...]
    script: Literal["bash"] = "bash"
    workdir: str = APP_DIR
    #: Build secret ids mounted at /run/secrets/ID while the step runs (ids only; see builder.plan.secret_ids).
    secrets: tuple[str, ...] = secrets_field()

    def __post_init__(self) -> None:
        check_plan_ids(self.secrets, "commands step")


def make(commands: tuple[str, ...], workdir: str = APP_DIR, secrets: tuple[str, ...] = ()) -> CommandInputs | None:
    kept = tuple(c.strip() for c in commands if c.strip())
    return CommandInputs(kept, workdir=workdir, secrets=secrets) if kept else None


def summary(value: CommandInputs) -> str:
    first = value.commands[0]
    first = first if len(first) <= 60 else first[:57] + "..."
    more = f" (+{len(value.commands) - 1} more)" if len(value.commands) > 1 else ""
    return f"$ {first}{more} [one {value.script} script]"
