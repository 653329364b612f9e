"""Dataclass ⇄ JSON, driven by type hints (the step-inputs serialisation).

Supported field types: ``str``, ``int``, ``bool``, ``float``, ``None`` unions,
``Literal``, ``StrEnum``, ``tuple[X, ...]``, ``tuple[tuple[str, str], ...]``
(a sorted string map, written as a JSON object), nested dataclasses, and
types with their own ``to_json``/``from_json`` (FileManifest, StepRef).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

#: Field metadata: the field is left out of the JSON (and so of the canonical bytes a key hashes) while it
#: holds its default, so adding such a field to a step's inputs changes no existing key, plan or golden.
OMIT_DEFAULT = MappingProxyType({"omit_default": True})


def kept_fields(value: Any) -> Iterator[dataclasses.Field[Any]]:
    """The fields of dataclass ``value`` that are written (see :data:`OMIT_DEFAULT`)."""
    for f in dataclasses.fields(value):
        if f.metadata.get("omit_default") and getattr(value, f.name) == f.default:
            continue
        yield f


def to_json(value: Any) -> Any:
    """A JSON-able value (dicts, lists, scalars) for ``value``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, enum.Enum) else value
    if hasattr(type(value), "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = field_hints(type(value))
        return {f.name: _field_to_json(getattr(value, f.name), hints[f.name]) for f in kept_fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    raise TypeError(f"cannot serialise {type(value).__name__}")


def from_json(cls: Any, data: Any) -> Any:
    """Rebuild a value of type ``cls`` from :func:`to_json` output."""
    return _decode(cls, data)


def _field_to_json(value: Any, hint: Any) -> Any:
    if is_pairs(hint):
        return {k: v for k, v in value}
    return to_json(value)


def is_pairs(hint: Any) -> bool:
    if typing.get_origin(hint) is not tuple:
        return False
    args = typing.get_args(hint)
    return len(args) == 2 and args[1] is Ellipsis and typing.get_args(args[0]) == (str, str)


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, data: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        return _decode_union(hint, data)
    if origin is typing.Literal:
        if data not in typing.get_args(hint):
            raise ValueError(f"{data!r} is not one of {typing.get_args(hint)}")
        return data
    if is_pairs(hint):
        return tuple(sorted((str(k), str(v)) for k, v in dict(data).items()))
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_decode(item, v) for v in data)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(data)
    if isinstance(hint, type) and hasattr(hint, "from_json"):
        return data if isinstance(data, hint) else hint.from_json(data)  # a value decoded already passes
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, data)
    return _decode_scalar(hint, data)


def _decode_union(hint: Any, data: Any) -> Any:
    args = typing.get_args(hint)
    if data is None and type(None) in args:
        return None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _decode(arg, data)
        except (TypeError, ValueError, KeyError):
            continue
    raise ValueError(f"{data!r} does not match {hint}")


def _decode_dataclass(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}")
    hints = field_hints(cls)
    kwargs = {f.name: _decode(hints[f.name], data[f.name]) for f in dataclasses.fields(cls) if f.name in data}
    return cls(**kwargs)


def _decode_scalar(hint: Any, data: Any) -> Any:
    if hint is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if hint in (str, int, bool) and type(data) is hint:
        return data
    if hint is type(None) and data is None:
        return None
    raise TypeError(f"expected {getattr(hint, '__name__', hint)}, got {type(data).__name__}")
