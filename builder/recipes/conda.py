"""``conda``: py-rattler installs the specs (or the lock) into the prefix (``conda.sh`` + ``conda_installer.py``).

A tools run (:func:`~builder.recipes.tools_mounts.tools_run`) installs py-rattler from wheels pinned by
sha256; this run imports it from that checked, read-only copy.  Channel credentials never reach the
spec: the plan's channel URLs carry none, and the build hands them over as the netrc secret (py-rattler
reads ``NETRC``).
"""

from __future__ import annotations

import json

from builder.plan.model import Step
from builder.recipes.context import RecipeContext
from builder.recipes.script_text import script_file
from builder.recipes.spec import CA_BUNDLE, INDEX_CREDENTIALS, GeneratedFiles, RunSpec, build_secrets
from builder.recipes.tools import DEFAULT_PATH
from builder.recipes.tools_mounts import tools_run

#: Where the spec and the installer are mounted while the step runs.
FILES_DIR = "/run/builder/conda"


def locked_specs(text: str, platform: str) -> list[str]:
    """Every conda package of ``platform`` in a conda-lock file's ``text`` as an exact ``name==version=build`` spec."""
    import yaml

    data = yaml.safe_load(text) or {}
    out = []
    for pkg in data.get("package", []) if isinstance(data, dict) else []:
        if not isinstance(pkg, dict) or pkg.get("manager", "conda") != "conda" or pkg.get("platform") != platform:
            continue
        build = str(pkg.get("url", "")).rsplit("/", 1)[-1].rsplit("-", 1)[-1].split(".")[0]
        exact = f"{pkg['name']}=={pkg['version']}"
        out.append(f"{exact}={build}" if build else exact)
    return out


def recipe(step: Step, ctx: RecipeContext) -> RunSpec:
    inputs = step.inputs
    platform = ctx.conda_platform
    spec = {
        "specs": locked_specs(inputs.lock, platform) if inputs.lock else list(inputs.specs),
        "channels": list(inputs.channels),
        "platform": platform,
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
        caches=inputs.cache_mounts,
        generated=(files,),
        secrets=(CA_BUNDLE, INDEX_CREDENTIALS, *build_secrets(inputs.secrets)),
        env_after=(("PATH", f"{ctx.venv}/bin:{inputs.prefix}/bin:{DEFAULT_PATH}"),),
        label=text,
        command=text,
        tools=tools_run("rattler", ctx.cache_scope, f"{ctx.venv}/bin/python"),
    )
