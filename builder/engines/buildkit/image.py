"""The OCI image config of a built plan (``containerimage.config``), as canonical JSON bytes.

Everything comes from the ``config`` step's :class:`~builder.plan.steps.config.ImageConfig`:
Entrypoint/Cmd (without ``[cerebrium.runtime.custom]``: the default runtime's server, serving
``main.py``'s functions from ``/cortex``), ExposedPorts, a curl-free
Healthcheck (a Python one-liner run by the venv's interpreter), WorkingDir,
Env (PATH with the venv first) and Labels (app, plan keys, hardware, scaling).

>>> # image_config(plan)["config"]["Entrypoint"][:2]  →  ['/opt/venv/bin/python', '/opt/builder/runtime/cortex_server.py']
"""

from __future__ import annotations

import json
from typing import Any

from builder.plan.model import Plan, StepKind
from builder.recipes.tools import DEFAULT_PATH

_NS = 1_000_000_000


def image_config(plan: Plan) -> dict[str, Any]:
    """The image config document for ``plan`` (needs a ``config`` step)."""
    step = plan.step(StepKind.CONFIG)
    image = step.inputs.image
    base = plan.get(StepKind.BASE)
    os_, arch = base.inputs.platform.split("/")[:2] if base is not None else ("linux", "amd64")
    path = ":".join((*image.path_prepend, DEFAULT_PATH))
    env = [f"PATH={path}", *(f"{k}={v}" for k, v in image.env if k != "PATH")]
    config: dict[str, Any] = {
        "Env": env,
        "Labels": dict(image.labels),
        "ExposedPorts": {port: {} for port in image.exposed_ports},
    }
    if image.entrypoint is not None:
        config["Entrypoint"] = list(image.entrypoint)
    if image.cmd is not None:
        config["Cmd"] = list(image.cmd)
    if image.working_dir:
        config["WorkingDir"] = image.working_dir
    if image.healthcheck is not None:
        config["Healthcheck"] = healthcheck_config(image.healthcheck)
    return {
        "architecture": arch,
        "os": os_,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }


def image_config_bytes(plan: Plan) -> bytes:
    """:func:`image_config` as canonical JSON bytes (sorted keys, no spaces)."""
    return json.dumps(image_config(plan), sort_keys=True, separators=(",", ":")).encode("utf-8")


def healthcheck_config(hc: Any) -> dict[str, Any]:
    """The OCI image config's ``Healthcheck`` for a plan's HealthCheck (durations in nanoseconds)."""
    return {
        "Test": list(hc.test),
        "Interval": hc.interval_seconds * _NS,
        "Timeout": hc.timeout_seconds * _NS,
        "StartPeriod": hc.start_period_seconds * _NS,
        "Retries": hc.retries,
    }
