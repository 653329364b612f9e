"""Engines execute plans.  :class:`Engine` is the seam; BuildKit is the implementation.

>>> # from builder.engines.buildkit import BuildKitEngine
>>> # result = BuildKitEngine.connect().build(plan, project_dir, BuildOptions(tag="app:dev"))
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from builder.engines.events import EventSink, Mismatch, Prediction
from builder.errors import ConfigError
from builder.plan.cache_specs import CacheSpec
from builder.plan.files_base import FilesChanges
from builder.plan.model import Plan

NetworkMode = Literal["host", "none", "default"]
OutputType = Literal["oci", "tar", "docker"]


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """``--output type=oci,dest=FILE``: a tarball received over the session."""

    type: OutputType
    dest: Path

    @classmethod
    def parse(cls, text: str) -> OutputSpec:
        """Parse ``type=oci,dest=out.tar`` (ValueError naming the problem)."""
        fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
        kind, dest = fields.get("type", ""), fields.get("dest", "")
        if kind not in ("oci", "tar", "docker"):
            raise ValueError(f"--output type must be oci, tar or docker, not {kind!r}")
        if not dest:
            raise ValueError("--output needs dest=FILE")
        return cls(kind, Path(dest))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How to build and where the result goes.

    ``network`` None picks the engine's default (``host`` on dockerd, whose
    local engine runs without a bridge; ``default`` sandbox networking on
    buildkitd).  ``ca_bundle`` is mounted as a secret into install steps.
    ``timeout`` (seconds) cancels the solve on the engine when exceeded.
    ``engine_history`` records the build in the engine's own build history
    (BuildKit >= 0.11: ``docker buildx history``, Docker Desktop's Builds view).
    Off by default: builder keeps its own record of every step, and the engine's
    record (provenance, a copy of the logs, a database write) costs about 10 ms
    of every cached build on dockerd 26.  Engines without a history ignore it.
    """

    tag: str | None = None
    push: bool = False
    output: OutputSpec | None = None
    network: NetworkMode | None = None
    ca_bundle: Path | None = None
    timeout: float | None = None
    predictions: tuple[tuple[str, Prediction], ...] = ()
    merge: bool | None = None  # None: use MergeOp when the engine has it
    engine_history: bool = False
    #: Index credentials as a netrc file, offered to the pip step as a secret (never in a layer, key or log).
    netrc: bytes | None = field(default=None, repr=False)
    #: More secrets the session serves, by id: the user's build secrets (``--secret``, mounted at
    #: /run/secrets/ID where the plan names them) and builder-made ones (ids ``builder-*``) a recipe mounts.
    #: Values stay in memory; see :mod:`builder.engines.build_secrets`.
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    #: Step ids whose commands run again whatever the engine cache holds (``--refresh``; see ConvertOptions).
    rerun: tuple[str, ...] = ()
    #: Shared caches to export to / import from (``--cache-to`` / ``--cache-from``; see builder.plan.cache_specs).
    cache_to: tuple[CacheSpec, ...] = ()
    cache_from: tuple[CacheSpec, ...] = ()
    #: ``lookup(host)`` → registry login or None, for pulls and ``push`` (None: docker's config and helpers).
    credentials: Callable[[str], Any] | None = field(default=None, repr=False, compare=False)
    #: Build the files step as this layer of changes on its base image (``builder.plan.files_base``;
    #: engines without an image store, or with MergeOp, copy the files whole instead).
    files_changes: FilesChanges | None = None
    #: After the build, keep the state right after the files step as this image (a new files base).
    files_base: str | None = None

    def __post_init__(self) -> None:
        # Checked here, before any engine is contacted: -1 cancelled at once, 0/nan/inf meant no timeout.
        if self.timeout is not None and not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(
                f"{self.timeout:g} is not a positive number of seconds",
                key_path="--timeout",
                hint="give the build's time limit in seconds, e.g. --timeout 1800",
            )


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened to one plan step in a build."""

    step: str
    key: str
    vertex: str
    cached: bool
    seconds: float
    predicted: Prediction | None
    size_bytes: int = 0  # bytes the step's layer added on the engine (0 when cached or unknown)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """The outcome of a successful build."""

    image: str | None
    image_id: str | None
    steps: tuple[StepOutcome, ...]
    mismatches: tuple[Mismatch, ...]
    seconds: float
    engine: str
    exporter_response: tuple[tuple[str, str], ...] = field(default=())
    #: What the user should know about the build (e.g. a ``--cache-from type=local`` with no cache yet).
    notes: tuple[str, ...] = ()
    #: ``REPOSITORY@DIGEST`` pushed with ``push`` (the tag when the engine did not say the digest).
    pushed: str | None = None

    def step(self, step_id: str) -> StepOutcome:
        for s in self.steps:
            if s.step == step_id:
                return s
        raise KeyError(step_id)


class Engine(Protocol):
    """Something that executes a plan into an image."""

    def build(
        self,
        plan: Plan,
        project_dir: str | os.PathLike[str],
        options: BuildOptions,
        on_event: EventSink | None = None,
    ) -> BuildResult:
        """Build ``plan`` from the files under ``project_dir``; raise SolveFailed/EngineError on failure."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


__all__ = [
    "BuildOptions",
    "BuildResult",
    "Engine",
    "NetworkMode",
    "OutputSpec",
    "StepOutcome",
]
