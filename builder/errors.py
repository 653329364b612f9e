"""The one error hierarchy of ``builder``.

Every failure that can reach a user is one of these classes; library code maps
``OSError``, ``tomllib.TOMLDecodeError``, ``grpc.RpcError`` and subprocess
errors to the most specific class in the module that calls them (chained with
``from exc``), so nothing else escapes the public API::

    BuilderError
    ├── ConfigError          bad cerebrium.toml (carries file, key_path, line)
    ├── DependencyError      bad requirement/pkglist/conda files, lock failures
    │   └── LockError        a resolver (uv, conda-lock, rattler) failed
    ├── PlanError            a plan could not be made (file walk, graph)
    ├── CacheError           the step/stat/resolution cache is unusable
    ├── EngineError          anything BuildKit-related
    │   ├── EngineUnavailable    no engine answers at the tried addresses
    │   ├── EngineUnsupported    the engine lacks a feature that was asked for
    │   └── SolveFailed          a build step failed (step id + log tail)
    ├── RegistryError        a container registry refused or failed (names the ``registry``)
    │   ├── RegistryAuthError    the registry refused the credentials or needs some
    │   ├── RegistryUnavailable  the registry cannot be reached
    │   └── ImageNotFound        the registry has no such repository, tag or digest
    └── VerifyFailed         the built app did not become ready in time

The CLI maps each class to an exit code in ``builder.cli.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.diagnostics import Diagnostic


class BuilderError(Exception):
    """Base class of every error ``builder`` raises on purpose."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(BuilderError):
    """The configuration is invalid; ``diagnostics`` lists every problem found."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        line: int | None = None,
        diagnostics: Sequence[Diagnostic] = (),
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.key_path = key_path
        self.line = line
        self.diagnostics = tuple(diagnostics)


class DependencyError(BuilderError):
    """A dependency declaration or file is invalid (names the file/key).

    When several problems were found in one pass, ``diagnostics`` lists them
    all (the message and location are those of the first).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
        diagnostics: Sequence[Diagnostic] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.key_path = key_path
        self.line = line
        self.diagnostics = tuple(diagnostics)

    def as_diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every problem this error stands for, as error diagnostics."""
        if self.diagnostics:
            return self.diagnostics
        return (Diagnostic("error", self.key_path or "", self.message, self.line, self.file, self.hint),)


class LockError(DependencyError):
    """A resolver could not produce a lock."""


class PlanError(BuilderError):
    """A plan could not be made."""


class CacheError(BuilderError):
    """A cache store is unusable."""


class EngineError(BuilderError):
    """A BuildKit engine failed or misbehaved."""


class EngineUnavailable(EngineError):
    """No engine answered; ``tried`` lists the addresses in order."""

    def __init__(self, message: str, *, tried: Sequence[str] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.tried = tuple(tried)


class EngineUnsupported(EngineError):
    """The engine's version lacks a feature the user asked for."""


@dataclass(frozen=True, slots=True)
class StepFailure:
    """Where a build failed: the plan step, its command and its last log lines."""

    step_id: str
    command: str
    log_tail: tuple[str, ...] = field(default=())


class SolveFailed(EngineError):
    """A build step failed on the engine."""

    def __init__(self, message: str, *, failure: StepFailure | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failure = failure
        #: The steps that completed before the failure (``builder.engines.StepOutcome`` values, plan order),
        #: set by the engine; ``builder.api.build`` records them so the next plan predicts them as hits.
        self.completed: tuple[Any, ...] = ()
        #: The engine's description, for the records of ``completed``.
        self.engine: str = ""


class VerifyFailed(BuilderError):
    """The built image did not become ready (timeout or early exit)."""

    def __init__(self, message: str, *, logs: Sequence[str] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.logs = tuple(logs)


class RegistryError(BuilderError):
    """An image registry answered in a way builder cannot use; ``registry`` names it (``host[:port]``)."""

    def __init__(self, message: str, *, registry: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.registry = registry

    @property
    def host(self) -> str:
        """The registry's ``host[:port]`` (the same as ``registry``)."""
        return self.registry


class RegistryAuthError(RegistryError):
    """The registry refused the credentials, or needs some and none were found (exit 6)."""

    def __init__(self, message: str, *, registry: str = "", hint: str | None = None) -> None:
        super().__init__(message, registry=registry, hint=hint or f"run `docker login {registry}`")


class RegistryUnavailable(RegistryError):
    """The registry cannot be reached: connection refused, DNS, TLS (exit 7)."""


class ImageNotFound(RegistryError):
    """The registry has no manifest for the repository and tag (or digest)."""
