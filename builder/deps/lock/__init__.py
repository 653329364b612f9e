r"""Locking: turn requirement sets into exact pins, remembering resolutions.

Two back-ends sit behind small Protocols: :mod:`.uv` compiles pip sets with
``uv pip compile``; :mod:`.conda` solves conda sets with conda-lock (when a
conda/mamba/micromamba executable is on PATH) or py-rattler.  Resolutions are
remembered in a :class:`ResolutionStore` keyed by the canonical input, so a
repeated lock does no network work.  ``cache.open_cache(...).resolutions``
implements the store on disk; :class:`MemoryResolutionStore` is the in-memory
stand-in.

>>> store = MemoryResolutionStore()
>>> store.put("k", {"requirements_txt": "six==1.16.0\n"})
>>> store.get("k")
{'requirements_txt': 'six==1.16.0\n'}
"""

from __future__ import annotations

import copy
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ResolutionStore(Protocol):
    """Remembered resolver results: JSON-able dicts under string keys."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key``, or None."""

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON-able dict) under ``key``."""


class MemoryResolutionStore:
    """A ResolutionStore in a dict (tests, and runs without a cache directory)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.gets = 0
        self.hits = 0

    def get(self, key: str) -> dict[str, Any] | None:
        self.gets += 1
        value = self.data.get(key)
        if value is not None:
            self.hits += 1
        return copy.deepcopy(value)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = copy.deepcopy(value)


__all__ = ["MemoryResolutionStore", "ResolutionStore"]
