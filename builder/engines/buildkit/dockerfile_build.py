"""Dockerfile builds through BuildKit's ``dockerfile.v0`` frontend, client-driven (wire sheet §3.2).

Used for ``runtime.custom.dockerfile_path`` apps (the plan's ``dockerfile``
step) and for building an exported Dockerfile (``builder dockerfile``):

1. ``Control/Solve`` with no Definition, the session, and the ``moby`` (dockerd)
   or ``image`` (buildkitd) exporter waits in a thread;
2. ``LLBBridge/Solve`` runs the frontend ``dockerfile.v0`` (options
   ``filename``, ``build-arg:*``, ``force-network-mode``); the frontend reads
   ``local://context`` and ``local://dockerfile`` from our session;
3. the result's ``containerimage.config`` is amended with cerebrium.toml's
   port, health check, labels (and entrypoint/env when configured), and with
   ``config_file`` a second ``LLBBridge/Solve`` adds cerebrium.toml as the
   ``config`` step's layer (:mod:`builder.engines.buildkit.config_layer`);
4. ``LLBBridge/Return`` hands the result and the amended config back, and the
   exporter writes the image.

BuildKit reports one vertex per Dockerfile instruction (``[2/4] RUN …``);
they are sent to the event sink as the ``dockerfile`` step's progress.

>>> # result = build_dockerfile(client, DockerfileSource.directory(app_dir), tag="app:dev", on_event=print)
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from builder.engines import BuildOptions, BuildResult, StepOutcome
from builder.engines.buildkit._pb import control_pb2, gateway_pb2, rpc_status_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.config_layer import with_config_file
from builder.engines.buildkit.errors import map_rpc_error, rpc_code, rpc_details
from builder.engines.buildkit.progress import (
    VertexState,
    timestamp_seconds,
    vertex_seconds,
)
from builder.engines.buildkit.session import (
    FileSyncProvider,
    SecretsProvider,
    Session,
    SyncedDir,
)
from builder.engines.buildkit.session.manifest import walk_directory
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.engines.events import (
    BuildFinished,
    BuildStarted,
    EngineProgress,
    EventSink,
    Mismatch,
    Prediction,
    StepFinished,
    StepLog,
    StepStarted,
)
from builder.errors import EngineError, SolveFailed, StepFailure
from builder.plan.model import Plan, StepKind

BUILD_ID_KEY = "buildkit-controlapi-buildid"
CONFIG_STEP = StepKind.CONFIG.value
_FROM = re.compile(r"^\[(?:[^\]\s]+ )?\d+/\d+\] FROM ")
_INSTRUCTION = re.compile(r"^\[(?:[^\]\s]+ )?\d+/\d+\] ")
FRONTEND = "dockerfile.v0"
CONFIG_KEY = "containerimage.config"
_NS = 1_000_000_000
_BRIDGE_TIMEOUT = 30.0
_TAIL = 50


@dataclass(frozen=True, slots=True)
class DockerfileSource:
    """What the frontend reads: the context (all of it, or the listed entries) and the Dockerfile."""

    context: SyncedDir
    dockerfile_dir: Path
    filename: str = "Dockerfile"
    build_args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def directory(cls, root: str | os.PathLike[str], filename: str = "Dockerfile") -> DockerfileSource:
        """A whole directory as the context (its ``.dockerignore`` applies) with ``root/filename``."""
        path = Path(root)
        return cls(SyncedDir(path, tuple(walk_directory(path))), path, filename)


@dataclass(frozen=True, slots=True)
class ConfigPatch:
    """What cerebrium.toml adds to the Dockerfile's image config (None/empty = keep the Dockerfile's)."""

    exposed_ports: tuple[str, ...] = ()
    healthcheck: Any = None  # builder.plan.steps.config.HealthCheck
    labels: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str | None = None

    @classmethod
    def from_plan(cls, plan: Plan) -> ConfigPatch:
        """The patch from the plan's ``config`` step (empty when the plan has none)."""
        step = plan.get(StepKind.CONFIG)
        if step is None:
            return cls()
        image = step.inputs.image
        return cls(tuple(image.exposed_ports), image.healthcheck, tuple(image.labels), tuple(image.env),
                   image.entrypoint, image.cmd, image.working_dir)


def amend_config(document: Mapping[str, Any], patch: ConfigPatch) -> dict[str, Any]:
    """The image config document with ``patch`` applied (pure; the Dockerfile's values stay otherwise).

    Ports and labels are merged (ours win), Env is merged by name (the
    Dockerfile's PATH is kept), the health check is replaced, and the
    entrypoint/cmd/working dir are set only when cerebrium.toml sets them.
    """
    doc: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy of plain JSON
    config = doc.setdefault("config", {})
    if patch.exposed_ports:
        ports = dict(config.get("ExposedPorts") or {})
        ports.update({p: {} for p in patch.exposed_ports})
        config["ExposedPorts"] = ports
    if patch.labels:
        labels = dict(config.get("Labels") or {})
        labels.update(dict(patch.labels))
        config["Labels"] = labels
    if patch.env:
        env = list(config.get("Env") or [])
        names = [e.partition("=")[0] for e in env]
        for name, value in patch.env:
            item = f"{name}={value}"
            if name in names:
                env[names.index(name)] = item
            else:
                env.append(item)
                names.append(name)
        config["Env"] = env
    if patch.healthcheck is not None:
        hc = patch.healthcheck
        config["Healthcheck"] = {"Test": list(hc.test), "Interval": hc.interval_seconds * _NS,
                                 "Timeout": hc.timeout_seconds * _NS, "StartPeriod": hc.start_period_seconds * _NS,
                                 "Retries": hc.retries}
    if patch.entrypoint is not None:
        config["Entrypoint"] = list(patch.entrypoint)
        config["Cmd"] = list(patch.cmd) if patch.cmd is not None else None
    if patch.working_dir:
        config["WorkingDir"] = patch.working_dir
    return doc


def frontend_options(source: DockerfileSource, network: str | None) -> dict[str, str]:
    """``FrontendOpt`` for dockerfile.v0: the file name, build args and the forced RUN network."""
    opts = {"filename": source.filename}
    opts.update({f"build-arg:{k}": v for k, v in source.build_args})
    if network in ("host", "none"):
        opts["force-network-mode"] = network
    return opts


@dataclass(slots=True)
class InstructionTracker:
    """Status stream → ``dockerfile`` step events, one per instruction vertex (``[n/m] …``)."""

    sink: EventSink | None = None
    step: str = StepKind.DOCKERFILE.value
    vertices: dict[str, VertexState] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, response: control_pb2.StatusResponse) -> None:
        with self._lock:
            for v in response.vertexes:
                self._vertex(v)
            for log in response.logs:
                for line in bytes(log.msg).decode("utf-8", "replace").splitlines():
                    self.tail = (self.tail + [line])[-_TAIL:]
                    self._emit(StepLog(self.step, line, int(log.stream) or 1))

    def _vertex(self, v: Any) -> None:
        state = self.vertices.get(v.digest)
        if state is None:
            state = self.vertices[v.digest] = VertexState(v.name)
            self.order.append(v.digest)
        state.cached = state.cached or bool(v.cached)
        state.started = timestamp_seconds(v.started) or state.started
        state.completed = timestamp_seconds(v.completed) or state.completed
        state.error = v.error or state.error
        step = self.step if is_instruction(state.name) else CONFIG_STEP if state.name.startswith("[config] ") else None
        if step and state.started and not state.announced and not state.cached:
            state.announced = True
            self._emit(StepStarted(step, state.name))
        if state.completed and not state.finished:
            state.finished = True
            seconds = vertex_seconds(state)
            if step:
                self._emit(StepFinished(step, state.name, state.cached, seconds, None, state.error or None))
            else:
                self._emit(EngineProgress(state.name, True, state.cached, seconds))

    def _emit(self, event: Any) -> None:
        if self.sink is not None:
            self.sink(event)

    def instructions(self) -> list[VertexState]:
        """The instruction vertices in first-seen order."""
        return [self.vertices[d] for d in self.order if is_instruction(self.vertices[d].name)]

    def config_vertex(self) -> VertexState | None:
        """The ``[config]`` layer's vertex, when one was built."""
        return next((self.vertices[d] for d in self.order if self.vertices[d].name.startswith("[config] ")), None)

    def failed(self) -> VertexState | None:
        return next((v for v in (self.vertices[d] for d in self.order) if v.error), None)


def is_instruction(name: str) -> bool:
    """``[2/4] RUN …`` or ``[stage-0 2/4] RUN …`` (a Dockerfile instruction), not ``[internal] …``/``exporting …``."""
    return _INSTRUCTION.match(name) is not None


@dataclass(frozen=True, slots=True)
class DockerfileBuild:
    """The outcome: exporter response, instruction vertices (name, cached, seconds) and the config used."""

    exporter_response: tuple[tuple[str, str], ...]
    instructions: tuple[tuple[str, bool, float], ...]
    config: dict[str, Any]
    seconds: float
    config_layer: tuple[bool, float] | None = None  # (cached, seconds) of the cerebrium.toml layer

    @property
    def cached(self) -> bool:
        """True when every instruction came from the cache (FROM is a source: it only resolves the base image)."""
        return all(c for name, c, _ in self.instructions if not _FROM.match(name))


def _exporter(client: EngineClient, tag: str | None) -> tuple[str, dict[str, str]]:
    if not tag:
        return "", {}
    return ("moby", {"name": tag}) if client.kind == "dockerd" else ("image", {"name": tag})


def build_dockerfile(
    client: EngineClient,
    source: DockerfileSource,
    *,
    tag: str | None = None,
    patch: ConfigPatch | None = None,
    network: str | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
    on_event: EventSink | None = None,
    timeout: float | None = None,
    config_file: tuple[str, str] | None = None,
) -> DockerfileBuild:
    """Build ``source`` with dockerfile.v0, amend its config with ``patch``, export as ``tag``.

    ``network`` defaults to ``host`` on dockerd (the local engine has no bridge).
    Raises SolveFailed (with the failing instruction and its last log lines)
    or EngineError.
    """
    started = time.monotonic()
    network = network or ("host" if client.kind == "dockerd" else None)
    dirs = {"context": source.context,
            "dockerfile": SyncedDir(source.dockerfile_dir, tuple(walk_directory(source.dockerfile_dir)))}
    attachables: list[Any] = [FileSyncProvider(dirs)]
    if ca_bundle is not None:
        attachables.append(SecretsProvider.with_ca_bundle(ca_bundle))
    tracker = InstructionTracker(on_event)
    with Session.open(client, *attachables) as session:
        response, config = _solve(client, session.id, source, tag, patch or ConfigPatch(), network, tracker, timeout,
                                  config_file)
    instructions = tuple((v.name, v.cached, max(0.0, (v.completed or 0) - (v.started or v.completed or 0)))
                         for v in tracker.instructions())
    layer = tracker.config_vertex()
    layer_outcome = None
    if layer is not None:
        layer_outcome = (layer.cached, max(0.0, (layer.completed or 0) - (layer.started or layer.completed or 0)))
    return DockerfileBuild(tuple(sorted(response.items())), instructions, config,
                           round(time.monotonic() - started, 3), layer_outcome)


def _solve(client: EngineClient, session_id: str, source: DockerfileSource, tag: str | None, patch: ConfigPatch,
           network: str | None, tracker: InstructionTracker, timeout: float | None,
           config_file: tuple[str, str] | None) -> tuple[dict[str, str], dict[str, Any]]:
    ref = f"builder-df-{uuid.uuid4().hex}"
    exporter, attrs = _exporter(client, tag)
    request = control_pb2.SolveRequest(Ref=ref, Session=session_id, Exporter=exporter,
                                       Entitlements=["network.host"] if network == "host" else [])
    request.ExporterAttrs.update(attrs)
    address = str(client.address)
    solve = client.control.Solve.future(request, timeout=timeout)
    status = client.control.Status(control_pb2.StatusRequest(Ref=ref))
    reader = threading.Thread(target=_read_status, args=(status, tracker), name="builder-df-status", daemon=True)
    reader.start()
    metadata = ((BUILD_ID_KEY, ref),)
    config: dict[str, Any] = {}
    try:
        try:
            result = client.bridge.Solve(
                gateway_pb2.SolveRequest(Frontend=FRONTEND, FrontendOpt=frontend_options(source, network),
                                         allowResultReturn=True, allowResultArrayRef=True),
                metadata=metadata, wait_for_ready=True, timeout=timeout).result
        except grpc.RpcError as exc:
            error = rpc_status_pb2.Status(code=2, message=rpc_details(exc))
            with suppress(grpc.RpcError):
                client.bridge.Return(gateway_pb2.ReturnRequest(error=error), metadata=metadata,
                                     timeout=_BRIDGE_TIMEOUT)
            raise
        config = amend_config(json.loads(result.metadata.get(CONFIG_KEY) or b"{}"), patch)
        returned = gateway_pb2.Result()
        returned.ref.id = _with_config_layer(client, result, config_file, metadata, timeout)
        for key, value in result.metadata.items():
            returned.metadata[key] = value
        returned.metadata[CONFIG_KEY] = json.dumps(config, sort_keys=True, separators=(",", ":")).encode("utf-8")
        client.bridge.Return(gateway_pb2.ReturnRequest(result=returned), metadata=metadata, timeout=_BRIDGE_TIMEOUT)
        response = solve.result()
    except grpc.RpcError as exc:
        solve.cancel()
        reader.join(10)
        raise _failure(exc, tracker, address) from exc
    except BaseException:
        solve.cancel()
        status.cancel()
        raise
    reader.join(10)
    return dict(response.ExporterResponse), config


def _with_config_layer(client: EngineClient, result: gateway_pb2.Result, config_file: tuple[str, str] | None,
                       metadata: tuple[tuple[str, str], ...], timeout: float | None) -> str:
    """The ref to export: the frontend's, or (with ``config_file``) a second solve adding that file on top."""
    ref_id = _result_ref(result)
    if config_file is None or result.WhichOneof("result") != "ref":
        return ref_id
    definition = with_config_file(getattr(result.ref, "def"), *config_file)
    if definition is None:
        return ref_id
    layered = client.bridge.Solve(gateway_pb2.SolveRequest(Definition=definition, allowResultReturn=True,
                                                           allowResultArrayRef=True),
                                  metadata=metadata, timeout=timeout).result
    return _result_ref(layered)


def _result_ref(result: gateway_pb2.Result) -> str:
    """The single result ref id, whichever field the engine used."""
    kind = result.WhichOneof("result")
    if kind == "ref":
        return str(result.ref.id)
    if kind == "refDeprecated":
        return str(result.refDeprecated)
    if kind == "refs" and len(result.refs.refs) == 1:
        return str(next(iter(result.refs.refs.values())).id)
    raise EngineError(f"the dockerfile frontend returned an unexpected result ({kind or 'empty'}); "
                      "multi-platform Dockerfile results are not supported")


def _read_status(call: Any, tracker: InstructionTracker) -> None:
    try:
        for response in call:
            tracker.feed(response)
    except grpc.RpcError as exc:
        if rpc_code(exc) not in (grpc.StatusCode.CANCELLED, None):
            tracker.tail.append(f"(status stream ended: {rpc_details(exc)})")


def _failure(exc: grpc.RpcError, tracker: InstructionTracker, address: str) -> EngineError:
    failed = tracker.failed()
    if failed is None:
        return map_rpc_error(exc, address=address, operation="Solve (dockerfile.v0)", solve=True)
    return SolveFailed(f"step dockerfile failed at {failed.name}: {failed.error}",
                       failure=StepFailure(StepKind.DOCKERFILE.value, failed.name, tuple(tracker.tail)),
                       hint="fix the Dockerfile instruction named above and build again")


def plan_source(plan: Plan, project_dir: str | os.PathLike[str]) -> DockerfileSource:
    """The frontend's inputs for a plan with a ``dockerfile`` step.

    The context is exactly the files include/exclude select (the step's
    manifest: what its key covers); the Dockerfile is read from its own directory.
    """
    inputs = plan.step(StepKind.DOCKERFILE).inputs
    root = Path(project_dir)
    path = root / inputs.path
    return DockerfileSource(synced_dir_for_manifest(root, inputs.context), path.parent, path.name,
                            tuple(inputs.build_args))


def build_plan_dockerfile(client: EngineClient, plan: Plan, project_dir: str | os.PathLike[str],
                          options: BuildOptions, on_event: EventSink | None = None) -> BuildResult:
    """Build a ``dockerfile`` plan: the user's Dockerfile plus the config step's port, health check and labels."""
    engine = client.capabilities.describe()
    if on_event is not None:
        on_event(BuildStarted(plan.app, tuple(s.id.value for s in plan.steps), engine))
    predictions = dict(options.predictions)
    config_step = plan.get(StepKind.CONFIG)
    config_file = (config_step.inputs.toml_path, config_step.inputs.toml_text) if config_step is not None else None
    built = build_dockerfile(client, plan_source(plan, project_dir), tag=options.tag,
                             patch=ConfigPatch.from_plan(plan), network=options.network,
                             ca_bundle=options.ca_bundle, on_event=on_event, timeout=options.timeout,
                             config_file=config_file)
    steps = []
    mismatches = []
    for step in plan.steps:
        if step.id == StepKind.DOCKERFILE:
            cached, seconds = built.cached, sum(s for _, _, s in built.instructions)
        else:  # the config layer (cerebrium.toml); without one the step is image metadata only
            cached, seconds = built.config_layer or (True, 0.0)
        predicted = predictions.get(step.id.value)
        expected: Prediction | None = "hit" if predicted == "hit" else "miss" if predicted == "miss" else None
        steps.append(StepOutcome(step.id.value, step.key, step.id.value, cached, round(seconds, 3), expected))
        if expected is not None and (expected == "hit") != cached:
            mismatches.append(Mismatch(step.id.value, step.key, expected, cached, step.id.value))
    response = dict(built.exporter_response)
    if on_event is not None:
        on_event(BuildFinished(options.tag, built.seconds, tuple(mismatches)))
    return BuildResult(image=options.tag, image_id=response.get("containerimage.digest"), steps=tuple(steps),
                       mismatches=tuple(mismatches), seconds=built.seconds, engine=engine,
                       exporter_response=built.exporter_response)


__all__: Sequence[str] = (
    "ConfigPatch",
    "DockerfileBuild",
    "DockerfileSource",
    "InstructionTracker",
    "amend_config",
    "build_dockerfile",
    "build_plan_dockerfile",
    "frontend_options",
    "plan_source",
)
