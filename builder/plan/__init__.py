"""Planning: config → a DAG of build steps with content-addressed keys.

Public pieces (re-exported by ``builder``): :func:`make_plan`, the model
(:class:`Plan`, :class:`Step`, :class:`StepKind`, ...), :func:`analyze`
and :func:`diff_plans`.  This package never imports grpc, protobuf,
diskcache, ``cache`` or ``builder.engines``; persistent state reaches it only
through the Protocols in :mod:`builder.plan.protocols`.
"""

from __future__ import annotations

from builder.plan.analyze import Analysis, StepStatus, analyze
from builder.plan.diff import PlanDiff, StepChange, diff_plans
from builder.plan.keys import KEY_SCHEME_VERSION
from builder.plan.make import make_plan
from builder.plan.model import CacheMount, FileEntry, FileManifest, Plan, Step, StepKind, StepRef

__all__ = [
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
]
