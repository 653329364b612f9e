"""``config``: the image configuration plus ``cerebrium.toml`` in its own last layer.

This is the only step that sees the app name, hardware, scaling,
``disable_auth`` and ``deployment_initialization_timeout``: they change
labels and the healthcheck, never a filesystem layer, so two apps with the
same build inputs share every other key.

Inputs:

* ``image`` (:class:`ImageConfig`): ``entrypoint``/``cmd`` (None = keep the
  parent image's), ``exposed_ports`` (``"8000/tcp"``), ``healthcheck``
  (a ``CMD`` probe of ``healthcheck_endpoint`` over HTTP, else a TCP connect
  to the port; ``start_period_seconds`` is ``deployment_initialization_timeout``;
  None for a user Dockerfile, whose image keeps its own),
  ``working_dir``, ``env`` (set over the parent image's Env; ours win),
  ``path_prepend`` (directories put in front of the parent image's PATH:
  the virtualenv and conda prefix) and ``labels``: ``ai.cerebrium.*`` for the
  app, hardware, scaling and endpoints, ``dev.builder.plan.<step>`` = the key
  of each layer step and ``dev.builder.key-scheme``.
* ``toml_path`` / ``toml_text``: the config file, byte for byte (but any ``scheme://user:password@`` in it
  shown as ``scheme://***@``), written as
  the final layer.  Because the file itself ships in the image, *any* edit to
  it (even a comment) changes this key — and only this key.

Default runtime (no ``[cerebrium.runtime.custom]``): the ``runtime`` step's server run by the
virtualenv's Python from ``/cortex`` on port 8000 (``--module`` from
``[cerebrium.runtime.cortex] entrypoint``), an HTTP health check on ``/health``,
and ``/ready`` / ``/health`` in the endpoint labels that ``builder verify`` probes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from builder.config.model import Config
from builder.deps import redact
from builder.errors import ConfigError
from builder.plan.context import CONDA_PREFIX, RUNTIME_DIR, VENV, PlanContext
from builder.plan.keys import KEY_SCHEME_VERSION
from builder.plan.model import StepKind
from builder.plan.steps.runtime import SERVER_FILE

KIND = StepKind.CONFIG
DEFAULT_PORT = 8000


@dataclass(frozen=True, slots=True)
class HealthCheck:
    test: tuple[str, ...]
    interval_seconds: int = 10
    timeout_seconds: int = 5
    start_period_seconds: int = 600
    retries: int = 3


@dataclass(frozen=True, slots=True)
class ImageConfig:
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    exposed_ports: tuple[str, ...]
    healthcheck: HealthCheck | None
    working_dir: str | None
    env: tuple[tuple[str, str], ...]
    path_prepend: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Inputs:
    image: ImageConfig
    toml_path: str
    toml_text: str


def _check_default_main(ctx: PlanContext) -> None:
    """The default runtime serves the functions of ``main.py`` (or ``[cerebrium.runtime.cortex] entrypoint``):
    without that file shipped the image cannot start (the CLI refuses such a project too)."""
    runtime = ctx.config.cortex
    name = runtime.entrypoint
    if ctx.files().manifest.subset((name,)).entries:
        return
    on_disk = (ctx.config.project_dir / name).is_file()
    raise ConfigError(
        f"{name} is excluded by include/exclude, but the default runtime serves its functions"
        if on_disk
        else f"{name} does not exist, but the default runtime serves its functions",
        key_path="cerebrium.deployment.include" if on_disk else "cerebrium.runtime.cortex.entrypoint",
        hint=f"include {name}"
        if on_disk
        else f"add {name}, or set [cerebrium.runtime.custom] entrypoint and port for your own server",
    )


def inputs(ctx: PlanContext) -> Inputs:
    config = ctx.config
    custom = ctx.dockerfile_mode
    runtime = config.runtime
    port = config.port
    if config.default_runtime is not None:
        _check_default_main(ctx)
    python = f"{VENV}/bin/python"
    entrypoint = _entrypoint(ctx, python)
    prepend: tuple[str, ...] = ()
    if not custom:
        prepend = (f"{VENV}/bin", f"{CONDA_PREFIX}/bin") if "conda" in ctx.present else (f"{VENV}/bin",)
    env = (("PYTHONUNBUFFERED", "1"),) if custom else (("PYTHONUNBUFFERED", "1"), ("VIRTUAL_ENV", VENV))
    image = ImageConfig(
        entrypoint=entrypoint,
        cmd=() if entrypoint is not None else None,
        exposed_ports=(f"{port}/tcp",),
        # A user Dockerfile's image may have no Python (or shell, or curl): no probe can be assumed to run
        # in it, so it keeps its own HEALTHCHECK; the endpoints are in the labels for the platform's probes.
        healthcheck=None if custom else _healthcheck(config, port, python),
        working_dir=None if custom and (runtime is None or not runtime.entrypoint) else ctx.app_dir,
        env=tuple(sorted(env)),
        path_prepend=prepend,
        labels=tuple(sorted(_labels(config, ctx.keys).items())),
    )
    # user:password in a URL never reaches the image, the plan or the key (the pip and conda steps get them as a secret)
    return Inputs(image, f"{ctx.app_dir}/{config.path.name}", redact(config.raw_text))


def _entrypoint(ctx: PlanContext, python: str) -> tuple[str, ...] | None:
    """The custom runtime's entrypoint; the default runtime's server; None keeps a user Dockerfile's."""
    config = ctx.config
    if config.runtime is not None:
        return tuple(config.runtime.entrypoint) if config.runtime.entrypoint else None
    server = f"{RUNTIME_DIR}/{SERVER_FILE}"
    return (python, server, "--app-dir", ctx.app_dir, "--port", str(config.port), "--module", config.cortex.module)


def _healthcheck(config: Config, port: int, python: str) -> HealthCheck:
    endpoint = config.endpoints[1]
    if endpoint:
        url = json.dumps(f"http://127.0.0.1:{port}{endpoint}")  # a valid Python string literal
        script = f"import urllib.request as u; u.urlopen({url}, timeout=5)"
    else:
        script = f"import socket; socket.create_connection(('127.0.0.1', {port}), 5).close()"
    start = config.deployment.deployment_initialization_timeout
    return HealthCheck(("CMD", python, "-c", script), start_period_seconds=start)


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and not value.is_integer():
        return format(value, ".6g")
    return str(int(value))


def _labels(config: Config, keys: dict[str, str]) -> dict[str, str]:
    d, hw, sc = config.deployment, config.hardware, config.scaling
    labels = {
        "ai.cerebrium.app": d.name,
        "ai.cerebrium.disable_auth": str(d.disable_auth).lower(),
        "ai.cerebrium.initialization_timeout": str(d.deployment_initialization_timeout),
        "ai.cerebrium.python_version": d.python_version,
        "ai.cerebrium.healthcheck_endpoint": config.endpoints[1],
        "ai.cerebrium.readycheck_endpoint": config.endpoints[0],
        "ai.cerebrium.hardware.cpu": _num(hw.cpu),
        "ai.cerebrium.hardware.memory": _num(hw.memory),
        "ai.cerebrium.hardware.compute": ",".join(hw.compute),
        "ai.cerebrium.hardware.gpu_count": str(hw.gpu_count),
        "ai.cerebrium.hardware.provider": hw.provider,
        "ai.cerebrium.hardware.region": hw.region,
        "dev.builder.key-scheme": str(KEY_SCHEME_VERSION),
    }
    for name in (
        "min_replicas",
        "max_replicas",
        "replica_concurrency",
        "response_grace_period",
        "cooldown",
        "scaling_metric",
        "scaling_target",
        "scaling_buffer",
        "evaluation_interval",
        "roll_out_duration_seconds",
    ):
        value = getattr(sc, name)
        labels[f"ai.cerebrium.scaling.{name}"] = "" if value is None else str(value)
    labels["ai.cerebrium.scaling.load_balancing"] = sc.effective_load_balancing
    labels.update({f"dev.builder.plan.{step}": key for step, key in keys.items()})
    return labels


def summary(value: Inputs) -> str:
    image = value.image
    entry = " ".join(image.entrypoint) if image.entrypoint is not None else "(image default)"
    if image.entrypoint is not None and image.entrypoint[1:2] == (f"{RUNTIME_DIR}/{SERVER_FILE}",):
        entry = f"cortex runtime: {image.entrypoint[-1]}.py's functions from {image.working_dir}"
    return f"{entry}; ports {', '.join(image.exposed_ports)}; + {value.toml_path}"
