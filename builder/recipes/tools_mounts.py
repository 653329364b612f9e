"""Cache mounts several recipes share (apt's caches, the tools folders) and the tools runs that alone write them."""

from __future__ import annotations

from builder.plan.cache_scope import scoped
from builder.plan.model import CacheMount
from builder.plan.steps.apt import CACHE_MOUNTS as APT_CACHES
from builder.recipes.spec import CA_BUNDLE, ToolsRun
from builder.recipes.tools import RATTLER_VERSION, TOOLS_DIR, TOOLS_OUT, UV_VERSION

__all__ = ["APT_CACHES", "tools_mount", "tools_run"]

#: Per tool: the tools-run script and what its vertex/stage is called.
_TOOLS = {
    "uv": ("tools_uv.sh", f"check uv {UV_VERSION} (sha256)"),
    "rattler": ("tools_rattler.sh", f"check py-rattler {RATTLER_VERSION} (sha256)"),
}


def tools_mount(name: str, scope: str) -> CacheMount:
    """The cache mount of tool ``name`` (uv, rattler) at ``TOOLS_DIR/<name>``, one writer at a time, in ``scope``."""
    return scoped((CacheMount(f"{TOOLS_DIR}/{name}", f"builder-tools-{name}", "locked"),), scope)[0]


def tools_run(name: str, scope: str, python: str) -> ToolsRun:
    """The tools run of tool ``name``: checks it in its cache mount with ``python`` (builder's scripts only)
    and leaves a checked copy the step's own run sees read-only at ``TOOLS_DIR/<name>``."""
    script, label = _TOOLS[name]
    output = f"{TOOLS_OUT}/{name}"
    return ToolsRun(
        script=script,
        arg0=f"tools-{name}",
        args=(python, output),
        caches=(tools_mount(name, scope),),
        output=output,
        target=f"{TOOLS_DIR}/{name}",
        secrets=(CA_BUNDLE,),
        label=label,
    )
