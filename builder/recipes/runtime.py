"""``runtime``: the files the default runtime's layer holds (the Cortex server), for both lowerings.

The step runs nothing: LLB writes the files with a FileOp, the Dockerfile export ships them in
``.builder/runtime/`` and COPYs them.  The bytes come from ``builder/recipes/scripts`` and must
be the ones the plan's key covers: a plan made by a builder that shipped another server is
refused (make the plan again) rather than built with files its key does not describe.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

from builder.errors import PlanError
from builder.plan.model import Step
from builder.recipes.script_text import script_file


@dataclass(frozen=True, slots=True)
class RuntimeFiles:
    """``files``: ``(absolute path, bytes)`` written with mode 0644 under ``directory``; ``label`` names the write."""

    directory: str
    files: tuple[tuple[str, bytes], ...]
    label: str


def runtime_files(step: Step) -> RuntimeFiles:
    """The files of the runtime ``step``; PlanError when the plan's digest is not the shipped server's."""
    inputs = step.inputs
    name = posixpath.basename(inputs.path)
    data = script_file(name)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if digest != inputs.digest:
        raise PlanError(
            f"the plan's {inputs.name} runtime {inputs.version} ({inputs.digest[:19]}) is not the one this builder "
            f"ships ({digest[:19]})",
            hint="make the plan again with this builder (builder plan / builder build PATH)",
        )
    label = f"{inputs.name} runtime {inputs.version} → {inputs.path}"
    return RuntimeFiles(posixpath.dirname(inputs.path), ((inputs.path, data),), label)
