"""Dockerfile builds through BuildKit's ``dockerfile.v0`` frontend, on the one solve path.

Used for ``runtime.custom.dockerfile_path`` apps (the plan's ``dockerfile``
step) and for building an exported Dockerfile (``builder dockerfile``).  The
gateway route of :mod:`builder.engines.buildkit.solve` runs a
:class:`DockerfileJob`:

1. ``LLBBridge/Solve`` runs ``dockerfile.v0`` (options ``filename``,
   ``build-arg:*``, ``force-network-mode``) with two frontend inputs built
   here as LLB: ``dockerfile``, a file holding the Dockerfile text the plan
   hashed, and ``context``, the session's ``local://context`` (exactly the
   files the plan selected) plus the dependency files generated from
   cerebrium.toml (``requirements.txt``, ``pkglist.txt``, ``conda_pkglist.txt``,
   as the Cerebrium CLI provides them).  So the session serves nothing but
   the planned context: never the Dockerfile's directory, and never a path
   outside the project, whatever a plan file names;
2. the result's ``containerimage.config`` is amended with cerebrium.toml's
   port, labels (and entrypoint/env when configured)
   (:mod:`builder.engines.buildkit.image_amend`), and with ``config_file`` a
   second ``LLBBridge/Solve`` adds cerebrium.toml as the ``config`` step's
   layer (:mod:`builder.engines.buildkit.config_layer`);
3. the solve path returns that result and the exporter writes the image.

BuildKit reports one vertex per Dockerfile instruction (``[2/4] RUN …``);
:class:`~builder.engines.buildkit.dockerfile_progress.InstructionTracker`
sends them to the event sink as the ``dockerfile`` step's progress.

>>> # result = build_dockerfile(client, DockerfileSource.directory(app_dir), BuildOptions(tag="app:dev"))
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from builder.engines import BuildOptions, BuildResult, StepOutcome
from builder.engines.buildkit._pb import gateway_pb2
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.config_layer import with_config_file
from builder.engines.buildkit.dockerfile_progress import InstructionTracker
from builder.engines.buildkit.export import plan_export
from builder.engines.buildkit.image_amend import ConfigPatch, amend_config
from builder.engines.buildkit.llb import Definition, State
from builder.engines.buildkit.llb.ops import Mkfile
from builder.engines.buildkit.push import complete_push, push_route, registries_of
from builder.engines.buildkit.session import PatternSelector, SyncedDir, TransferReport, walk_directory
from builder.engines.buildkit.session.plan_files import synced_dir_for_manifest
from builder.engines.buildkit.solve import Bridge, SessionSpec, solve_in_session
from builder.engines.events import BuildFinished, BuildStarted, EventSink, Mismatch, Prediction
from builder.errors import EngineError
from builder.plan.model import Plan, StepKind

CONTEXT = "context"
FRONTEND = "dockerfile.v0"
CONFIG_KEY = "containerimage.config"
_FROM = re.compile(r"^\[(?:[^\]\s]+ )?\d+/\d+\] FROM ")


@dataclass(frozen=True, slots=True)
class DockerfileSource:
    """What the frontend reads: the served context, the Dockerfile text, and files generated into the context.

    ``generated`` are ``(name, text)`` files added at the context root (on
    top of the served files); ``filename`` is the name the frontend reads the
    Dockerfile under (its own input holds only that file).
    """

    context: SyncedDir
    dockerfile: str
    filename: str = "Dockerfile"
    build_args: tuple[tuple[str, str], ...] = ()
    generated: tuple[tuple[str, str], ...] = ()

    @classmethod
    def directory(cls, root: str | os.PathLike[str], filename: str = "Dockerfile") -> DockerfileSource:
        """A whole directory as the context with ``root/filename``, minus what its ``.dockerignore`` excludes.

        ``<filename>.dockerignore`` is used instead of ``.dockerignore`` when it exists, as BuildKit does.
        """
        path = Path(root)
        excludes = _dockerignore(path, filename)
        entries = walk_directory(path)
        if excludes:
            selector = PatternSelector(exclude=excludes)
            entries = [e for e in entries if selector.selects(e.relpath)]
        text = (path / filename).read_text(encoding="utf-8")
        return cls(SyncedDir(path, tuple(entries)), text, PurePosixPath(filename).name)


def _dockerignore(root: Path, filename: str) -> tuple[str, ...]:
    for name in (f"{filename}.dockerignore", ".dockerignore"):
        try:
            text = (root / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        lines = (line.strip() for line in text.splitlines())
        return tuple(line for line in lines if line and not line.startswith("#"))
    return ()


def frontend_options(source: DockerfileSource, network: str | None) -> dict[str, str]:
    """``FrontendOpt`` for dockerfile.v0: the file name, build args and the forced RUN network."""
    opts = {"filename": source.filename}
    opts.update({f"build-arg:{k}": v for k, v in source.build_args})
    if network in ("host", "none"):
        opts["force-network-mode"] = network
    return opts


def frontend_inputs(source: DockerfileSource, key_hint: str) -> dict[str, Definition]:
    """The frontend's ``context`` and ``dockerfile`` inputs as LLB (deterministic for the same source)."""
    context = State.local(CONTEXT, [("local.sharedkeyhint", key_hint)], name="[internal] load build context")
    if source.generated:
        names = ", ".join(name for name, _ in source.generated)
        files = (Mkfile(f"/{name}", text.encode("utf-8")) for name, text in source.generated)
        context = context.file(*files, name=f"[internal] generated {names}")
    dockerfile = State.scratch().file(
        Mkfile(f"/{source.filename}", source.dockerfile.encode("utf-8")),
        name=f"[internal] load build definition from {source.filename}",
    )
    return {CONTEXT: context.marshal(), "dockerfile": dockerfile.marshal()}


@dataclass(slots=True)
class DockerfileJob:
    """The gateway side of a Dockerfile build (a :data:`~builder.engines.buildkit.solve.BridgeJob`).

    ``config`` holds the amended image config once the job has run.
    """

    options: dict[str, str]
    inputs: dict[str, Definition]
    patch: ConfigPatch = field(default_factory=ConfigPatch)
    config_file: tuple[str, str] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def __call__(self, bridge: Bridge) -> gateway_pb2.Result:
        request = gateway_pb2.SolveRequest(
            Frontend=FRONTEND, FrontendOpt=self.options, allowResultReturn=True, allowResultArrayRef=True
        )
        for name, definition in self.inputs.items():
            request.FrontendInputs[name].CopyFrom(definition.to_pb())
        result = bridge.solve(request)
        self.config = amend_config(json.loads(result.metadata.get(CONFIG_KEY) or b"{}"), self.patch)
        returned = gateway_pb2.Result()
        returned.ref.id = self._with_config_layer(bridge, result)
        for key, value in result.metadata.items():
            returned.metadata[key] = value
        returned.metadata[CONFIG_KEY] = json.dumps(self.config, sort_keys=True, separators=(",", ":")).encode()
        return returned

    def _with_config_layer(self, bridge: Bridge, result: gateway_pb2.Result) -> str:
        """The ref to export: the frontend's, or (with ``config_file``) a second solve adding that file on top."""
        ref_id = _result_ref(result)
        if self.config_file is None or result.WhichOneof("result") != "ref":
            return ref_id
        definition = with_config_file(getattr(result.ref, "def"), *self.config_file)
        if definition is None:
            return ref_id
        layered = bridge.solve(
            gateway_pb2.SolveRequest(Definition=definition, allowResultReturn=True, allowResultArrayRef=True)
        )
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
    raise EngineError(
        f"the dockerfile frontend returned an unexpected result ({kind or 'empty'}); "
        "multi-platform Dockerfile results are not supported"
    )


@dataclass(frozen=True, slots=True)
class DockerfileBuild:
    """The outcome: exporter response, instruction vertices (name, cached, seconds), the config used.

    ``transfers`` lists every DiffCopy call the engine made to the session (what it read).
    """

    exporter_response: tuple[tuple[str, str], ...]
    instructions: tuple[tuple[str, bool, float], ...]
    config: dict[str, Any]
    seconds: float
    config_layer: tuple[bool, float] | None = None  # (cached, seconds) of the cerebrium.toml layer
    transfers: tuple[TransferReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def cached(self) -> bool:
        """True when every instruction came from the cache (FROM is a source: it only resolves the base image)."""
        return all(c for name, c, _ in self.instructions if not _FROM.match(name))


def build_dockerfile(
    client: EngineClient,
    source: DockerfileSource,
    options: BuildOptions | None = None,
    *,
    patch: ConfigPatch | None = None,
    on_event: EventSink | None = None,
    cancel: threading.Event | None = None,
    config_file: tuple[str, str] | None = None,
    key_hint: str = "builder-dockerfile",
) -> DockerfileBuild:
    """Build ``source`` with dockerfile.v0, amend its config with ``patch``, export as ``options`` say.

    The network defaults to ``host`` on dockerd (the local engine has no
    bridge).  Raises SolveFailed (with the failing instruction and its last
    log lines) or EngineError; ``cancel`` stops the build on the engine.
    """
    options = options or BuildOptions()
    started = time.monotonic()
    network = options.network or ("host" if client.kind == "dockerd" else None)
    # The frontend's result config reaches the exporter only through LLBBridge/Return: always the gateway route.
    route = push_route(client, options)
    export = replace(
        plan_export(client.capabilities, options, None, exporter_pushes=route == "exporter"), route="gateway"
    )
    job = DockerfileJob(
        frontend_options(source, network), frontend_inputs(source, key_hint), patch or ConfigPatch(), config_file
    )
    tracker = InstructionTracker(on_event)
    solved = solve_in_session(
        client,
        # The build secrets a Dockerfile's RUN --mount=type=secret asks for (the export's steps do).
        SessionSpec(
            {CONTEXT: source.context},
            options.ca_bundle,
            network,
            dict(options.secrets),
            credentials=options.credentials,
            registries=registries_of(None, options),
        ),
        export,
        tracker,
        job=job,
        timeout=options.timeout,
        engine_history=options.engine_history,
        cancel=cancel,
    )
    instructions = tuple((v.name, v.cached, _seconds(v)) for v in tracker.instructions())
    layer = tracker.config_vertex()
    layer_outcome = (layer.cached, _seconds(layer)) if layer is not None else None
    return DockerfileBuild(
        tuple(sorted(solved.response.items())),
        instructions,
        job.config,
        round(time.monotonic() - started, 3),
        layer_outcome,
        solved.transfers,
        solved.notes,
    )


def _seconds(v: Any) -> float:
    return float(max(0.0, (v.completed or 0) - (v.started or v.completed or 0)))


def plan_source(plan: Plan, project_dir: str | os.PathLike[str]) -> DockerfileSource:
    """The frontend's inputs for a plan with a ``dockerfile`` step: all of them come from the plan.

    The context is exactly the files include/exclude select (the step's
    manifest: what its key covers) plus the generated dependency files; the
    Dockerfile is the text the plan hashed, not a file read again.
    """
    inputs = plan.step(StepKind.DOCKERFILE).inputs
    root = Path(project_dir)
    return DockerfileSource(
        synced_dir_for_manifest(root, inputs.context),
        inputs.dockerfile,
        PurePosixPath(inputs.path).name,
        tuple(inputs.build_args),
        tuple(inputs.generated),
    )


def build_plan_dockerfile(
    client: EngineClient,
    plan: Plan,
    project_dir: str | os.PathLike[str],
    options: BuildOptions,
    on_event: EventSink | None = None,
    cancel: threading.Event | None = None,
) -> BuildResult:
    """Build a ``dockerfile`` plan: the user's Dockerfile plus the config step's port, labels and layer."""
    engine = client.capabilities.describe()
    if on_event is not None:
        on_event(BuildStarted(plan.app, tuple(s.id.value for s in plan.steps), engine))
    config_step = plan.get(StepKind.CONFIG)
    config_file = (config_step.inputs.toml_path, config_step.inputs.toml_text) if config_step is not None else None
    built = build_dockerfile(
        client,
        plan_source(plan, project_dir),
        options,
        patch=ConfigPatch.from_plan(plan),
        on_event=on_event,
        cancel=cancel,
        config_file=config_file,
        key_hint=f"builder-{plan.app}",
    )
    steps, mismatches = _outcomes(plan, built, dict(options.predictions))
    response = dict(built.exporter_response)
    pushed = complete_push(client, options, push_route(client, options), response, on_event)
    image = options.tag or (str(options.output.dest) if options.output is not None else None)
    if on_event is not None:
        on_event(BuildFinished(image, built.seconds, mismatches))
    return BuildResult(
        image=image,
        image_id=response.get("containerimage.digest"),
        steps=steps,
        mismatches=mismatches,
        seconds=built.seconds,
        engine=engine,
        exporter_response=built.exporter_response,
        notes=built.notes,
        pushed=pushed,
    )


def _outcomes(
    plan: Plan, built: DockerfileBuild, predictions: dict[str, str]
) -> tuple[tuple[StepOutcome, ...], tuple[Mismatch, ...]]:
    steps, mismatches = [], []
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
    return tuple(steps), tuple(mismatches)


__all__: Sequence[str] = (
    "DockerfileBuild",
    "DockerfileJob",
    "DockerfileSource",
    "build_dockerfile",
    "build_plan_dockerfile",
    "frontend_inputs",
    "frontend_options",
    "plan_source",
)
