"""What cerebrium.toml adds to a user Dockerfile's image config (pure; unit-tested).

The frontend's result carries the Dockerfile's own config; :func:`amend_config`
applies the plan's ``config`` step to it: ports and labels merged, Env merged
by name, entrypoint/working dir set only when cerebrium.toml sets them.  The
health check is replaced only when the plan gives one: for a user Dockerfile
the plan gives none, since no probe command can be assumed to exist in an
image builder did not make.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from builder.engines.buildkit.image import healthcheck_config
from builder.plan.model import Plan, StepKind


@dataclass(frozen=True, slots=True)
class ConfigPatch:
    """What cerebrium.toml adds to the Dockerfile's image config (None/empty = keep the Dockerfile's)."""

    exposed_ports: tuple[str, ...] = ()
    healthcheck: Any = None  # builder.plan.steps.config.HealthCheck
    labels: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str | None = None

    @classmethod
    def from_plan(cls, plan: Plan) -> ConfigPatch:
        """The patch from the plan's ``config`` step (empty when the plan has none)."""
        step = plan.get(StepKind.CONFIG)
        if step is None:
            return cls()
        image = step.inputs.image
        return cls(
            tuple(image.exposed_ports),
            image.healthcheck,
            tuple(image.labels),
            tuple(image.env),
            image.entrypoint,
            image.cmd,
            image.working_dir,
        )


def amend_config(document: Mapping[str, Any], patch: ConfigPatch) -> dict[str, Any]:
    """The image config document with ``patch`` applied (pure; the Dockerfile's values stay otherwise).

    Ports and labels are merged (ours win), Env is merged by name (the
    Dockerfile's PATH is kept), the health check is replaced when the patch
    has one, and the entrypoint/cmd/working dir are set only when cerebrium.toml sets them.
    """
    doc: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy of plain JSON
    config = doc.setdefault("config", {})
    if patch.exposed_ports:
        ports = dict(config.get("ExposedPorts") or {})
        ports.update({p: {} for p in patch.exposed_ports})
        config["ExposedPorts"] = ports
    if patch.labels:
        labels = dict(config.get("Labels") or {})
        labels.update(dict(patch.labels))
        config["Labels"] = labels
    if patch.env:
        config["Env"] = _merge_env(config.get("Env") or [], patch.env)
    if patch.healthcheck is not None:
        config["Healthcheck"] = healthcheck_config(patch.healthcheck)
    if patch.entrypoint is not None:
        config["Entrypoint"] = list(patch.entrypoint)
        config["Cmd"] = list(patch.cmd) if patch.cmd is not None else None
    if patch.working_dir:
        config["WorkingDir"] = patch.working_dir
    return doc


def _merge_env(current: list[str], ours: tuple[tuple[str, str], ...]) -> list[str]:
    env = list(current)
    names = [e.partition("=")[0] for e in env]
    for name, value in ours:
        item = f"{name}={value}"
        if name in names:
            env[names.index(name)] = item
        else:
            env.append(item)
            names.append(name)
    return env
