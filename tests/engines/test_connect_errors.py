"""grpc/OS failures become builder errors that name the address and the operation."""

from __future__ import annotations

import re

import grpc
import pytest

from builder.engines.buildkit.errors import engine_errors, map_rpc_error
from builder.errors import EngineError, EngineUnavailable, EngineUnsupported, SolveFailed

ADDR = "docker:///x/docker.sock"


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls", "text"),
    [
        (grpc.StatusCode.UNAVAILABLE, EngineUnavailable, "unavailable"),
        (grpc.StatusCode.UNIMPLEMENTED, EngineUnsupported, "does not implement"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, EngineError, "timed out"),
        (grpc.StatusCode.CANCELLED, EngineError, "cancelled"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, EngineError, "too large"),
        (grpc.StatusCode.UNKNOWN, EngineError, r"\(UNKNOWN\)"),
    ],
)
def test_codes_map_to_classes(code: grpc.StatusCode, cls: type[EngineError], text: str) -> None:
    err = map_rpc_error(FakeRpcError(code, "server says no"), address=ADDR, operation="ListWorkers")
    assert type(err) is cls
    assert ADDR in err.message and "server says no" in err.message
    assert re.search(text, err.message)


def test_unavailable_carries_tried_and_hint() -> None:
    err = map_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connect failed"), address=ADDR, operation="Solve")
    assert isinstance(err, EngineUnavailable)
    assert err.tried == (ADDR,)
    assert err.hint is not None and "scripts/engine-up" in err.hint


def test_solve_failures_become_solve_failed() -> None:
    err = map_rpc_error(
        FakeRpcError(grpc.StatusCode.UNKNOWN, 'process "/bin/sh -c false" did not complete successfully: exit code: 1'),
        address=ADDR,
        operation="Solve",
        solve=True,
    )
    assert isinstance(err, SolveFailed)
    assert "exit code: 1" in err.message


def test_os_error_is_unavailable() -> None:
    err = map_rpc_error(ConnectionRefusedError(111, "Connection refused"), address=ADDR, operation="dial")
    assert isinstance(err, EngineUnavailable)
    assert "Connection refused" in err.message


def test_context_manager_chains_the_cause() -> None:
    original = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "gone")
    with pytest.raises(EngineUnavailable) as info, engine_errors(ADDR, "Status"):
        raise original
    assert info.value.__cause__ is original


def test_context_manager_leaves_builder_errors_and_others_alone() -> None:
    with pytest.raises(ValueError), engine_errors(ADDR, "x"):
        raise ValueError("not ours")
    mine = EngineError("already mapped")
    with pytest.raises(EngineError) as info, engine_errors(ADDR, "x"):
        raise mine
    assert info.value is mine
