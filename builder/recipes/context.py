"""Facts about the whole plan that a step's recipe reads (decided once, from the plan's data)."""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.context import VENV
from builder.plan.model import Plan, StepKind

_CONDA_ARCH = {"amd64": "64", "arm64": "aarch64", "386": "32"}
_PLATFORM = "linux/amd64"


@dataclass(frozen=True, slots=True)
class RecipeContext:
    """``platform``: the base step's ``os/arch``; ``venv``: the virtualenv the python step makes;
    ``cache_scope``: the scope of the tools mounts (see :mod:`builder.plan.cache_scope`)."""

    platform: str = _PLATFORM
    venv: str = VENV
    cache_scope: str = ""

    @classmethod
    def of(cls, plan: Plan) -> RecipeContext:
        base, python = plan.get(StepKind.BASE), plan.get(StepKind.PYTHON)
        return cls(
            platform=base.inputs.platform if base is not None else _PLATFORM,
            venv=python.inputs.venv if python is not None else VENV,
            cache_scope=python.inputs.cache_scope if python is not None else "",
        )

    @property
    def conda_platform(self) -> str:
        """The conda subdir of the platform: ``linux/amd64`` → ``linux-64``."""
        os_name, _, arch = self.platform.partition("/")
        arch = arch.split("/")[0]
        return f"{os_name}-{_CONDA_ARCH.get(arch, arch)}"
