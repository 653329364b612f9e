"""BuildKit engine: :class:`BuildKitEngine` builds plans over gRPC (connections, LLB, session, solve)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.engines.buildkit.engine import BuildKitEngine

__all__ = ["BuildKitEngine"]


def __getattr__(
    name: str,
) -> Any:  # lazy: importing a submodule must not pull in the whole engine
    if name == "BuildKitEngine":
        from builder.engines.buildkit.engine import BuildKitEngine

        return BuildKitEngine
    raise AttributeError(name)
