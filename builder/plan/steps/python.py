"""``python``: the Python interpreter and the virtualenv packages install into.

Inputs: ``version`` ("3.10" | "3.11" | "3.12"), ``strategy``, ``venv`` and ``cache_scope`` (of the
tools and apt cache mounts, see :mod:`builder.plan.cache_scope`).
``strategy="auto"`` tells the engine to use, in order: a ``python<version>``
already in the image; Debian's ``python3`` when its version matches; else
``uv python install <version>`` (which needs network access to uv's Python
download source).  The engine then creates the virtualenv at ``venv``; the
``config`` step puts ``<venv>/bin`` first on PATH.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from builder.plan.context import VENV, PlanContext
from builder.plan.model import StepKind

KIND = StepKind.PYTHON


@dataclass(frozen=True, slots=True)
class Inputs:
    version: str
    strategy: Literal["auto"] = "auto"
    venv: str = VENV
    cache_scope: str = ""  # of the tools mounts every step uses (see builder.plan.cache_scope)


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode:
        return None
    return Inputs(ctx.config.deployment.python_version, cache_scope=ctx.cache_scope)


def summary(value: Inputs) -> str:
    return f"python {value.version} ({value.strategy}) in {value.venv}"
