"""Run one solve on the engine: Control.Solve (or the gateway route) with the Status stream alongside.

Two request shapes (see :mod:`builder.engines.buildkit.export`):

* ``direct``: ``Control/Solve`` carries the Definition and exporters;
* ``gateway`` (dockerd): ``Control/Solve`` with no Definition holds the
  exporter; ``LLBBridge/Solve`` builds the Definition and ``LLBBridge/Return``
  hands back the result with ``containerimage.config`` in its metadata, the
  only way image config reaches dockerd's image store (wire sheet §3.2).

``Status`` starts right after Solve (the daemon waits ~3 s for the job).
Ctrl-C or the timeout cancels the RPCs, which cancels the build on the
engine; a failed step raises :class:`~builder.errors.SolveFailed` with the
step id, its command and its last 50 log lines.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import grpc

from builder.engines.buildkit._pb import control_pb2, gateway_pb2, rpc_status_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.errors import map_rpc_error, rpc_code, rpc_details
from builder.engines.buildkit.export import ExportPlan
from builder.engines.buildkit.llb import Definition
from builder.engines.buildkit.progress import ProgressTracker
from builder.errors import EngineError, SolveFailed, StepFailure

BUILD_ID_KEY = "buildkit-controlapi-buildid"
_POLL = 0.2
_BRIDGE_WAIT = 20.0


@dataclass(frozen=True, slots=True)
class SolveSpec:
    """Everything one solve sends."""

    definition: Definition
    export: ExportPlan
    session_id: str | None
    entitlements: tuple[str, ...]
    image_config: bytes | None
    timeout: float | None = None
    engine_history: bool = False


def _control_request(
    ref: str, spec: SolveSpec, with_definition: bool
) -> control_pb2.SolveRequest:
    request = control_pb2.SolveRequest(
        Ref=ref,
        Session=spec.session_id or "",
        Entitlements=list(spec.entitlements),
        # An internal build is left out of the engine's build history (older engines ignore the field).
        Internal=not spec.engine_history,
    )
    if with_definition:
        request.Definition.CopyFrom(spec.definition.to_pb())
    exporters = spec.export.exporters
    if spec.export.use_list:
        for e in exporters:
            request.Exporters.add(Type=e.type, Attrs=dict(e.attrs))
    elif exporters:
        request.Exporter = exporters[0].type
        request.ExporterAttrs.update(dict(exporters[0].attrs))
    return request


class _StatusReader:
    """Reads ``Control/Status`` for ``ref`` in a thread, feeding the tracker."""

    def __init__(
        self, client: EngineClient, ref: str, tracker: ProgressTracker
    ) -> None:
        self._call = client.control.Status(control_pb2.StatusRequest(Ref=ref))
        self.tracker = tracker
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="builder-status", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            for response in self._call:
                self.tracker.feed(response)
        except grpc.RpcError as exc:
            if rpc_code(exc) != grpc.StatusCode.CANCELLED:
                self.error = exc
        except Exception as exc:  # noqa: BLE001 - reported by the caller, never lost in a thread
            self.error = exc

    def finish(self, wait: float = 10.0) -> None:
        self._thread.join(wait)
        if self._thread.is_alive():
            self._call.cancel()
            self._thread.join(2.0)
        self.tracker.flush()

    def cancel(self) -> None:
        self._call.cancel()


def _wait(future: Any, deadline: float | None, cancelled: Callable[[], bool]) -> Any:
    """Block on a grpc future while staying responsive to Ctrl-C, the deadline and cancellation."""
    while True:
        try:
            return future.result(timeout=_POLL)
        except grpc.FutureTimeoutError:
            if cancelled() or (deadline is not None and time.monotonic() > deadline):
                future.cancel()
                raise TimeoutError from None


def run_solve(
    client: EngineClient,
    spec: SolveSpec,
    tracker: ProgressTracker,
    cancel: threading.Event | None = None,
) -> dict[str, str]:
    """Solve and export; returns the exporter response. Raises SolveFailed / EngineError."""
    ref = f"builder-{uuid.uuid4().hex}"
    address = str(client.address)
    gateway = spec.export.route == "gateway"
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    is_cancelled = cancel.is_set if cancel is not None else (lambda: False)
    calls: list[Any] = []
    solve = client.control.Solve.future(
        _control_request(ref, spec, with_definition=not gateway)
    )
    calls.append(solve)
    status = _StatusReader(client, ref, tracker)
    try:
        if gateway:
            _gateway(client, ref, spec, calls, deadline, is_cancelled)
        response = _wait(solve, deadline, is_cancelled)
    except TimeoutError as exc:
        _cancel(calls, status)
        if is_cancelled():
            raise SolveFailed(
                "build cancelled; the engine was told to stop the solve"
            ) from exc
        raise SolveFailed(
            f"build timed out after {spec.timeout:g} s; the solve was cancelled on the engine",
            hint="raise --timeout, or find the slow step in the log",
        ) from exc
    except KeyboardInterrupt:
        _cancel(calls, status)
        raise
    except grpc.RpcError as exc:
        status.finish()
        raise _failure(exc, tracker, address) from exc
    status.finish()
    return dict(response.ExporterResponse)


def _cancel(calls: Sequence[Any], status: _StatusReader) -> None:
    for call in calls:
        with suppress(Exception):
            call.cancel()
    status.cancel()
    status.finish(wait=2.0)


def _gateway(
    client: EngineClient,
    ref: str,
    spec: SolveSpec,
    calls: list[Any],
    deadline: float | None,
    cancelled: Callable[[], bool],
) -> None:
    """LLBBridge Solve then Return with the image config (the control Solve is already waiting)."""
    metadata = ((BUILD_ID_KEY, ref),)
    request = gateway_pb2.SolveRequest(
        Definition=spec.definition.to_pb(),
        allowResultReturn=True,
        allowResultArrayRef=True,
    )
    bridge_solve = client.bridge.Solve.future(
        request, metadata=metadata, wait_for_ready=True
    )
    calls.append(bridge_solve)
    try:
        result = _wait(bridge_solve, deadline, cancelled)
    except grpc.RpcError as exc:
        # Hand the error back so the waiting Control/Solve ends with it too.
        error = rpc_status_pb2.Status(code=2, message=rpc_details(exc))
        with suppress(grpc.RpcError):
            client.bridge.Return(
                gateway_pb2.ReturnRequest(error=error),
                metadata=metadata,
                timeout=_BRIDGE_WAIT,
            )
        raise
    ret = gateway_pb2.Result()
    ret.ref.id = result.result.ref.id
    if spec.image_config:
        ret.metadata["containerimage.config"] = spec.image_config
    client.bridge.Return(
        gateway_pb2.ReturnRequest(result=ret), metadata=metadata, timeout=_BRIDGE_WAIT
    )


def _failure(exc: grpc.RpcError, tracker: ProgressTracker, address: str) -> EngineError:
    step, error = tracker.failed_step()
    if step is None:
        mapped = map_rpc_error(exc, address=address, operation="Solve", solve=True)
        return mapped
    command = tracker.converted.command_of(step)
    failure = StepFailure(step.value, command, tracker.tail(step))
    message = f"step {step.value} failed: {error or rpc_details(exc)}"
    return SolveFailed(
        message,
        failure=failure,
        hint=failure_hint((message, *failure.log_tail)),
    )


#: What installers and git print when a server certificate does not verify (e.g. behind an intercepting proxy).
_TLS_FAILURES = (
    "certificate_verify_failed", "certificate verify failed", "unknownissuer", "invalid peer certificate",
    "unable to get local issuer certificate", "self signed certificate in certificate chain",
    "x509: certificate signed by unknown authority", "server certificate verification failed",
    "ssl certificate problem",
)


def failure_hint(lines: tuple[str, ...]) -> str:
    """The hint for a failed step: a TLS verification failure names the CA bundle options.

    >>> failure_hint(("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",))[:40]
    'a server certificate did not verify insi'
    """
    text = "\n".join(lines).lower()
    if any(marker in text for marker in _TLS_FAILURES):
        return ("a server certificate did not verify inside the step (an intercepting proxy or a private index?): "
                "pass the CA bundle with --ca-bundle FILE or set BUILDER_CA_BUNDLE=FILE")
    return "fix the command or dependency named above and build again"
