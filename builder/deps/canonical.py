"""Canonical bytes and digests of requirement sets.

The plan hashes these bytes into step keys, and locks record their digest,
so they must not depend on dict order, hash seeds or ``repr``: JSON with
sorted keys, no whitespace, UTF-8.

>>> canonical_bytes({"b": 1, "a": [2, 1]})
b'{"a":[2,1],"b":1}'
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol


class HasCanonical(Protocol):
    def canonical(self) -> dict[str, Any]: ...


def canonical_bytes(value: HasCanonical | dict[str, Any] | list[Any] | str | None) -> bytes:
    """Deterministic bytes of a set (via ``canonical()``) or of plain JSON data."""
    data = value.canonical() if value is not None and not isinstance(value, (dict, list, str)) else value
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(value: HasCanonical | dict[str, Any] | list[Any] | str | None) -> str:
    """``sha256:<hex>`` of :func:`canonical_bytes`."""
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()
