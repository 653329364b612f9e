"""The one solve path: Control.Solve (or the gateway route) with the Status stream alongside.

Plan builds and ``dockerfile_path`` builds both come through here, so
cancellation, the time limit, the bridge calls and failure mapping are
written once.  Two request shapes (see :mod:`builder.engines.buildkit.export`):

* ``direct``: ``Control/Solve`` carries the Definition and exporters;
* ``gateway``: ``Control/Solve`` with no Definition holds the exporter while a
  :data:`BridgeJob` runs ``LLBBridge/Solve`` calls (our LLB, or a frontend
  such as ``dockerfile.v0``) and returns one result, whose metadata carries
  ``containerimage.config`` (on dockerd the only way image config reaches the
  image store, wire sheet §3.2); ``LLBBridge/Return`` hands it back.

``Status`` starts right after Solve (the daemon waits ~3 s for the job).
Ctrl-C, ``cancel`` or the timeout cancels the RPCs, which cancels the build on
the engine; a failed step raises :class:`~builder.errors.SolveFailed` with
what the tracker knows of it (step id, command, last log lines).

>>> # response = solve_in_session(client, SolveRequestSpec(...), tracker, cancel=stop)
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import grpc

from builder.engines.buildkit._pb import control_pb2, gateway_pb2, rpc_status_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.errors import map_rpc_error, rpc_code, rpc_details
from builder.engines.buildkit.export import ExportPlan
from builder.engines.buildkit.failure import FailedStep
from builder.engines.buildkit.llb import Definition
from builder.engines.buildkit.remote_cache import CachePlan, record_local_exports, resolve_local_imports
from builder.engines.buildkit.session import (
    AuthProvider,
    CredentialLookup,
    FileSendProvider,
    FileSyncProvider,
    SecretsProvider,
    Session,
    SyncedDir,
    TarballOutput,
    TransferReport,
)
from builder.engines.buildkit.session.content import ContentStoreProvider, OCILayout
from builder.engines.failure_hints import hint_for
from builder.engines.registry_errors import registry_error
from builder.errors import BuilderError, EngineError, RegistryError, SolveFailed, StepFailure
from builder.registry.credentials import lookup as docker_credentials

BUILD_ID_KEY = "buildkit-controlapi-buildid"
_POLL = 0.2
_BRIDGE_WAIT = 30.0


class SolveTracker(Protocol):
    """Reads the Status stream; the solve path feeds it and asks it which step failed."""

    def feed(self, response: control_pb2.StatusResponse) -> None:
        """Apply one StatusResponse (called from the status thread)."""

    def flush(self) -> None:
        """The stream ended: emit what is still buffered."""

    def failure(self) -> FailedStep | None:
        """The step whose vertex failed, or None when no vertex reported an error."""


class _Quiet:
    """A tracker that reads nothing from a follow-up solve (see ``solve_in_session(then=...)``)."""

    def feed(self, response: control_pb2.StatusResponse) -> None:
        return None

    def flush(self) -> None:
        return None

    def failure(self) -> FailedStep | None:
        return None


class Bridge:
    """``LLBBridge`` calls of one build: its id in the metadata, the build's deadline and cancellation."""

    def __init__(
        self,
        client: EngineClient,
        ref: str,
        deadline: float | None,
        cancelled: Callable[[], bool],
        calls: list[Any],
        cache: CachePlan | None = None,
    ) -> None:
        self._client = client
        self._cache = cache or CachePlan()
        self.metadata = ((BUILD_ID_KEY, ref),)
        self._deadline = deadline
        self._cancelled = cancelled
        self._calls = calls

    def solve(self, request: gateway_pb2.SolveRequest) -> gateway_pb2.Result:
        """One ``LLBBridge/Solve``; its result (raises grpc.RpcError, or TimeoutError when cancelled)."""
        request = with_cache_imports(request, self._cache)
        future = self._client.bridge.Solve.future(request, metadata=self.metadata, wait_for_ready=True)
        self._calls.append(future)
        response = _wait(future, self._deadline, self._cancelled)
        return response.result  # type: ignore[no-any-return]

    def give_back(self, result: gateway_pb2.Result) -> None:
        """``LLBBridge/Return`` the result: the waiting Control/Solve exports it."""
        self._client.bridge.Return(
            gateway_pb2.ReturnRequest(result=result), metadata=self.metadata, timeout=_BRIDGE_WAIT
        )

    def give_up(self, message: str) -> None:
        """``LLBBridge/Return`` an error, so the waiting Control/Solve ends with it too."""
        error = rpc_status_pb2.Status(code=2, message=message)
        with suppress(grpc.RpcError):
            self._client.bridge.Return(
                gateway_pb2.ReturnRequest(error=error), metadata=self.metadata, timeout=_BRIDGE_WAIT
            )


#: The gateway side of a build: LLBBridge solves through ``bridge``, returning the Result to export.
BridgeJob = Callable[[Bridge], gateway_pb2.Result]


def definition_job(definition: Definition, image_config: bytes | None) -> BridgeJob:
    """The plan build's gateway side: solve our Definition, return its ref with the image config."""

    def job(bridge: Bridge) -> gateway_pb2.Result:
        result = bridge.solve(
            gateway_pb2.SolveRequest(Definition=definition.to_pb(), allowResultReturn=True, allowResultArrayRef=True)
        )
        returned = gateway_pb2.Result()
        returned.ref.id = result.ref.id
        if image_config:
            returned.metadata["containerimage.config"] = image_config
        return returned

    return job


@dataclass(frozen=True, slots=True)
class SolveSpec:
    """Everything one solve sends: the Definition (direct route) or the bridge job (gateway route)."""

    export: ExportPlan
    session_id: str | None
    entitlements: tuple[str, ...] = ()
    definition: Definition | None = None
    job: BridgeJob | None = None
    timeout: float | None = None
    engine_history: bool = False

    def __post_init__(self) -> None:
        wanted = "job" if self.export.route == "gateway" else "definition"
        if getattr(self, wanted) is None:
            raise ValueError(f"a {self.export.route} solve needs a {wanted}")


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What the build session serves: ``local://`` directories, the CA bundle, a tarball output."""

    dirs: Mapping[str, SyncedDir] = field(default_factory=dict)
    ca_bundle: str | os.PathLike[str] | None = None
    network: str | None = None
    #: More secrets by id (e.g. index credentials as a netrc); never printed.
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    #: Registry logins the Auth service hands the engine (None: docker's config and credential helpers).
    credentials: CredentialLookup | None = field(default=None, repr=False)
    #: Registry hosts the build talks to (base image, push target): named in registry errors.
    registries: tuple[str, ...] = ()


def _control_request(ref: str, spec: SolveSpec) -> control_pb2.SolveRequest:
    request = control_pb2.SolveRequest(
        Ref=ref,
        Session=spec.session_id or "",
        Entitlements=list(spec.entitlements),
        # An internal build is left out of the engine's build history (older engines ignore the field).
        Internal=not spec.engine_history,
    )
    if spec.export.route == "direct" and spec.definition is not None:
        request.Definition.CopyFrom(spec.definition.to_pb())
    exporters = spec.export.exporters
    if spec.export.use_list:
        for e in exporters:
            request.Exporters.add(Type=e.type, Attrs=dict(e.attrs))
    elif exporters:
        request.Exporter = exporters[0].type
        request.ExporterAttrs.update(dict(exporters[0].attrs))
    add_cache_entries(request.Cache, spec.export.cache)
    return request


def add_cache_entries(options: control_pb2.CacheOptions, cache: CachePlan) -> None:
    """``--cache-to`` / ``--cache-from`` as ``CacheOptions.Exports`` / ``Imports`` (BuildKit >= 0.8 reads both)."""
    for entry in cache.exports:
        options.Exports.add(Type=entry.type, Attrs=dict(entry.attrs))
    for entry in cache.imports:
        options.Imports.add(Type=entry.type, Attrs=dict(entry.attrs))


def with_cache_imports(request: gateway_pb2.SolveRequest, cache: CachePlan) -> gateway_pb2.SolveRequest:
    """An ``LLBBridge/Solve`` that may use the build's cache imports: ``CacheImports`` beside a
    Definition, the ``cache-imports`` option for a frontend (dockerfile.v0 reads it)."""
    if not cache.imports:
        return request
    if request.Frontend:
        request.FrontendOpt["cache-imports"] = cache.imports_json()
    else:
        for entry in cache.imports:
            request.CacheImports.add(Type=entry.type, Attrs=dict(entry.attrs))
    return request


class _StatusReader:
    """Reads ``Control/Status`` for ``ref`` in a thread, feeding the tracker."""

    def __init__(self, client: EngineClient, ref: str, tracker: SolveTracker) -> None:
        self._call = client.control.Status(control_pb2.StatusRequest(Ref=ref))
        self.tracker = tracker
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="builder-status", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for response in self._call:
                self.tracker.feed(response)
        except grpc.RpcError as exc:
            if rpc_code(exc) != grpc.StatusCode.CANCELLED:
                self.error = exc
        except Exception as exc:
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
    tracker: SolveTracker,
    cancel: threading.Event | None = None,
) -> dict[str, str]:
    """Solve and export; returns the exporter response. Raises SolveFailed / EngineError."""
    ref = f"builder-{uuid.uuid4().hex}"
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    is_cancelled = cancel.is_set if cancel is not None else (lambda: False)
    calls: list[Any] = []
    solve = client.control.Solve.future(_control_request(ref, spec))
    calls.append(solve)
    status = _StatusReader(client, ref, tracker)
    try:
        if spec.export.route == "gateway":
            assert spec.job is not None  # SolveSpec checks it
            _gateway(spec.job, Bridge(client, ref, deadline, is_cancelled, calls, spec.export.cache))
        response = _wait(solve, deadline, is_cancelled)
    except TimeoutError as exc:
        _cancel(calls, status)
        if is_cancelled():
            raise SolveFailed("build cancelled; the engine was told to stop the solve") from exc
        raise SolveFailed(
            f"build timed out after {spec.timeout:g} s; the solve was cancelled on the engine",
            hint="raise --timeout, or find the slow step in the log",
        ) from exc
    except grpc.RpcError as exc:
        status.finish()
        raise _failure(exc, tracker, str(client.address)) from exc
    except BaseException:  # Ctrl-C, or an EngineError of the bridge job: stop the build on the engine
        _cancel(calls, status)
        raise
    status.finish()
    return dict(response.ExporterResponse)


def _cancel(calls: Sequence[Any], status: _StatusReader) -> None:
    for call in calls:
        with suppress(Exception):
            call.cancel()
    status.cancel()
    status.finish(wait=2.0)


def _gateway(job: BridgeJob, bridge: Bridge) -> None:
    """Run the bridge job, then Return its result (or its error; the control Solve is already waiting)."""
    try:
        result = job(bridge)
    except grpc.RpcError as exc:
        bridge.give_up(rpc_details(exc))
        raise
    except EngineError as exc:
        bridge.give_up(exc.message)
        raise
    bridge.give_back(result)


def _failure(exc: grpc.RpcError, tracker: SolveTracker, address: str) -> EngineError:
    failed = tracker.failure()
    if failed is None:
        return map_rpc_error(exc, address=address, operation="Solve", solve=True)
    return SolveFailed(
        f"step {failed.step} failed: {failed.error or rpc_details(exc)}",
        failure=StepFailure(failed.step, failed.command, failed.tail),
        hint=failure_hint((failed.error, *failed.tail), default=failed.hint),
    )


@dataclass(frozen=True, slots=True)
class Solved:
    """A finished solve: the exporter response and what each DiffCopy call transferred."""

    response: dict[str, str]
    transfers: tuple[TransferReport, ...]
    #: What the user should know about the solve (e.g. a local cache import with nothing to import yet).
    notes: tuple[str, ...] = ()


def solve_in_session(
    client: EngineClient,
    session: SessionSpec,
    export: ExportPlan,
    tracker: SolveTracker,
    *,
    definition: Definition | None = None,
    job: BridgeJob | None = None,
    timeout: float | None = None,
    engine_history: bool = False,
    cancel: threading.Event | None = None,
    then: Sequence[tuple[Definition, ExportPlan]] = (),
) -> Solved:
    """Open the build session (files, CA secret, tarball receiver), run :func:`run_solve` in it.

    ``then``: more (definition, export) solves run in the same session after the build, quietly
    (their vertices are the build's, so cached: same session, no second sync of its files); one
    that fails is left out (the build itself succeeded).
    """
    files = FileSyncProvider(session.dirs)
    attachables: list[object] = [files]
    if session.ca_bundle is not None:
        attachables.append(SecretsProvider.with_ca_bundle(session.ca_bundle, extra=session.secrets))
    elif session.secrets:
        attachables.append(SecretsProvider(dict(session.secrets)))
    tarball = TarballOutput(export.tarball.dest) if export.tarball is not None else None
    if tarball is not None:
        # Newer engines name the exporter position of a FileSend call; only the tarball exporter sends.
        attachables.append(FileSendProvider(*([tarball] * len(export.exporters))))
    auth = AuthProvider(session.credentials or docker_credentials)
    attachables.append(auth)
    entitlements = ("network.host",) if session.network == "host" else ()
    cache, notes = resolve_local_imports(export.cache)
    if cache.stores:
        attachables.append(ContentStoreProvider({s.store_id: OCILayout(s.path, s.writable) for s in cache.stores}))
    export = replace(export, cache=cache)
    with Session.open(client, *attachables) as opened:  # type: ignore[arg-type]
        spec = SolveSpec(export, opened.id, entitlements, definition, job, timeout, engine_history)
        try:
            response = run_solve(client, spec, tracker, cancel)
        except EngineError as exc:
            registry = registry_failure(exc, auth, session.registries)
            if registry is None:
                raise
            raise registry from exc
        for more, more_export in then:  # best effort: the build itself succeeded
            extra = SolveSpec(more_export, opened.id, entitlements, more, None, timeout, False)
            with suppress(EngineError):
                run_solve(client, extra, _Quiet(), cancel)
    record_local_exports(cache, response)
    if tarball is not None and not tarball.done:
        assert export.tarball is not None
        raise EngineError(f"the engine did not send the {export.tarball.type} output")
    return Solved(response, tuple(files.transfers), notes)


def registry_failure(exc: EngineError, auth: AuthProvider, hosts: tuple[str, ...]) -> BuilderError | None:
    """A failed pull or push said as a registry error (exit 6/7), or None when the failure is elsewhere.

    A credential lookup that failed during the build (a missing helper: RegistryAuthError; a
    malformed docker config: ConfigError) explains it best.  Only
    failures outside the plan's command steps are read: a pip step's log may say "connection refused".
    """
    if isinstance(exc, RegistryError):
        return exc
    step = exc.failure.step_id if isinstance(exc, SolveFailed) and exc.failure is not None else None
    if step not in (None, "base", "dockerfile"):
        return None
    if auth.errors:
        return auth.errors[0]
    text = exc.message
    if step == "dockerfile" and not any(h and h in text for h in hosts):
        return None
    action = "push" if "push" in text.lower() else ""
    return registry_error(text, hosts, action=action, logged_in=auth.answered)


def failure_hint(
    lines: tuple[str, ...], default: str = "fix the command or dependency named above and build again"
) -> str:
    """The hint for a failed step: the common cause its output shows (see :mod:`builder.engines.failure_hints`).

    >>> failure_hint(("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",))[:36]
    'TLS certificate verification failed '
    """
    return hint_for("", lines) or default
