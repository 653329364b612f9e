"""``conda``: py-rattler installs the specs (or the lock) into the prefix (``conda.sh`` + ``conda_installer.py``)."""

from __future__ import annotations

import json

from builder.plan.model import Step
from builder.recipes.context import RecipeContext
from builder.recipes.script_text import script_file
from builder.recipes.spec import CA_BUNDLE, GeneratedFiles, RunSpec, build_secrets
from builder.recipes.tools import DEFAULT_PATH
from builder.recipes.tools_mounts import tools_mount

#: Where the spec and the installer are mounted while the step runs.
FILES_DIR = "/run/builder/conda"


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    spec = {
        "specs": list(inputs.specs),
        "channels": list(inputs.channels),
        "lock": inputs.lock,
        "platform": ctx.conda_platform,
        "cache": inputs.cache_mounts[0].target if inputs.cache_mounts else "",
    }
    files = GeneratedFiles(
        FILES_DIR,
        "conda",
        (
            ("spec.json", json.dumps(spec, sort_keys=True, indent=1).encode("utf-8")),
            ("install.py", script_file("conda_installer.py")),
        ),
        "conda spec",
    )
    text = "conda install " + " ".join(inputs.specs) + (" (locked)" if inputs.lock else "")
    return RunSpec(
        kind=step.id,
        script="conda.sh",
        arg0="conda",
        args=(inputs.prefix, f"{FILES_DIR}/spec.json", f"{FILES_DIR}/install.py", ctx.venv),
        caches=(tools_mount("rattler", ctx.cache_scope), *inputs.cache_mounts),
        generated=(files,),
        secrets=(CA_BUNDLE, *build_secrets(inputs.secrets)),
        env_after=(("PATH", f"{ctx.venv}/bin:{inputs.prefix}/bin:{DEFAULT_PATH}"),),
        label=text,
        command=text,
    )
