"""Cache mounts several recipes share: apt's caches and the tools folders."""

from __future__ import annotations

from builder.plan.cache_scope import scoped
from builder.plan.model import CacheMount
from builder.plan.steps.apt import CACHE_MOUNTS as APT_CACHES
from builder.recipes.tools import TOOLS_DIR

__all__ = ["APT_CACHES", "tools_mount"]


def tools_mount(name: str, scope: str) -> CacheMount:
    """The cache mount of tool ``name`` (uv, rattler) at ``TOOLS_DIR/<name>``, one writer at a time, in ``scope``."""
    return scoped((CacheMount(f"{TOOLS_DIR}/{name}", f"builder-tools-{name}", "locked"),), scope)[0]
