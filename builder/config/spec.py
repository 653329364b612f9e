"""The option tables of ``cerebrium.toml``: one row per option.

These tables are the single source of truth for what a section may hold:
``builder.config.validate`` checks values against them and
``builder.config.schema`` turns them into a JSON Schema, so the validator and
the editor schema can never disagree about a type, default, range or enum.

>>> SECTIONS["cerebrium.scaling"].options["evaluation_interval"].maximum
300
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from builder.config.model import DEFAULT_BASE_IMAGE, PYTHON_VERSIONS

Kind = Literal["str", "bool", "int", "float", "str_list", "compute"]

SCALING_METRICS: tuple[str, ...] = (
    "concurrency_utilization",
    "requests_per_second",
    "cpu_utilization",
    "memory_utilization",
)
LOAD_BALANCING: tuple[str, ...] = ("", "round-robin", "first-available", "min-connections", "random-choice-2")
# Compute types the platform documents; anything else is only a warning
# because new GPU types appear faster than this list changes.
KNOWN_COMPUTE: tuple[str, ...] = (
    "CPU",
    "TURING_T4",
    "AMPERE_A10",
    "AMPERE_A6000",
    "AMPERE_A100",
    "AMPERE_A100_40GB",
    "AMPERE_A100_80GB",
    "ADA_L4",
    "ADA_L40",
    "HOPPER_H100",
    "HOPPER_H200",
    "BLACKWELL_B200",
)
# Metrics with which ``scaling_buffer`` is meaningful (reference, Scaling).
BUFFER_METRICS: tuple[str, ...] = ("concurrency_utilization", "requests_per_second")


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its TOML type, default, constraints and description."""

    name: str
    kind: Kind
    description: str
    default: object = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    enum: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A TOML table under ``cerebrium``: its options, or a free name->string table."""

    path: str
    description: str
    options: dict[str, Option] = field(default_factory=dict)
    free_table: bool = False  # name -> version string (pip/apt/conda)

    @property
    def header(self) -> str:
        """The TOML table header, e.g. ``[cerebrium.scaling]``."""
        return f"[{self.path}]"


def _section(path: str, description: str, *options: Option) -> Section:
    return Section(path, description, {o.name: o for o in options})


DEPLOYMENT = _section(
    "cerebrium.deployment",
    "Core settings: app name, Python version, file inclusion rules and build commands.",
    Option("name", "str", "Desired app name.", required=True),
    Option("python_version", "str", "Python version to use.", default="3.12", enum=PYTHON_VERSIONS),
    Option("disable_auth", "bool", "Disable default token-based authentication on app endpoints.", default=False),
    Option("include", "str_list", "Files/patterns to include in deployment.", default=["*"]),
    Option("exclude", "str_list", "Files/patterns to exclude from deployment.", default=[".*"]),
    Option("shell_commands", "str_list", "Commands to run at the end of the build.", default=[]),
    Option("pre_build_commands", "str_list", "Commands to run before dependencies install.", default=[]),
    Option("docker_base_image_url", "str", "Base Docker image.", default=DEFAULT_BASE_IMAGE),
    Option("use_uv", "bool", "Use uv instead of pip to install Python dependencies.", default=False),
    Option(
        "deployment_initialization_timeout",
        "int",
        "Max seconds to wait for app initialisation during build (60..830).",
        default=600,
        minimum=60,
        maximum=830,
    ),
)

RUNTIME_CUSTOM = _section(
    "cerebrium.runtime.custom",
    "Custom web server settings and app startup behaviour.",
    Option("port", "int", "Port the application listens on.", required=True, minimum=1, maximum=65535),
    Option(
        "entrypoint",
        "str_list",
        "Command to start the application (required unless dockerfile_path is set).",
        default=[],
    ),
    Option("healthcheck_endpoint", "str", "HTTP path for health checks (empty uses TCP).", default=""),
    Option("readycheck_endpoint", "str", "HTTP path for readiness checks (empty uses TCP).", default=""),
    Option("dockerfile_path", "str", "Build from this Dockerfile (relative to the project) instead."),
)

HARDWARE = _section(
    "cerebrium.hardware",
    "Compute resources: CPU, memory and GPU. Affects the image config only.",
    Option("cpu", "float", "Number of CPU cores.", exclusive_minimum=0),
    Option("memory", "float", "Memory allocation in GB (RAM, not GPU VRAM).", exclusive_minimum=0),
    Option("compute", "compute", "Compute type (CPU, AMPERE_A10, ...), or a list of them.", default="CPU"),
    Option("gpu_count", "int", "Number of GPUs (default 1 when a GPU compute is set).", default=0, minimum=0),
    Option("provider", "str", "Cloud provider.", default="aws"),
    Option("region", "str", "Deployment region.", default="us-east-1"),
)

SCALING = _section(
    "cerebrium.scaling",
    "Auto-scaling behaviour and replica management. Affects the image config only.",
    Option("min_replicas", "int", "Minimum running instances.", default=0, minimum=0),
    Option("max_replicas", "int", "Maximum running instances.", default=2, minimum=0),
    Option("replica_concurrency", "int", "Concurrent requests per replica.", default=10, minimum=1),
    Option("response_grace_period", "int", "Grace period in seconds.", default=3600, minimum=0),
    Option("cooldown", "int", "Seconds at reduced concurrency before scaling down.", default=1800, minimum=0),
    Option(
        "scaling_metric",
        "str",
        "Metric for scaling decisions.",
        default="concurrency_utilization",
        enum=SCALING_METRICS,
    ),
    Option("scaling_target", "int", "Target value for the scaling metric.", default=100, minimum=1),
    Option(
        "scaling_buffer",
        "int",
        "Extra replica capacity (only with concurrency_utilization or requests_per_second).",
        minimum=0,
    ),
    Option(
        "evaluation_interval",
        "int",
        "Seconds over which metrics are evaluated before scaling (6..300).",
        default=30,
        minimum=6,
        maximum=300,
        aliases=("evaluation_interval_seconds",),
    ),
    Option(
        "load_balancing",
        "str",
        "Traffic distribution algorithm; empty selects round-robin if replica_concurrency > 3, else first-available.",
        default="",
        enum=LOAD_BALANCING,
        aliases=("load_balancing_algorithm",),
    ),
    Option(
        "roll_out_duration_seconds",
        "int",
        "Seconds over which traffic moves to a new revision (0..600).",
        default=0,
        minimum=0,
        maximum=600,
    ),
)

DEP_PATHS = _section(
    "cerebrium.dependencies.paths",
    "Dependency files, relative to the directory of cerebrium.toml.",
    Option("pip", "str", "pip requirements file (e.g. requirements.txt)."),
    Option("apt", "str", "apt package list file (e.g. pkglist.txt)."),
    Option("conda", "str", "conda package list file (e.g. conda_pkglist.txt)."),
)

DEP_TABLES: tuple[Section, ...] = tuple(
    Section(f"cerebrium.dependencies.{manager}", f"{label} packages: name = version string.", free_table=True)
    for manager, label in (("pip", "Python (pip)"), ("apt", "System (apt)"), ("conda", "Conda"))
)

SECTIONS: dict[str, Section] = {
    s.path: s for s in (DEPLOYMENT, RUNTIME_CUSTOM, HARDWARE, SCALING, *DEP_TABLES, DEP_PATHS)
}

# ---------------------------------------------------------------------------
# Older schemas: keys and sections real projects still carry.

# Keys of the older CLI's ``[cerebrium.build]`` (and some old ``deployment``
# keys) that only steered that CLI; nothing in a build depends on them.
LEGACY_IGNORED: dict[str, str] = {
    "predict_data": "was used by the older CLI to test the app after deploy",
    "force_rebuild": "was an older CLI flag; builder decides what to rebuild from the cache",
    "hide_public_endpoint": "was an older CLI option",
    "disable_animation": "was an older CLI display option",
    "disable_build_logs": "was an older CLI display option",
    "disable_syntax_check": "was an older CLI option",
    "disable_predict": "was used by the older CLI to skip the test prediction",
    "log_level": "was an older CLI display option",
    "disable_confirmation": "was an older CLI prompt option",
    "cuda_version": "was an older base-image selector; set docker_base_image_url instead",
    "hardware": "was an older spelling of [cerebrium.hardware] compute",
}

# Older spellings that map one-to-one onto a current option.
LEGACY_ALIASES: dict[tuple[str, str], str] = {
    ("cerebrium.hardware", "gpu"): "compute",
}

# Sections from older schemas or other products that builder does not read.
# Keyed by the name under ``cerebrium``; the text completes "section ...".
IGNORED_SECTIONS: dict[str, str] = {
    "build": "is from an older cerebrium CLI",
}

# ``[cerebrium.partner.*]``: a partner service (deepgram, rime, ...) that only Cerebrium runs.
PARTNER_SECTION = "partner"


def section_for_option(name: str) -> Section | None:
    """The current section that defines an option called ``name`` (first match)."""
    for section in SECTIONS.values():
        if name in section.options:
            return section
        if any(name in o.aliases for o in section.options.values()):
            return section
    return None
