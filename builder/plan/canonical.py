"""Canonical bytes: the only encoding step keys hash.

Rules (so equal data always gives equal bytes, on any machine and any
``PYTHONHASHSEED``): maps are written with sorted keys; values are typed JSON
(``1`` vs ``"1"`` vs ``true`` differ); floats are written in one fixed format
under a type tag (never ``repr``); NaN/infinity are refused; tuples and lists
keep their order (callers sort sets before they get here); a
:class:`~builder.plan.model.FileManifest` is written as its Merkle digest.
No ``repr()``, no ``hash()``.

>>> canonical_bytes({"b": 1, "a": [True, None, "x"]})
b'{"a":[true,null,"x"],"b":1}'
>>> canonical_bytes({"cpu": 4.0})
b'{"cpu":{"$float":"4.000000000"}}'
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any

from builder.plan.codec import field_hints, is_pairs, kept_fields
from builder.plan.model import FileManifest


def canonical_bytes(value: Any) -> bytes:
    """UTF-8 bytes of the canonical form of ``value`` (dataclasses, maps, lists, scalars)."""
    tree = _prepare(value)
    return json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _prepare(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite floats have no canonical form")
        return {"$float": format(value, ".9f")}
    if isinstance(value, FileManifest):
        return {"$manifest": value.digest}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # ``key_json`` (when a type has one) is what its key covers, if that differs from its JSON form.
        to_json = getattr(value, "key_json", None) or getattr(value, "to_json", None)
        if to_json is not None:
            return _prepare(to_json())
        return _prepare_dataclass(value)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("canonical maps need string keys")
        return {k: _prepare(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_prepare(v) for v in value]
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _prepare_dataclass(value: Any) -> Any:
    hints = field_hints(type(value))  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for f in kept_fields(value):
        raw = getattr(value, f.name)
        out[f.name] = _prepare(dict(raw) if is_pairs(hints[f.name]) else raw)
    return out
