"""``runtime``: the server builder provides for apps on Cerebrium's default runtime, in its own layer.

Apps without ``[cerebrium.runtime.custom]`` (and without ``dockerfile_path``) run Cerebrium's
default ("Cortex") runtime: every public function of ``main.py`` is an HTTP endpoint.  builder
provides that server as one standard-library file (``builder/recipes/scripts/cortex_server.py``),
written by a FileOp into :data:`~builder.plan.context.RUNTIME_DIR`, outside the project and
outside the virtualenv, so it never touches the app's dependencies; the image runs it with the
app's own Python (see the ``config`` step).

The step sits after ``pip`` and before ``files``: editing the project (the most frequent change)
never rebuilds it, and it changes only when builder ships another server, which is rare.

Inputs: ``name`` and ``version`` (what the plan shows), ``digest`` (sha256 of the file's
bytes: any change to the server is a new key, so a runtime upgrade is a predicted rebuild)
and ``path`` (where the file is in the image).  The recipe (``builder.recipes.runtime``)
supplies the bytes and refuses a plan whose digest is not the file builder ships.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from builder.plan.context import RUNTIME_DIR, PlanContext
from builder.plan.model import StepKind

KIND = StepKind.RUNTIME
#: The default runtime's server file, in ``builder/recipes/scripts``.
SERVER_FILE = "cortex_server.py"
_VERSION = re.compile(rb'^__version__ = "([^"\n]+)"$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Inputs:
    name: str
    version: str
    digest: str
    path: str


@functools.cache
def server_bytes() -> bytes:
    """The bytes of the server file builder ships (package data, read, never imported)."""
    return resources.files("builder").joinpath("recipes", "scripts", SERVER_FILE).read_bytes()


def server_inputs() -> Inputs:
    """The inputs of the runtime step for the server file this builder ships."""
    data = server_bytes()
    found = _VERSION.search(data)
    version = found.group(1).decode("ascii") if found else "unversioned"
    return Inputs("cortex", version, "sha256:" + hashlib.sha256(data).hexdigest(), f"{RUNTIME_DIR}/{SERVER_FILE}")


def inputs(ctx: PlanContext) -> Inputs | None:
    if ctx.dockerfile_mode or ctx.config.default_runtime is None:
        return None
    return server_inputs()


def summary(value: Inputs) -> str:
    return f"{value.name} {value.version} ({value.digest[:19]}) → {value.path}"
