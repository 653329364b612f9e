"""Errors raised by the session layer (all are :class:`builder.errors.EngineError`)."""

from __future__ import annotations

from builder.errors import EngineError


class SessionError(EngineError):
    """The BuildKit session could not be opened or broke while it ran."""


class TransferError(SessionError):
    """A file transfer (fsutil DiffCopy or FileSend) failed; the message says which side and why."""


class UnsafePathError(TransferError):
    """A path would leave the project (or export) directory, or is not a clean relative path."""
