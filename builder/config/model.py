"""Frozen, typed model of ``cerebrium.toml``.

Every section of the reference becomes one dataclass with the documented
defaults.  Values here are already validated (see ``builder.config.validate``);
code downstream never re-checks ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PythonVersion = Literal["3.10", "3.11", "3.12"]
ScalingMetric = Literal["concurrency_utilization", "requests_per_second", "cpu_utilization", "memory_utilization"]
LoadBalancing = Literal["", "round-robin", "first-available", "min-connections", "random-choice-2"]

PYTHON_VERSIONS: tuple[str, ...] = ("3.10", "3.11", "3.12")
DEFAULT_BASE_IMAGE = "debian:bookworm-slim"


@dataclass(frozen=True, slots=True)
class Deployment:
    """``[cerebrium.deployment]``: app name, Python version, file rules, build commands."""

    name: str
    python_version: PythonVersion = "3.12"
    disable_auth: bool = False
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = (".*",)
    shell_commands: tuple[str, ...] = ()
    pre_build_commands: tuple[str, ...] = ()
    docker_base_image_url: str = DEFAULT_BASE_IMAGE
    use_uv: bool = False
    deployment_initialization_timeout: int = 600


@dataclass(frozen=True, slots=True)
class RuntimeCustom:
    """``[cerebrium.runtime.custom]``: the app's own web server."""

    port: int
    entrypoint: tuple[str, ...] = ()
    healthcheck_endpoint: str = ""
    readycheck_endpoint: str = ""
    dockerfile_path: str | None = None


@dataclass(frozen=True, slots=True)
class CortexRuntime:
    """Cerebrium's default runtime (no ``[cerebrium.runtime.custom]``): the public functions of a module are endpoints.

    ``[cerebrium.runtime.cortex]`` may name the file (``entrypoint = "main.py"``); the server
    answers ``/health`` while it lives and ``/ready`` once that module is imported.
    """

    entrypoint: str = "main.py"
    port: int = 8000
    healthcheck_endpoint: str = "/health"
    readycheck_endpoint: str = "/ready"

    @property
    def module(self) -> str:
        """The module the server imports: ``main.py`` → ``main``."""
        return self.entrypoint.removesuffix(".py")


@dataclass(frozen=True, slots=True)
class Hardware:
    """``[cerebrium.hardware]``: resources; affects only the image config, never a layer."""

    cpu: float | None = None
    memory: float | None = None
    compute: tuple[str, ...] = ("CPU",)
    gpu_count: int = 0
    provider: str = "aws"
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class Scaling:
    """``[cerebrium.scaling]``: replica management; affects only the image config."""

    min_replicas: int = 0
    max_replicas: int = 2
    replica_concurrency: int = 10
    response_grace_period: int = 3600
    cooldown: int = 1800
    scaling_metric: ScalingMetric = "concurrency_utilization"
    scaling_target: int = 100
    scaling_buffer: int | None = None
    evaluation_interval: int = 30
    load_balancing: LoadBalancing = ""
    roll_out_duration_seconds: int = 0

    @property
    def effective_load_balancing(self) -> str:
        """The algorithm in force: the explicit one, else the reference's rule."""
        if self.load_balancing:
            return self.load_balancing
        return "round-robin" if self.replica_concurrency > 3 else "first-available"


@dataclass(frozen=True, slots=True)
class DependencyPaths:
    """``[cerebrium.dependencies.paths]``: files relative to the config's directory."""

    pip: str | None = None
    apt: str | None = None
    conda: str | None = None


@dataclass(frozen=True, slots=True)
class Dependencies:
    """``[cerebrium.dependencies]``: inline tables (name -> version string) and paths.

    Inline tables are kept as sorted tuples of (key, value) pairs exactly as
    written (keys not yet normalised); ``builder.deps`` resolves them.
    """

    pip: tuple[tuple[str, str], ...] = ()
    apt: tuple[tuple[str, str], ...] = ()
    conda: tuple[tuple[str, str], ...] = ()
    paths: DependencyPaths = field(default_factory=DependencyPaths)


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Where each key path was written: ``{"cerebrium.deployment.name": 3}``."""

    file: str
    lines: tuple[tuple[str, int], ...] = ()

    def line_of(self, key_path: str) -> int | None:
        """The 1-based line of ``key_path`` (or of its closest written parent)."""
        table = dict(self.lines)
        path = key_path
        while path:
            if path in table:
                return table[path]
            path = path.rpartition(".")[0]
        return None


@dataclass(frozen=True, slots=True)
class Config:
    """A validated ``cerebrium.toml``.

    ``path`` is the file; ``project_dir`` its directory (the root of every
    relative path).  ``raw_text`` is the file's exact bytes decoded as UTF-8,
    used for the config layer.
    """

    path: Path
    deployment: Deployment
    runtime: RuntimeCustom | None = None
    cortex: CortexRuntime = field(default_factory=CortexRuntime)
    hardware: Hardware = field(default_factory=Hardware)
    scaling: Scaling = field(default_factory=Scaling)
    dependencies: Dependencies = field(default_factory=Dependencies)
    raw_text: str = ""
    source_map: SourceMap | None = None

    @property
    def default_runtime(self) -> CortexRuntime | None:
        """The default (Cortex) runtime when the app has no ``[cerebrium.runtime.custom]``, else None."""
        return self.cortex if self.runtime is None else None

    @property
    def port(self) -> int:
        """The port the app serves on."""
        return self.runtime.port if self.runtime is not None else self.cortex.port

    @property
    def endpoints(self) -> tuple[str, str]:
        """``(readycheck, healthcheck)`` endpoints: the custom runtime's (may be empty), else ``/ready``, ``/health``."""
        if self.runtime is not None:
            return self.runtime.readycheck_endpoint, self.runtime.healthcheck_endpoint
        return self.cortex.readycheck_endpoint, self.cortex.healthcheck_endpoint

    @property
    def project_dir(self) -> Path:
        """The directory holding cerebrium.toml: the root of every relative path."""
        return self.path.parent
