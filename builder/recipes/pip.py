"""``pip``: the requirement set into the virtualenv with uv or pip (``pip.sh``).

The requirements and constraints files are generated inputs mounted at :data:`FILES_DIR`;
local / ``-e`` requirements read their project files at ``/app`` (the working directory).
With uv, a tools run (:func:`~builder.recipes.tools_mounts.tools_run`) checks uv first; this run,
which builds sdists and local packages, sees only its checked copy, read-only.
With uv, a fully pinned set (decided by the deps layer from each requirement's specifier)
and a uv cache mount, the script runs *offline-first*: it installs the lines it installed
before from the cache alone and asks the index only about new lines, keeping its record of
those lines in ``<uv cache mount>/builder-known``.
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.model import Step
from builder.plan.steps.pip import Inputs as PipInputs
from builder.recipes.context import RecipeContext
from builder.recipes.spec import CA_BUNDLE, INDEX_CREDENTIALS, GeneratedFiles, ProjectFiles, RunSpec, build_secrets
from builder.recipes.tools_mounts import tools_run

#: Where the requirements and constraints files are mounted while the step runs.
FILES_DIR = "/run/builder/pip"
#: The session directory name of files a pip step reads (local / ``-e`` requirements).
LOCAL_SESSION = "pip-local"
#: Folder in the uv cache mount holding the records of requirement lines installed before.
KNOWN_DIR = "builder-known"


@dataclass(frozen=True, slots=True)
class Installer:
    """What differs between the installers (one table instead of branches in every lowering)."""

    label: str
    tools: tuple[str, ...]
    offline_first: bool  # can install known lines from its cache without the index


INSTALLERS = {
    "uv": Installer("uv pip", ("uv",), offline_first=True),
    "pip": Installer("pip", (), offline_first=False),
}


def mode_args(inputs: PipInputs) -> tuple[str, ...]:
    """``offline-first RECORD_DIR`` when the set allows it (see the module docstring), else ``online``."""
    mounts = inputs.cache_mounts
    if INSTALLERS[inputs.installer].offline_first and mounts and inputs.pinned:
        return ("offline-first", f"{mounts[0].target}/{KNOWN_DIR}")
    return ("online",)


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    installer = INSTALLERS[inputs.installer]
    files = GeneratedFiles(
        FILES_DIR,
        "pip",
        (
            ("requirements.txt", inputs.requirements_txt.encode("utf-8")),
            ("constraints.txt", inputs.constraints_txt.encode("utf-8")),
        ),
        "requirements.txt",
    )
    project = None
    if inputs.local is not None:
        project = ProjectFiles(inputs.local.dest, LOCAL_SESSION, inputs.local.manifest)
    text = f"{installer.label} install -r requirements.txt"
    return RunSpec(
        kind=step.id,
        # With build secrets the script first reads the index settings they may hold (pip_secrets.sh).
        script="pip_secrets.sh" if inputs.secrets else "pip.sh",
        arg0="pip",
        args=(
            inputs.installer,
            inputs.venv,
            f"{FILES_DIR}/requirements.txt",
            f"{FILES_DIR}/constraints.txt",
            *mode_args(inputs),
        ),
        caches=inputs.cache_mounts,
        generated=(files,),
        project=project,
        secrets=(CA_BUNDLE, INDEX_CREDENTIALS, *build_secrets(inputs.secrets)),
        workdir=project.target if project is not None else None,
        label=text,
        command=text,
        tools=tools_run(installer.tools[0], ctx.cache_scope, f"{inputs.venv}/bin/python") if installer.tools else None,
    )
