"""builder: plan, cache and build cerebrium.toml apps on BuildKit.

The public API is re-exported here; everything else is private.
"""

from builder._version import __version__
from builder.config import LoadResult, load, load_config
from builder.api import build, diff_git, diff_projects, plan_project
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
from builder.verify import VerifyResult, VerifySettings, verify_image

__all__ = [
    "Analysis",
    "BuilderError",
    "CacheError",
    "CacheMount",
    "Config",
    "ConfigError",
    "DependencyError",
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
    "SolveFailed",
    "Step",
    "StepChange",
    "StepKind",
    "StepRef",
    "StepStatus",
    "VerifyFailed",
    "VerifyResult",
    "VerifySettings",
    "__version__",
    "analyze",
    "build",
    "diff_git",
    "diff_plans",
    "diff_projects",
    "load",
    "load_config",
    "make_plan",
    "plan_project",
    "verify_image",
]
