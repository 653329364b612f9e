"""A JSON Schema (draft 2020-12) of ``cerebrium.toml``, derived from the option tables.

Editors (e.g. Taplo / Even Better TOML) use it for completion and checking.
It states what a schema can state: types, defaults, enums, ranges, required
keys, endpoint and path patterns, and the ``scaling_buffer`` metric rule.
Unknown keys stay allowed because ``builder validate`` only warns about them;
rules that span sections (``min_replicas <= max_replicas``, the entrypoint's
port) are checked by ``builder validate`` alone.

>>> json_schema()["properties"]["cerebrium"]["required"]
['deployment']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from builder.config import spec

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"

JSON = dict[str, Any]

_NAME_PATTERN = r"^[A-Za-z0-9._-]+$"
_ENDPOINT_PATTERN = r"^(/.*)?$"
# Relative, and not starting by leaving the project directory.
_RELATIVE_PATH_PATTERN = r"^(?![/\\])(?![A-Za-z]:[/\\])(?!\.\.([/\\]|$)).+$"


def json_schema() -> JSON:
    """The whole schema as a JSON-serialisable dict (stable key order)."""
    cerebrium: JSON = {
        "type": "object",
        "description": "Settings read by Cerebrium and by builder.",
        "properties": {
            "deployment": _deployment(),
            "runtime": _runtime(),
            "hardware": _hardware(),
            "scaling": _scaling(),
            "dependencies": _dependencies(),
        },
        "required": ["deployment"],
    }
    return {
        "$schema": SCHEMA_DRAFT,
        "title": "cerebrium.toml",
        "description": "Configuration of a Cerebrium app (build, runtime, hardware, scaling, dependencies).",
        "type": "object",
        "properties": {"cerebrium": cerebrium},
        "required": ["cerebrium"],
    }


def option_schema(option: spec.Option) -> JSON:
    """The schema of one option: type, default, enum and range."""
    schema: JSON = {"description": option.description}
    schema.update(_TYPES[option.kind]())
    if option.default is not None:
        schema["default"] = option.default
    if option.enum is not None:
        schema["enum"] = list(option.enum)
    for key, bound in (
        ("minimum", option.minimum),
        ("maximum", option.maximum),
        ("exclusiveMinimum", option.exclusive_minimum),
    ):
        if bound is not None:
            schema[key] = int(bound) if float(bound).is_integer() else bound
    return schema


def _section(section: spec.Section) -> JSON:
    properties: JSON = {}
    for option in section.options.values():
        properties[option.name] = option_schema(option)
        for alias in option.aliases:
            alias_schema = option_schema(option)
            alias_schema["description"] = f"Alternative spelling of {option.name}. {option.description}"
            properties[alias] = alias_schema
    schema: JSON = {"type": "object", "description": section.description, "properties": properties}
    required = [o.name for o in section.options.values() if o.required]
    if required:
        schema["required"] = required
    return schema


def _deployment() -> JSON:
    schema = _section(spec.DEPLOYMENT)
    schema["properties"]["name"]["pattern"] = _NAME_PATTERN
    schema["properties"]["docker_base_image_url"]["pattern"] = r"^\S+$"
    return schema


def _runtime() -> JSON:
    custom = _section(spec.RUNTIME_CUSTOM)
    for key in ("healthcheck_endpoint", "readycheck_endpoint"):
        custom["properties"][key]["pattern"] = _ENDPOINT_PATTERN
    custom["properties"]["entrypoint"]["minItems"] = 1
    custom["properties"]["dockerfile_path"]["pattern"] = _RELATIVE_PATH_PATTERN
    custom["anyOf"] = [{"required": ["entrypoint"]}, {"required": ["dockerfile_path"]}]
    cortex = {
        "type": "object",
        "description": "Cerebrium's default runtime (also used when no runtime section is given): "
        "the public functions of entrypoint are POST endpoints.",
        "properties": {
            "entrypoint": {
                "type": "string",
                "pattern": r"^[A-Za-z_][A-Za-z0-9_]*\.py$",
                "default": "main.py",
                "description": "The .py file at the top of the project whose functions are served.",
            }
        },
    }
    return {
        "type": "object",
        "description": "How the app runs: [cerebrium.runtime.custom] (your own server) or the default runtime "
        "([cerebrium.runtime.cortex], or no section). Other names are partner runtimes that exist "
        "only on Cerebrium.",
        "properties": {"custom": custom, "cortex": cortex},
    }


def _hardware() -> JSON:
    schema = _section(spec.HARDWARE)
    schema["properties"]["gpu"] = {
        "description": "Older spelling of compute.",
        "deprecated": True,
        **_compute(),
    }
    return schema


def _scaling() -> JSON:
    schema = _section(spec.SCALING)
    schema["if"] = {"required": ["scaling_buffer"]}
    schema["then"] = {"properties": {"scaling_metric": {"enum": list(spec.BUFFER_METRICS)}}}
    return schema


def _dependencies() -> JSON:
    properties: JSON = {}
    for section in spec.DEP_TABLES:
        manager = section.path.rpartition(".")[2]
        properties[manager] = {
            "type": "object",
            "description": section.description,
            "additionalProperties": {"type": "string", "description": 'Version: "latest", "==1.0", ">=1.5" …'},
            "propertyNames": {"minLength": 1},
        }
    paths = _section(spec.DEP_PATHS)
    for option in paths["properties"].values():
        option["pattern"] = _RELATIVE_PATH_PATTERN
    properties["paths"] = paths
    return {"type": "object", "description": "Packages to install.", "properties": properties}


def _compute() -> JSON:
    name: JSON = {"anyOf": [{"enum": list(spec.KNOWN_COMPUTE)}, {"type": "string"}]}
    return {"anyOf": [name, {"type": "array", "items": name, "minItems": 1}]}


_TYPES: dict[str, Callable[[], JSON]] = {
    "str": lambda: {"type": "string"},
    "bool": lambda: {"type": "boolean"},
    "int": lambda: {"type": "integer"},
    "float": lambda: {"type": "number"},
    "str_list": lambda: {"type": "array", "items": {"type": "string"}},
    "compute": _compute,
}
