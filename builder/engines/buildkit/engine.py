""":class:`BuildKitEngine`: execute a plan on a BuildKit engine (the :class:`~builder.engines.Engine` seam).

One build = convert the plan to LLB (request shapes chosen from the engine's
capabilities), open a session serving the plan's files, the CA bundle secret
and any tarball output, run the solve with the Status stream, then compare
every step's cached flag with the plan's prediction.

>>> with BuildKitEngine.connect() as engine:                                 # doctest: +SKIP
...     result = engine.build(plan, "path/to/app", BuildOptions(tag="app:dev"), on_event=print)
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from pathlib import Path
from typing import Literal, Self

from builder.engines import BuildOptions, BuildResult, NetworkMode, StepOutcome
from builder.engines.buildkit.caps import Capabilities
from builder.engines.buildkit.client import EngineClient, open_engine
from builder.engines.buildkit.convert import Converted, ConvertOptions, convert_plan
from builder.engines.buildkit.export import ExporterSpec, ExportPlan, plan_export
from builder.engines.buildkit.image import image_config_bytes
from builder.engines.buildkit.llb import Definition
from builder.engines.buildkit.progress import ProgressTracker, StepObservation
from builder.engines.buildkit.push import PushRoute, complete_push, push_route, registries_of
from builder.engines.buildkit.session import SyncedDir
from builder.engines.buildkit.session.manifest import FileEntry as SessionFileEntry
from builder.engines.buildkit.session.manifest import ManifestEntry, entry_from_stat
from builder.engines.buildkit.sizes import layer_sizes
from builder.engines.buildkit.solve import SessionSpec, definition_job, solve_in_session
from builder.engines.buildkit.tls import TLSConfig
from builder.engines.events import (
    BuildFinished,
    BuildStarted,
    Event,
    EventSink,
    Mismatch,
)
from builder.engines.identity import EngineIdentity, identify
from builder.errors import PlanError, SolveFailed
from builder.plan.model import FileManifest, Plan, StepKind
from builder.recipes.tools import NETRC_SECRET_ID


def default_network(caps: Capabilities) -> NetworkMode:
    """``host`` on dockerd (our local dockerd runs with ``--bridge=none``), else the engine's sandbox network."""
    return "host" if caps.kind == "dockerd" else "default"


_UNSEEN = ("", -2, 0, 0, 0)


def synced_entries(root: Path, manifest: FileManifest) -> list[ManifestEntry]:
    """Session entries for the manifest's files (mode, size and mtime: mtime drives incremental resend).

    A regular file the plan's walk observed (``manifest.observed``, with the size the plan
    hashed) is described as the plan saw it: no second stat, and BuildKit is told exactly what
    the plan hashed.  If the file changed since, BuildKit either keeps its copy of the planned
    content or asks for the file, and the sender refuses to send content that no longer has the
    planned size and mtime ("changed after the plan was made").  Other entries (symlinks, a
    manifest read from a plan file) are stat'ed now, and one that vanished since planning raises
    PlanError before the session opens.
    """
    entries: list[ManifestEntry] = []
    append = entries.append
    base = os.fspath(root).rstrip("/") + "/"
    new = tuple.__new__
    walked = manifest.observed
    observed: Iterable[tuple[str, int, int, int, int]] = (
        walked if walked is not None and len(walked) == len(manifest.entries) else repeat(_UNSEEN)
    )
    for (path, ftype, size, _digest), seen in zip(manifest.entries, observed):
        # (path, size, mtime_ns, inode, perms) as walked; a file that changed while hashed has another size
        if seen[1] == size and seen[0] == path and ftype != "symlink":
            append(new(SessionFileEntry, (path, False, False, seen[4], size, seen[2], "")))
            continue
        full = base + path
        try:
            st = os.lstat(full)
            target = os.readlink(full) if ftype == "symlink" else ""
        except OSError as exc:
            raise PlanError(
                f"{path}: the project file changed or vanished since planning ({exc.strerror})",
                hint="run the build again",
            ) from exc
        append(entry_from_stat(path, st, target))
    return entries


def _unique_for(project_dir: str | os.PathLike[str] | None) -> str:
    """A stable id of ``project_dir`` (its real path's digest; "" without one)."""
    if project_dir is None:
        return ""
    return hashlib.sha256(os.path.realpath(project_dir).encode("utf-8", "surrogateescape")).hexdigest()[:32]


class BuildKitEngine:
    """Builds plans on one engine connection (close it, or use it as a context manager)."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self._identity: EngineIdentity | None = None

    @classmethod
    def connect(
        cls,
        address: str | None = None,
        *,
        tls: TLSConfig | None = None,
        env: Mapping[str, str] | None = None,
        connect_timeout: float | None = None,
    ) -> BuildKitEngine:
        """Connect like ``builder engine info`` does (``--engine``, ``BUILDKIT_HOST``, auto-detect)."""
        return cls(open_engine(address, tls=tls, env=env, connect_timeout=connect_timeout))

    def prepare(
        self,
        plan: Plan,
        options: BuildOptions,
        push: PushRoute | None = None,
        project_dir: str | os.PathLike[str] | None = None,
    ) -> tuple[Converted, ExportPlan, bytes | None, NetworkMode]:
        """The conversion and request shape this engine will use for ``plan`` (no build).

        ``push`` is :func:`~.push.push_route`'s answer: who pushes when ``options.push``.
        ``project_dir`` makes the ``local://`` sources unique to that directory, so concurrent builds
        of same-named apps from different directories never share a source vertex (and its files).
        """
        caps = self.client.capabilities
        network = options.network or default_network(caps)
        merge = caps.supports_mergeop if options.merge is None else options.merge
        if merge:
            caps.require(
                "mergeop",
                "keeping the files layer independent of dependency layers (MergeOp)",
            )
        converted = convert_plan(
            plan,
            ConvertOptions(
                network=network,
                ca_bundle=options.ca_bundle is not None,
                netrc=options.netrc is not None,
                secrets=frozenset(options.secrets),
                merge=merge,
                shared_key_hint=f"builder-{plan.app}",
                rerun=frozenset(StepKind(s) for s in options.rerun),
                files_changes=None if merge else options.files_changes,
                local_unique=_unique_for(project_dir),
            ),
        )
        config = image_config_bytes(plan) if plan.get(StepKind.CONFIG) is not None else None
        export = plan_export(caps, options, config, exporter_pushes=push != "engine-api")
        return converted, export, config, network

    def build(
        self,
        plan: Plan,
        project_dir: str | os.PathLike[str],
        options: BuildOptions,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
    ) -> BuildResult:
        """Build ``plan`` with the files under ``project_dir``; events go to ``on_event`` as they happen."""
        if plan.get(StepKind.DOCKERFILE) is not None:  # dockerfile_path: the user's Dockerfile via dockerfile.v0
            from builder.engines.buildkit.dockerfile_build import build_plan_dockerfile

            return build_plan_dockerfile(self.client, plan, project_dir, options, on_event, cancel)
        started = time.monotonic()
        started_at = time.time()
        push = push_route(self.client, options)
        converted, export, config, network = self.prepare(plan, options, push, project_dir)
        predictions: dict[str, str] = dict(options.predictions)
        tracker = ProgressTracker(converted, on_event, predictions)
        if on_event is not None:
            on_event(
                BuildStarted(
                    plan.app,
                    tuple(s.id.value for s in plan.steps),
                    self.client.capabilities.describe(),
                )
            )
        root = Path(project_dir)
        dirs = {name: SyncedDir(root, synced_entries(root, m)) for name, m in converted.local_dirs}
        job = definition_job(converted.definition, config) if export.route == "gateway" else None
        secrets = {NETRC_SECRET_ID: options.netrc} if options.netrc is not None else {}
        secrets.update(options.secrets)
        try:
            solved = solve_in_session(
                self.client,
                SessionSpec(
                    dirs,
                    options.ca_bundle,
                    network,
                    secrets,
                    credentials=options.credentials,
                    registries=registries_of(_base_image(plan), options),
                ),
                export,
                tracker,
                definition=converted.definition,
                job=job,
                timeout=options.timeout,
                engine_history=options.engine_history,
                cancel=cancel,
                then=self._base_export(converted, options),
            )
        except SolveFailed as exc:  # the steps that did complete are in the engine's cache: say which
            exc.completed, _ = _outcomes(plan, tracker.completed(), predictions, only_observed=True)
            exc.engine = self.client.capabilities.describe()
            raise
        response = solved.response
        pushed = complete_push(self.client, options, push, response, on_event)
        observed = tracker.observations()
        sizes = layer_sizes(
            self.client.control,
            converted,
            observed,
            started_at,
            {s.id: (s.parents[0] if s.parents else None) for s in plan.steps},
        )
        outcomes, mismatches = _outcomes(plan, observed, predictions, sizes)
        seconds = round(time.monotonic() - started, 3)
        image = export.image_name or (str(export.tarball.dest) if export.tarball else None)
        if on_event is not None:
            on_event(BuildFinished(image, seconds, mismatches))
        return BuildResult(
            image=image,
            image_id=response.get("containerimage.digest"),
            steps=outcomes,
            mismatches=mismatches,
            seconds=seconds,
            engine=self.client.capabilities.describe(),
            exporter_response=tuple(sorted(response.items())),
            notes=solved.notes,
            pushed=pushed,
        )

    def keeps_files_bases(self, merge: bool | None = None) -> bool:
        """True when this engine can keep files bases: dockerd's classic image store, which its builds
        read images from, and no MergeOp (with MergeOp the files layers are independent already).
        Containerd-store engines keep the chained or merged layers (not measured with bases yet)."""
        caps = self.client.capabilities
        uses_merge = caps.supports_mergeop if merge is None else merge
        return caps.kind == "dockerd" and not uses_merge and caps.image_store != "containerd"

    def _base_export(self, converted: Converted, options: BuildOptions) -> tuple[tuple[Definition, ExportPlan], ...]:
        """The follow-up solve keeping the files step's result as ``options.files_base`` (or nothing)."""
        if options.files_base is None or converted.files_state is None or not self.keeps_files_bases(options.merge):
            return ()
        export = ExportPlan("direct", (ExporterSpec("moby", (("name", options.files_base),)),), False, None)
        return ((converted.files_state.marshal(), export),)

    def iter_build(self, plan: Plan, project_dir: str | os.PathLike[str], options: BuildOptions) -> Iterator[Event]:
        """:meth:`build` as an iterator of events (the last is BuildFinished; errors are raised)."""
        events: queue.Queue[object] = queue.Queue()
        done = object()
        failure: list[BaseException] = []
        cancel = threading.Event()

        def work() -> None:
            try:
                self.build(plan, project_dir, options, events.put, cancel)
            except BaseException as exc:
                failure.append(exc)
            finally:
                events.put(done)

        thread = threading.Thread(target=work, name="builder-build", daemon=True)
        thread.start()
        try:
            while (item := events.get()) is not done:
                yield item  # type: ignore[misc]
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise failure[0]

    def image_id(self, ref: str) -> str | None:
        """The ID of the image ``ref`` names in dockerd's image store; None elsewhere or when unknown.

        ``builder report`` compares it between builds to tell a re-tagged base image from a pruned cache.
        """
        docker = self.client.docker_socket
        if docker is None:
            return None
        from builder.engines.docker_api import DockerAPI

        try:
            api = DockerAPI(path=docker.path, host=docker.host, port=docker.port, timeout=5.0, tls=self.client.tls)
            found = api.inspect_image(ref).get("Id")
        except Exception:
            return None
        return found if isinstance(found, str) else None

    def identity(self) -> EngineIdentity:
        """This engine's identity (asked once per connection; see :mod:`builder.engines.identity`)."""
        if self._identity is None:
            self._identity = identify(self.client)
        return self._identity

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _base_image(plan: Plan) -> str | None:
    base = plan.get(StepKind.BASE)
    image = getattr(base.inputs, "image", None) if base is not None else None
    return image if isinstance(image, str) else None


def _outcomes(
    plan: Plan,
    observed: Mapping[StepKind, StepObservation],
    predictions: Mapping[str, str],
    sizes: Mapping[StepKind, int] | None = None,
    *,
    only_observed: bool = False,
) -> tuple[tuple[StepOutcome, ...], tuple[Mismatch, ...]]:
    """Each step's outcome and the predictions it contradicts (``only_observed``: the observed steps only)."""
    outcomes, mismatches = [], []
    for step in plan.steps:
        if only_observed and step.id not in observed:
            continue
        seen = observed[step.id]
        predicted = predictions.get(step.id.value)
        said: Literal["hit", "miss"] | None = "hit" if predicted == "hit" else "miss" if predicted == "miss" else None
        outcomes.append(
            StepOutcome(
                step.id.value,
                step.key,
                seen.vertex,
                seen.cached,
                seen.seconds,
                said,
                (sizes or {}).get(step.id, 0),
            )
        )
        if said is not None and (said == "hit") != seen.cached:
            mismatches.append(Mismatch(step.id.value, step.key, said, seen.cached, seen.vertex))
    return tuple(outcomes), tuple(mismatches)
