"""builder.engine_connection connects to the engine in the background while it plans; the result or error comes back intact."""

from __future__ import annotations

import threading

import pytest

from builder.engine_connection import EngineConnection
from builder.engines import buildkit
from builder.errors import EngineUnavailable


class FakeClient:
    def __init__(self, fail_caps: bool) -> None:
        self.fail_caps = fail_caps
        self.probed = threading.Event()

    @property
    def capabilities(self) -> object:
        self.probed.set()
        if self.fail_caps:
            raise RuntimeError("probe failed")
        return object()


class FakeEngine:
    def __init__(self, fail_caps: bool = False) -> None:
        self.client = FakeClient(fail_caps)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def _patch(monkeypatch: pytest.MonkeyPatch, make: object) -> None:
    monkeypatch.setattr(
        buildkit.BuildKitEngine, "connect", classmethod(lambda cls, address, **_connection: make(address))
    )


def test_engine_is_connected_and_probed_then_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeEngine] = []
    _patch(monkeypatch, lambda address: made.append(FakeEngine()) or made[-1])
    with EngineConnection("docker://x") as connecting:
        engine = connecting.engine()
    assert engine is made[0] and engine.client.probed.is_set()
    assert engine.closed == 0  # the caller owns it once taken


def test_connect_error_is_raised_in_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(address: str) -> FakeEngine:
        raise EngineUnavailable(f"no engine at {address}", tried=(address,))

    _patch(monkeypatch, fail)
    with EngineConnection("docker://gone") as connecting, pytest.raises(EngineUnavailable, match="gone"):
        connecting.engine()


def test_a_failed_capability_probe_is_left_for_the_build_to_report(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch(monkeypatch, lambda address: FakeEngine(fail_caps=True))
    with EngineConnection(None) as connecting:
        engine = connecting.engine()
    assert engine.client.probed.is_set() and engine.closed == 0


def test_connection_not_taken_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    made: list[FakeEngine] = []

    def slow(address: str) -> FakeEngine:
        release.wait(5)
        made.append(FakeEngine())
        return made[-1]

    _patch(monkeypatch, slow)
    with EngineConnection(None) as connecting:
        pass  # planning failed before the build asked for the engine
    release.set()
    connecting.join(5)
    assert made and made[0].closed == 1

    made.clear()
    _patch(monkeypatch, lambda address: made.append(FakeEngine()) or made[-1])
    with EngineConnection(None) as connecting:
        connecting.join(5)
    assert made[0].closed == 1
