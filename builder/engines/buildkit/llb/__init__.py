"""A small LLB layer: immutable :class:`State`, the ops we emit, and the marshalled :class:`Definition`."""

from builder.engines.buildkit.llb.definition import Definition, digest_of
from builder.engines.buildkit.llb.ops import (
    Copy,
    ExecOp,
    FileOp,
    LLBError,
    MergeOp,
    Mkdir,
    Mkfile,
    Mount,
    Output,
    Platform,
    Rm,
    SourceOp,
)
from builder.engines.buildkit.llb.state import DEFAULT_PATH, State

__all__ = [
    "DEFAULT_PATH",
    "Copy",
    "Definition",
    "ExecOp",
    "FileOp",
    "LLBError",
    "MergeOp",
    "Mkdir",
    "Mkfile",
    "Mount",
    "Output",
    "Platform",
    "Rm",
    "SourceOp",
    "State",
    "digest_of",
]
