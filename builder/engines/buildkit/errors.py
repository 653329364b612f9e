"""Translate transport failures (``grpc.RpcError``, ``OSError``) into builder's engine errors.

Every call into the engine runs inside :func:`engine_errors`, so callers only ever see
``EngineUnavailable`` (nothing answers), ``EngineUnsupported`` (the engine lacks the
method), ``SolveFailed`` (a build failed) or ``EngineError`` (anything else), with the
address and the operation in the message and the original exception chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from builder.engines.buildkit.address import START_HINT
from builder.errors import EngineError, EngineUnavailable, EngineUnsupported, SolveFailed

_UNAVAILABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})
# code → (what happened, hint) for failures that are neither "unreachable" nor a build failure.
_PLAIN: dict[grpc.StatusCode, tuple[str, str | None]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: ("timed out", None),
    grpc.StatusCode.CANCELLED: ("was cancelled", None),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (
        "failed, message too large",
        "dockerd accepts at most 4 MiB per gRPC message; the build definition is too big",
    ),
}


def rpc_code(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of an ``RpcError`` (None for other exceptions)."""
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:  # a broken error object has no code
            return None
        return value if isinstance(value, grpc.StatusCode) else None
    return None


def rpc_details(exc: BaseException) -> str:
    """The server's message of an ``RpcError``, or the exception text."""
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:
            text = None
        if text:
            return str(text)
    return str(exc) or type(exc).__name__


def map_rpc_error(exc: BaseException, *, address: str, operation: str, solve: bool = False) -> EngineError:
    """The builder error for a failed engine call (``solve=True`` maps build failures to SolveFailed)."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, OSError):
        return EngineUnavailable(
            f"cannot reach the BuildKit engine at {address} ({operation}): {exc.strerror or exc}",
            tried=(address,),
            hint=START_HINT,
        )
    code = rpc_code(exc)
    details = rpc_details(exc)
    if code in _UNAVAILABLE_CODES:
        return EngineUnavailable(
            f"the BuildKit engine at {address} is unavailable ({operation}): {details}",
            tried=(address,),
            hint=START_HINT,
        )
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return EngineUnsupported(f"the engine at {address} does not implement {operation}: {details}")
    if code in _PLAIN:
        text, hint = _PLAIN[code]
        return EngineError(f"{operation} on {address} {text}: {details}", hint=hint)
    if solve:
        return SolveFailed(f"build failed on {address}: {details}")
    name = code.name if code is not None else type(exc).__name__
    return EngineError(f"{operation} failed on {address} ({name}): {details}")


@contextmanager
def engine_errors(address: str, operation: str, *, solve: bool = False) -> Iterator[None]:
    """Run engine calls; re-raise ``grpc.RpcError``/``OSError`` as builder errors, chained.

    >>> with engine_errors("unix:///run/buildkit/buildkitd.sock", "ListWorkers"):  # doctest: +SKIP
    ...     control.ListWorkers(request)
    """
    try:
        yield
    except (grpc.RpcError, OSError) as exc:
        raise map_rpc_error(exc, address=address, operation=operation, solve=solve) from exc
