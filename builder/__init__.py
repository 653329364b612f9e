"""builder: plan, cache and build cerebrium.toml apps on BuildKit.

The public API is re-exported here; everything else is private.
"""

from builder._version import __version__
from builder.config import LoadResult, load, load_config
from builder.config.model import Config
from builder.diagnostics import Diagnostic
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
    SolveFailed,
    VerifyFailed,
)

__all__ = [
    "BuilderError",
    "CacheError",
    "Config",
    "ConfigError",
    "DependencyError",
    "Diagnostic",
    "EngineError",
    "EngineUnavailable",
    "EngineUnsupported",
    "LoadResult",
    "LockError",
    "PlanError",
    "SolveFailed",
    "VerifyFailed",
    "__version__",
    "load",
    "load_config",
]
