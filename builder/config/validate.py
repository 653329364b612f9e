"""Decoded TOML mapping → :class:`~builder.config.model.Config` + diagnostics.

One function per section; every problem is collected (never the first one
only), each naming its key path and line.  The option tables live in
``builder.config.spec``; single-value checks in ``builder.config.checks``.

>>> config, diags = validate_mapping({"cerebrium": {"deployment": {"name": "x"}}})
>>> config.deployment.name, diags
('x', ())
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.config import spec
from builder.config.checks import entrypoint_ports, relative_path_problem, toml_literal
from builder.config.context import Context
from builder.config.model import (
    Config,
    CortexRuntime,
    Dependencies,
    Deployment,
    Hardware,
    RuntimeCustom,
    Scaling,
    SourceMap,
)
from builder.config.sections import (
    check_unknown_top_level,
    validate_dependencies,
    validate_hardware,
    validate_scaling,
)
from builder.diagnostics import Diagnostic, Diagnostics, did_you_mean

__all__ = ["partner_only_message", "validate_cortex", "validate_deployment", "validate_mapping", "validate_runtime"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def validate_mapping(
    data: Mapping[str, Any],
    *,
    path: Path | None = None,
    text: str = "",
    display: str | None = None,
    lines: Mapping[str, int] | None = None,
) -> tuple[Config | None, tuple[Diagnostic, ...]]:
    """Validate a decoded ``cerebrium.toml``; the config is None iff there is an error.

    ``lines`` maps key paths to lines (``builder.config.lines.key_lines``);
    ``display`` is the file name shown in diagnostics.
    """
    ctx = Context(Diagnostics(file=display), dict(lines or {}))
    check_unknown_top_level(ctx, data)
    root = ctx.table(["cerebrium"], data.get("cerebrium", {}))
    deployment = validate_deployment(ctx, root)
    runtime = validate_runtime(ctx, root)
    cortex = validate_cortex(ctx, root)
    hardware = validate_hardware(ctx, root)
    scaling = validate_scaling(ctx, root)
    dependencies = validate_dependencies(ctx, root)
    diagnostics = ctx.sorted()
    if ctx.diagnostics.has_errors or deployment is None:
        return None, diagnostics
    config_path = path if path is not None else Path("cerebrium.toml").absolute()
    source_map = SourceMap(file=display or str(config_path), lines=tuple(sorted(ctx.lines.items())))
    config = Config(
        path=config_path,
        deployment=deployment,
        runtime=runtime,
        cortex=cortex,
        hardware=hardware or Hardware(),
        scaling=scaling or Scaling(),
        dependencies=dependencies or Dependencies(),
        raw_text=text,
        source_map=source_map,
    )
    return config, diagnostics


# ---------------------------------------------------------------------------
# Section cerebrium.deployment


def validate_deployment(ctx: Context, root: Mapping[str, Any]) -> Deployment | None:
    """``[cerebrium.deployment]``: name is required; the rest has defaults."""
    section = spec.DEPLOYMENT
    base = ["cerebrium", "deployment"]
    table = ctx.table(base, root.get("deployment", {}))
    values = ctx.options(section, base, table, legacy_list_strings=("include", "exclude"))
    ok = True
    name = values.get("name")
    if "name" not in table:
        ctx.error([*base, "name"], "is required", hint='add name = "my-app" under [cerebrium.deployment]')
        ok = False
    elif isinstance(name, str) and (not name or not set(name) <= _NAME_CHARS):
        ctx.error(
            [*base, "name"],
            f"must be a non-empty name of letters, digits, '-', '_' or '.', not {toml_literal(name)}",
        )
        ok = False
    image = values.get("docker_base_image_url")
    if isinstance(image, str) and (not image.strip() or any(c.isspace() for c in image)):
        ctx.error([*base, "docker_base_image_url"], f"must be an image reference, not {toml_literal(image)}")
        ok = False
    for key in ("shell_commands", "pre_build_commands"):
        if key in values:
            values[key] = _drop_blank_commands(ctx, [*base, key], values[key])
    if values.get("include") == ():
        del values["include"]  # the CLI falls back to its default list; an image without code is never meant
        ctx.warning(
            [*base, "include"],
            "is empty; the default include list is used",
            hint='write include = ["*"] (or list the files to ship) to say so explicitly',
        )
    if not ok or ctx.failed(base):
        return None
    return Deployment(**values)


def _drop_blank_commands(ctx: Context, key: list[str], commands: tuple[str, ...]) -> tuple[str, ...]:
    kept = tuple(c for c in commands if c.strip())
    if len(kept) != len(commands):
        ctx.warning(key, "empty commands are ignored", hint=f"remove the empty strings from {key[-1]}")
    return kept


# ---------------------------------------------------------------------------
# Section cerebrium.runtime.*


_PARTNER_HINT = "deploy it with the cerebrium CLI, or describe your own server in [cerebrium.runtime.custom]"


def partner_only_message(name: str) -> str:
    """The error for a runtime or service that only Cerebrium runs (a partner service such as deepgram)."""
    return f"{name!r} is a partner runtime that exists only on Cerebrium: builder cannot build or run it"


def validate_cortex(ctx: Context, root: Mapping[str, Any]) -> CortexRuntime:
    """``[cerebrium.runtime.cortex]``: the default runtime, optionally naming the file whose functions are served."""
    base = ["cerebrium", "runtime", "cortex"]
    runtimes = root.get("runtime", {})
    table = runtimes.get("cortex") if isinstance(runtimes, dict) else None
    if not isinstance(table, dict):
        return CortexRuntime()
    for key in table:
        if key != "entrypoint":
            ctx.warning(
                [*base, key],
                "unknown key; ignored",
                hint="[cerebrium.runtime.cortex] reads only entrypoint (the .py file whose functions are served)",
            )
    entrypoint = table.get("entrypoint", "main.py")
    if (
        not isinstance(entrypoint, str)
        or not entrypoint.endswith(".py")
        or "/" in entrypoint
        or not entrypoint.removesuffix(".py").isidentifier()
    ):
        ctx.error(
            [*base, "entrypoint"],
            f"must be the name of a .py file at the top of the project, not {toml_literal(entrypoint)}",
            hint='write entrypoint = "main.py"',
        )
        return CortexRuntime()
    return CortexRuntime(entrypoint=entrypoint)


def validate_runtime(ctx: Context, root: Mapping[str, Any]) -> RuntimeCustom | None:
    """``[cerebrium.runtime.custom]``; ``cortex`` is the default runtime; other names are partner runtimes (errors)."""
    base = ["cerebrium", "runtime"]
    runtimes = ctx.table(base, root.get("runtime", {}))
    for name, value in runtimes.items():
        if name in ("custom", "cortex"):
            continue
        if isinstance(value, dict):
            guess = did_you_mean(name, ["custom", "cortex"])
            ctx.error(
                [*base, name],
                partner_only_message(name),
                hint=f"did you mean [cerebrium.runtime.{guess}]?" if guess else _PARTNER_HINT,
            )
        else:
            ctx.warning([*base, name], "unknown key; ignored", hint="runtime options go in [cerebrium.runtime.custom]")
    if "custom" in runtimes and isinstance(runtimes.get("cortex"), dict):
        ctx.warning([*base, "cortex"], "[cerebrium.runtime.custom] is set, so the default runtime is not used; ignored")
    if "custom" not in runtimes:
        return None
    custom_path = [*base, "custom"]
    table = ctx.table(custom_path, runtimes["custom"])
    values = ctx.options(spec.RUNTIME_CUSTOM, custom_path, table)
    if "port" not in table:
        ctx.error([*custom_path, "port"], "is required in [cerebrium.runtime.custom]", hint="add port = 8000")
    _check_entrypoint(ctx, custom_path, table, values)
    _check_endpoints(ctx, custom_path, values)
    dockerfile = values.get("dockerfile_path")
    if isinstance(dockerfile, str):
        problem = relative_path_problem(dockerfile)
        if problem:
            ctx.error([*custom_path, "dockerfile_path"], problem)
    if ctx.failed(custom_path):
        return None
    return RuntimeCustom(**values)


def _check_endpoints(ctx: Context, base: list[str], values: Mapping[str, Any]) -> None:
    for key in ("healthcheck_endpoint", "readycheck_endpoint"):
        endpoint = values.get(key)
        if isinstance(endpoint, str) and endpoint and not endpoint.startswith("/"):
            ctx.error(
                [*base, key],
                f'must be empty (TCP check) or an HTTP path starting with "/", not {toml_literal(endpoint)}',
                hint=f'write {key} = "/{endpoint.lstrip("/")}"',
            )


def _check_entrypoint(ctx: Context, base: list[str], table: Mapping[str, Any], values: dict[str, Any]) -> None:
    key = [*base, "entrypoint"]
    entrypoint = values.get("entrypoint")
    if "entrypoint" not in table:
        if "dockerfile_path" not in table:
            ctx.error(
                key,
                "is required unless dockerfile_path is set",
                hint='add entrypoint = ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]',
            )
        return
    if not isinstance(entrypoint, tuple):
        return
    if not entrypoint or not entrypoint[0].strip():
        ctx.error(key, "must start with the program to run", hint='e.g. entrypoint = ["python", "main.py"]')
        return
    port = values.get("port")
    if not isinstance(port, int):
        return
    for named in entrypoint_ports(entrypoint):
        if named != port:
            ctx.error(
                key,
                f"starts the server on port {named} but port = {port}",
                hint="the port in the entrypoint must match port",
            )
            return
