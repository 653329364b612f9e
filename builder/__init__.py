"""builder: plan, cache and build cerebrium.toml apps on BuildKit.

The public API is re-exported here; everything else is private.  The
re-exports are resolved on first access (PEP 562), so ``python -m builder``
and ``import builder.<submodule>`` do not pay for the whole library.
"""

from __future__ import annotations

from builder._version import __version__

# Not `from typing import TYPE_CHECKING`: importing typing costs ~15 ms on every start of the
# command, even one served by the warm server; type checkers treat this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from builder.api import build, diff_git, diff_projects, plan_project
    from builder.config import LoadResult, load, load_config
    from builder.config.model import Config
    from builder.devloop import DevHandle, dev
    from builder.diagnostics import Diagnostic
    from builder.engines.buildkit.tls import TLSConfig
    from builder.errors import (
        BuilderError,
        CacheError,
        ConfigError,
        DependencyError,
        EngineError,
        EngineUnavailable,
        EngineUnsupported,
        LockError,
        PlanError,
        RegistryAuthError,
        RegistryError,
        RegistryUnavailable,
        SolveFailed,
        VerifyFailed,
    )
    from builder.plan import (
        KEY_SCHEME_VERSION,
        Analysis,
        CacheMount,
        FileEntry,
        FileManifest,
        Plan,
        PlanDiff,
        Step,
        StepChange,
        StepKind,
        StepRef,
        StepStatus,
        analyze,
        diff_plans,
        make_plan,
    )
    from builder.plan.cache_specs import CacheSpec, parse_cache_spec
    from builder.reports import Report, report
    from builder.verify import VerifyResult, VerifySettings, verify_image

# Public name -> the module that defines it (imported on first access).
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("build", "diff_git", "diff_projects", "plan_project"), "builder.api"),
    **dict.fromkeys(("LoadResult", "load", "load_config"), "builder.config"),
    "Config": "builder.config.model",
    "Diagnostic": "builder.diagnostics",
    **dict.fromkeys(
        (
            "BuilderError",
            "CacheError",
            "ConfigError",
            "DependencyError",
            "EngineError",
            "EngineUnavailable",
            "EngineUnsupported",
            "LockError",
            "PlanError",
            "RegistryAuthError",
            "RegistryError",
            "RegistryUnavailable",
            "SolveFailed",
            "VerifyFailed",
        ),
        "builder.errors",
    ),
    **dict.fromkeys(
        (
            "KEY_SCHEME_VERSION",
            "Analysis",
            "CacheMount",
            "FileEntry",
            "FileManifest",
            "Plan",
            "PlanDiff",
            "Step",
            "StepChange",
            "StepKind",
            "StepRef",
            "StepStatus",
            "analyze",
            "diff_plans",
            "make_plan",
        ),
        "builder.plan",
    ),
    **dict.fromkeys(("Report", "report"), "builder.reports"),
    **dict.fromkeys(("VerifyResult", "VerifySettings", "verify_image"), "builder.verify"),
    "TLSConfig": "builder.engines.buildkit.tls",
    **dict.fromkeys(("CacheSpec", "parse_cache_spec"), "builder.plan.cache_specs"),
    **dict.fromkeys(("DevHandle", "dev"), "builder.devloop"),
}

__all__ = [
    "Analysis",
    "BuilderError",
    "CacheError",
    "CacheMount",
    "CacheSpec",
    "Config",
    "ConfigError",
    "DependencyError",
    "DevHandle",
    "Diagnostic",
    "EngineError",
    "EngineUnavailable",
    "EngineUnsupported",
    "FileEntry",
    "FileManifest",
    "KEY_SCHEME_VERSION",
    "LoadResult",
    "LockError",
    "Plan",
    "PlanDiff",
    "PlanError",
    "RegistryAuthError",
    "RegistryError",
    "RegistryUnavailable",
    "Report",
    "SolveFailed",
    "Step",
    "StepChange",
    "StepKind",
    "StepRef",
    "StepStatus",
    "TLSConfig",
    "VerifyFailed",
    "VerifyResult",
    "VerifySettings",
    "__version__",
    "analyze",
    "build",
    "dev",
    "diff_git",
    "diff_plans",
    "diff_projects",
    "load",
    "load_config",
    "make_plan",
    "parse_cache_spec",
    "plan_project",
    "report",
    "verify_image",
]


def __getattr__(name: str) -> Any:
    """Resolve a public re-export on first access and keep it in the module namespace."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'builder' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
