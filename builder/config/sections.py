"""Section validators for hardware, scaling and dependencies, and the top level.

Each function reads one section through :class:`~builder.config.context.Context`
(which reports unknown keys and bad values) and adds the rules that span
several options: GPU defaults, replica bounds, ``scaling_buffer`` metrics,
dependency table shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from builder.config import spec
from builder.config.checks import relative_path_problem, toml_literal, toml_type
from builder.config.context import Context
from builder.config.model import Dependencies, DependencyPaths, Hardware, Scaling
from builder.diagnostics import did_you_mean

_CEREBRIUM_SECTIONS = ("deployment", "runtime", "hardware", "scaling", "dependencies")
_DEPENDENCY_TABLES = ("pip", "apt", "conda", "paths")


def check_unknown_top_level(ctx: Context, data: Mapping[str, Any]) -> None:
    """Warn about everything outside the sections builder reads."""
    for key, value in data.items():
        if key == "cerebrium":
            continue
        home = spec.section_for_option(key)
        if home is not None and not isinstance(value, dict):
            ctx.warning([key], "is outside [cerebrium.*]; ignored", hint=f"{key} belongs in {home.header}")
        elif did_you_mean(key.lower(), ["cerebrium"]):
            ctx.warning([key], "unknown section; ignored", hint="did you mean [cerebrium.…]?")
        else:
            ctx.warning([key], "is not part of the cerebrium.toml schema; ignored")
    root = data.get("cerebrium", {})
    if not isinstance(root, dict):
        return
    for key, value in root.items():
        if key in _CEREBRIUM_SECTIONS:
            continue
        if key == spec.PARTNER_SECTION and isinstance(value, dict):
            _partner_section(ctx, key, value)
            continue
        if key in spec.IGNORED_SECTIONS and isinstance(value, dict):
            _ignored_section(ctx, key, value)
            continue
        home = spec.section_for_option(key)
        if home is not None and not isinstance(value, dict):
            ctx.warning(["cerebrium", key], "is not a section; ignored", hint=f"{key} belongs in {home.header}")
            continue
        guess = did_you_mean(key, _CEREBRIUM_SECTIONS)
        ctx.warning(
            ["cerebrium", key],
            "unknown section; ignored",
            hint=f"did you mean [cerebrium.{guess}]?" if guess else None,
        )


def _partner_section(ctx: Context, key: str, table: Mapping[str, Any]) -> None:
    service = table.get("service")
    name = service.get("name") if isinstance(service, dict) else None
    what = f"[cerebrium.{key}] ({name})" if isinstance(name, str) and name else f"[cerebrium.{key}]"
    ctx.error(
        ["cerebrium", key],
        f"{what} configures a partner service that exists only on Cerebrium: builder cannot build or run it",
        hint="deploy it with the cerebrium CLI",
    )


def _ignored_section(ctx: Context, key: str, table: Mapping[str, Any]) -> None:
    reason = spec.IGNORED_SECTIONS[key]
    ctx.warning(["cerebrium", key], f"section {reason}; builder ignores it")
    for name, value in table.items():
        home = spec.section_for_option(name)
        if home is not None and not isinstance(value, dict):
            ctx.warning(
                ["cerebrium", key, name],
                f"is not read from [cerebrium.{key}]; ignored",
                hint=f"{name} belongs in {home.header}",
            )


# ---------------------------------------------------------------------------
# Section cerebrium.hardware


def validate_hardware(ctx: Context, root: Mapping[str, Any]) -> Hardware | None:
    """``[cerebrium.hardware]``: positive resources, known compute, GPU count rules."""
    base = ["cerebrium", "hardware"]
    table = ctx.table(base, root.get("hardware", {}))
    values = ctx.options(spec.HARDWARE, base, table)
    compute_key = "compute" if "compute" in table else "gpu"
    compute = values.get("compute", ("CPU",))
    for item in compute:
        if item in spec.KNOWN_COMPUTE:
            continue
        if item.upper() in spec.KNOWN_COMPUTE:
            ctx.warning(
                [*base, compute_key],
                f'compute types are written in capitals; read {toml_literal(item)} as "{item.upper()}"',
            )
        else:
            ctx.warning([*base, compute_key], f"unknown compute type {toml_literal(item)}", hint=_compute_hint(item))
    if "compute" in values:
        values["compute"] = tuple(item.upper() if item.upper() in spec.KNOWN_COMPUTE else item for item in compute)
        compute = values["compute"]
    gpu = any(item.upper() != "CPU" for item in compute)
    if "gpu_count" not in values and "gpu_count" not in table and gpu:
        values["gpu_count"] = 1
    gpu_count = values.get("gpu_count", 0)
    if not gpu and gpu_count > 0:
        ctx.warning(
            [*base, "gpu_count"],
            f"compute is CPU but gpu_count = {gpu_count}; no GPU is attached",
            hint='set compute to a GPU type (e.g. "AMPERE_A10") or gpu_count = 0',
        )
    elif gpu and "gpu_count" in values and gpu_count == 0:
        ctx.warning([*base, "gpu_count"], "is 0 with a GPU compute type; no GPU is attached")
    if ctx.failed(base):
        return None
    return Hardware(**values)


def _compute_hint(item: str) -> str:
    upper = item.upper()
    suffix = [known for known in spec.KNOWN_COMPUTE if known.endswith("_" + upper)]
    guess = suffix[0] if suffix else did_you_mean(upper, spec.KNOWN_COMPUTE)
    if guess:
        return f'did you mean "{guess}"?'
    return "known types: " + ", ".join(spec.KNOWN_COMPUTE)


# ---------------------------------------------------------------------------
# Section cerebrium.scaling


def validate_scaling(ctx: Context, root: Mapping[str, Any]) -> Scaling | None:
    """``[cerebrium.scaling]``: ranges, ``min <= max`` and the buffer's metric."""
    base = ["cerebrium", "scaling"]
    table = ctx.table(base, root.get("scaling", {}))
    values = ctx.options(spec.SCALING, base, table)
    low, high = values.get("min_replicas", 0), values.get("max_replicas", 2)
    if low > high:
        key = "min_replicas" if "min_replicas" in table else "max_replicas"
        hint = None if "max_replicas" in table else "max_replicas defaults to 2"
        ctx.error([*base, key], f"min_replicas ({low}) is greater than max_replicas ({high})", hint=hint)
    metric = values.get("scaling_metric", "concurrency_utilization")
    if "scaling_buffer" in values and metric not in spec.BUFFER_METRICS:
        ctx.error(
            [*base, "scaling_buffer"],
            f"is only allowed with scaling_metric concurrency_utilization or requests_per_second, not {metric}",
            hint="remove scaling_buffer or change scaling_metric",
        )
    if ctx.failed(base):
        return None
    return Scaling(**values)


# ---------------------------------------------------------------------------
# Section cerebrium.dependencies


def validate_dependencies(ctx: Context, root: Mapping[str, Any]) -> Dependencies | None:
    """``[cerebrium.dependencies.*]``: name -> version string tables and paths."""
    base = ["cerebrium", "dependencies"]
    table = ctx.table(base, root.get("dependencies", {}))
    for key, value in table.items():
        if key not in _DEPENDENCY_TABLES:
            guess = did_you_mean(key, _DEPENDENCY_TABLES)
            what = "section" if isinstance(value, dict) else "key"
            ctx.warning(
                [*base, key],
                f"unknown {what}; ignored",
                hint=f"did you mean [cerebrium.dependencies.{guess}]?" if guess else "use pip, apt, conda or paths",
            )
    tables = {m: _package_table(ctx, [*base, m], table.get(m, {})) for m in ("pip", "apt", "conda")}
    paths = _paths(ctx, [*base, "paths"], table.get("paths", {}))
    if ctx.failed(base):
        return None
    return Dependencies(pip=tables["pip"], apt=tables["apt"], conda=tables["conda"], paths=paths)


def _package_table(ctx: Context, parts: list[str], value: object) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        ctx.error(
            parts,
            "must be a table of name = version strings, not an array",
            hint=f'write [{".".join(parts)}] with lines like numpy = "latest"',
        )
        return ()
    table = ctx.table(parts, value)
    pairs: list[tuple[str, str]] = []
    for name, version in table.items():
        if not name.strip():
            ctx.error([*parts, name], "package name must not be empty")
        elif isinstance(version, str):
            pairs.append((name, version))
        else:
            shown = toml_literal(version) if isinstance(version, int | float | bool) else toml_type(version)
            ctx.error(
                [*parts, name],
                f"version must be a string, not {toml_type(version)}",
                hint=f'write "=={shown}", "latest" or ">=…"' if isinstance(version, int | float) else 'write "latest"',
            )
    return tuple(sorted(pairs))


def _paths(ctx: Context, parts: list[str], value: object) -> DependencyPaths:
    table = ctx.table(parts, value)
    values = ctx.options(spec.DEP_PATHS, parts, table)
    for key, path in list(values.items()):
        problem = relative_path_problem(path)
        if problem:
            ctx.error([*parts, key], problem)
            del values[key]
    return DependencyPaths(**values)
