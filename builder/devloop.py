"""``builder dev``: build, run and keep the app answering while its files are edited.

:class:`DevLoop` builds the project (as ``builder build``), starts the image on the engine's
Docker daemon, waits until the app is ready (the same checks as ``builder verify``, probed inside
the container) and then watches the project. On each change it plans, says what rebuilds and
why, rebuilds, replaces the container and waits for readiness again. With ``sync`` an edit
that touches only files of the ``files`` step is copied into the running container, whose
main process restarts; the image is rebuilt in the background so it stays the truth.

The loop reports through ``on_event`` only (it never prints): :class:`DevChange`,
:class:`DevPlanned`, :class:`DevReady`, :class:`DevFailed`, :class:`DevAppLog`, :class:`DevNote`,
and the build's own :mod:`builder.engines.events`.

Containers are labelled :data:`DEV_LABEL` (the app's name) and :data:`DEV_OWNER_LABEL`
(``<hostname>:<pid>``). Every container the loop started is removed when it ends, however it
ends; one whose owner process died (a ``kill -9``) is removed by the next loop of the same app.

Watching is stat polling (every ``poll_interval`` seconds) of the files the ``files`` step
selects, plus cerebrium.toml, the ``[cerebrium.dependencies.paths]`` files and the Dockerfile
of a ``dockerfile_path`` app: a walk of a small project costs well under a millisecond, and
polling needs no watch limits, works on every filesystem and follows the include/exclude
rules exactly (it uses the ``files`` step's own walk).

>>> handle = dev("fixtures/apps/quickstart", on_event=print)   # doctest: +SKIP
>>> handle.wait_ready(120); handle.url                           # doctest: +SKIP
'http://127.0.0.1:8090'
>>> handle.stop()                                                # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from builder.config.model import Config
from builder.engines.docker_api import DockerAPI
from builder.errors import BuilderError, ConfigError
from builder.plan.context import file_rules
from builder.plan.fileset import walk_stats
from builder.verify import (
    DockerRuntime,
    Probe,
    VerifySettings,
    VerifyUnavailable,
    container_spec,
    docker_for_engine,
    pid_alive,
    probe,
)

#: Label on every container a dev loop starts: the app's name.
DEV_LABEL = "dev.builder.dev"
#: Which process started it: ``<hostname>:<pid>``.
DEV_OWNER_LABEL = "dev.builder.dev.owner"
POLL_INTERVAL = 0.1
#: A burst of changes ends when the files stay unchanged this long.
QUIET = 0.08
#: ... or at the latest after this long.
BURST_LIMIT = 2.0
LOG_TAIL = 100
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


# --- events (the loop's whole output) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevChange:
    """Files changed (project-relative paths, sorted)."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DevPlanned:
    """What the change rebuilds and why, in one line; ``rebuild`` lists the steps, ``sync`` a copy."""

    summary: str
    rebuild: tuple[str, ...]
    reason: str
    sync: bool = False


@dataclass(frozen=True, slots=True)
class DevReady:
    """The app answers at ``url``; ``seconds`` from the edit (or the loop's start) to ready."""

    url: str
    seconds: float
    image: str
    container: str
    synced: bool = False


@dataclass(frozen=True, slots=True)
class DevFailed:
    """A build or a start failed; the loop waits for the next edit (``serving`` tells whether an
    earlier container still answers)."""

    stage: Literal["build", "start"]
    message: str
    logs: tuple[str, ...] = ()
    hint: str | None = None
    serving: bool = False


@dataclass(frozen=True, slots=True)
class DevAppLog:
    """One line the running app wrote (stdout or stderr)."""

    line: str


@dataclass(frozen=True, slots=True)
class DevNote:
    """Something worth a line that is neither a failure nor readiness (leftovers removed, stopping)."""

    text: str


DevEvent = DevChange | DevPlanned | DevReady | DevFailed | DevAppLog | DevNote


# --- watching ------------------------------------------------------------------------------------

Snapshot = dict[str, tuple[int, int, int] | None]


@dataclass(frozen=True, slots=True)
class WatchSet:
    """What to watch for one config: the files step's rules and the extra files (config, paths, Dockerfile)."""

    root: Path
    config: Config

    @property
    def extras(self) -> tuple[str, ...]:
        """Project-relative paths outside the ``files`` selection that still change the build."""
        cfg = self.config
        found = [cfg.path.name]
        paths = cfg.dependencies.paths
        found += [p for p in (paths.pip, paths.apt, paths.conda) if p]
        runtime = cfg.runtime
        if runtime is not None and runtime.dockerfile_path:
            found.append(runtime.dockerfile_path)
        return tuple(dict.fromkeys(os.path.normpath(p) for p in found))

    def selected(self) -> dict[str, tuple[int, int, int]]:
        """The files of the ``files`` step, by stat (nothing is read)."""
        return walk_stats(self.root, file_rules(self.config))

    def snapshot(self) -> tuple[Snapshot, frozenset[str]]:
        """Every watched path's (size, mtime_ns, inode), None when missing; and which are files-step files."""
        try:
            selected = self.selected()
        except BuilderError:
            selected = {}
        snap: Snapshot = dict(selected)
        for rel in self.extras:
            try:
                st = os.stat(self.root / rel)
                snap[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
            except OSError:
                snap[rel] = None
        return snap, frozenset(selected)


def changed_paths(before: Snapshot, after: Snapshot) -> tuple[str, ...]:
    """Paths added, removed or modified between two snapshots, sorted."""
    return tuple(sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p)))


def edit_time(root: Path, paths: Iterable[str], seen: float) -> float:
    """When the burst's last edit happened (wall clock): the newest mtime among the changed files,
    never later than ``seen`` (deleted files count as seen at ``seen``)."""
    newest = 0.0
    for rel in paths:
        with suppress(OSError):
            newest = max(newest, os.stat(root / rel).st_mtime)
    return min(newest, seen) if newest else seen


# --- containers ----------------------------------------------------------------------------------


def dev_tag(app: str) -> str:
    """The image name a dev loop builds for ``app`` (``<app>:dev``, made a valid reference)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", app.lower()).strip("-._") or "app"
    return f"builder-dev-{name}:latest"


def engine_host(docker: DockerAPI) -> str:
    """The host name where the engine publishes ports (127.0.0.1 for a local socket)."""
    where = docker.where
    if where.startswith("tcp://"):
        host = where[len("tcp://") :].rpartition(":")[0]
        return host or "127.0.0.1"
    return "127.0.0.1"


def dev_container_spec(
    image: str, settings: VerifySettings, *, app: str, network: str, host_port: int | None
) -> dict[str, Any]:
    """The ``POST /containers/create`` body of a dev container (pure): verify's sandboxing, dev labels,
    the app's environment and, on a bridge network, the port published on ``host_port``."""
    spec = container_spec(image, settings, network)
    spec["Labels"] = {DEV_LABEL: app, DEV_OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}"}
    if network != "host" and host_port is not None:
        port_key = f"{settings.port}/tcp"
        spec["ExposedPorts"] = {port_key: {}}
        spec["HostConfig"]["PortBindings"] = {port_key: [{"HostPort": str(host_port)}]}
    return spec


def is_dev_leftover(container: Mapping[str, Any], app: str, host: str, alive: Callable[[int], bool]) -> bool:
    """Whether a container labelled by a dev loop of ``app`` on this host outlived its loop."""
    labels = container.get("Labels") or {}
    if labels.get(DEV_LABEL) != app:
        return False
    owner_host, _, pid = str(labels.get(DEV_OWNER_LABEL, "")).rpartition(":")
    return owner_host == host and pid.isdigit() and not alive(int(pid))

    return True


def files_tar(root: Path, paths: Iterable[str]) -> bytes:
    """A tar of the project files ``paths`` (regular files and symlinks, modes kept, owned by root)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(paths):
            info = tar.gettarinfo(str(root / rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isreg():
                with open(root / rel, "rb") as handle:
                    tar.addfile(info, handle)
            elif info.issym():
                tar.addfile(info)
    return buffer.getvalue()


# --- the loop ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevOptions:
    """How the loop builds and runs the app (see :func:`dev`)."""

    port: int | None = None
    sync: bool = False
    engine: str | None = None
    tls: Any = None
    connect_timeout: float | None = None
    cache_dir: str | os.PathLike[str] | None = None
    ca_bundle: str | os.PathLike[str] | None = None
    network: str | None = None
    tag: str | None = None
    env: Mapping[str, str] | None = field(default=None, repr=False)  # secrets: never in a repr
    secrets: Any = None  # build secrets (a BuildSecrets, see builder.engines.build_secrets), read once
    poll_interval: float = POLL_INTERVAL


class DevLoop:
    """One ``builder dev`` session: :meth:`run` until ``stop`` is set; every container it started is
    removed when :meth:`run` returns or raises."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: DevOptions | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> None:
        from builder.api import load_plan_config

        self.path = Path(path)
        self.options = options or DevOptions()
        self._emit = on_event or (lambda _event: None)
        self.config, _warnings = load_plan_config(self.path)
        self.root = self.config.project_dir
        self.app = self.config.deployment.name
        self.tag = self.options.tag or dev_tag(self.app)
        self.url: str | None = None
        self.ready = threading.Event()
        self._docker: DockerAPI | None = None
        self._runtime: DockerRuntime | None = None
        self._network = "host"
        self._started: set[str] = set()
        self._current: str | None = None
        self._log_generation = 0
        self._build_lock = threading.Lock()
        self._background: threading.Thread | None = None
        self._dest: tuple[Config, str | None] | None = None

    # -- public ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Build, start, then rebuild on every change until ``stop`` is set; always clean up."""
        try:
            self._connect()
            watch = WatchSet(self.root, self.config)
            snap, selected = watch.snapshot()
            self._cycle(time.time(), changed=None)
            while not stop.is_set():
                if stop.wait(self.options.poll_interval):
                    break
                now, now_selected = watch.snapshot()
                paths = changed_paths(snap, now)
                if not paths:
                    continue
                now, now_selected, paths = self._settle(watch, snap, now, now_selected, stop)
                seen = time.time()
                files_only = not set(paths) & set(watch.extras) and set(paths) <= (selected | now_selected)
                snap, selected = now, now_selected
                self._emit(DevChange(paths))
                before = self.config
                self._reload()
                if self.config != before:  # new rules or extra files: watch what the new config selects
                    watch = WatchSet(self.root, self.config)
                    snap, selected = watch.snapshot()
                self._cycle(edit_time(self.root, paths, seen), changed=paths, files_only=files_only)
        finally:
            self.close()

    def close(self) -> None:
        """Remove every container this loop started (idempotent)."""
        background = self._background
        if background is not None:
            background.join()
        self._log_generation += 1
        for container_id in sorted(self._started):
            with suppress(BuilderError):
                assert self._docker is not None
                self._docker.remove_container(container_id)
            self._started.discard(container_id)
        self._current = None

    @property
    def containers(self) -> tuple[str, ...]:
        """Ids of the containers this loop started and has not removed yet."""
        return tuple(sorted(self._started))

    # -- steps -----------------------------------------------------------------------------------

    def _connect(self) -> None:
        opts = self.options
        try:
            docker = docker_for_engine(opts.engine, tls=opts.tls, connect_timeout=opts.connect_timeout)
        except VerifyUnavailable as exc:
            raise VerifyUnavailable(
                exc.message.replace("verification unavailable", "`builder dev` cannot run the app"),
                hint="run the loop on dockerd (e.g. --engine docker:///var/run/docker.sock)",
            ) from None
        self._docker = docker
        self._runtime = DockerRuntime(docker)
        self._network = "bridge" if docker.has_network("bridge") else "host"
        settings = VerifySettings.from_config(self.config)
        if self._network == "host" and opts.port is not None and opts.port != settings.port:
            raise ConfigError(
                f"--port {opts.port}: the engine at {docker.where} has no bridge network, so containers share "
                f"its host's ports and the app answers on its own port {settings.port}",
                key_path="--port",
                hint="leave out --port, or set port in [cerebrium.runtime.custom]",
            )
        host, alive = socket.gethostname(), pid_alive
        gone = [c for c in docker.list_containers(label=DEV_LABEL) if is_dev_leftover(c, self.app, host, alive)]
        for container in gone:
            docker.remove_container(str(container["Id"]))
        if gone:
            self._emit(DevNote(f"removed {len(gone)} container(s) an earlier `builder dev` of {self.app} left behind"))

    def _settle(
        self, watch: WatchSet, before: Snapshot, now: Snapshot, selected: frozenset[str], stop: threading.Event
    ) -> tuple[Snapshot, frozenset[str], tuple[str, ...]]:
        """Wait until a burst of changes is over; return the last snapshot and every path it changed."""
        deadline = time.monotonic() + BURST_LIMIT
        while time.monotonic() < deadline and not stop.wait(QUIET):
            later, later_selected = watch.snapshot()
            if later == now:
                break
            now, selected = later, later_selected
        return now, selected, changed_paths(before, now)

    def _reload(self) -> None:
        """Re-read the config after a change (a broken one is reported by the build that follows)."""
        from builder.api import load_plan_config

        with suppress(BuilderError):
            self.config, _ = load_plan_config(self.path)

    def _cycle(self, edited: float, changed: tuple[str, ...] | None, files_only: bool = False) -> None:
        """One edit: plan, (sync or) build, replace the container, report."""
        if self._background is not None:
            self._background.join()  # a background rebuild finishes first: one build at a time
            self._background = None
        if changed is not None and files_only and self.options.sync and self._can_sync():
            self._sync(edited, changed)
            return
        if changed is not None:
            self._plan_line()
        image = self._build()
        if image is None:
            return
        self._replace(image, edited)

    def _plan_line(self) -> None:
        from builder.api import plan_project

        try:
            _plan, analysis, _ = plan_project(
                self.path, cache_dir=self.options.cache_dir, record=False, secrets=self.options.secrets
            )
        except BuilderError:
            return  # the build reports it
        misses = tuple(s.id.value for s in analysis.misses)
        first = analysis.misses[0] if analysis.misses else None
        reason = first.reason if first else "nothing changed in any step's inputs"
        self._emit(DevPlanned(f"{analysis.summary()} — {reason}", misses, reason))

    def _build(self) -> str | None:
        from builder.api import build

        opts = self.options
        with self._build_lock:
            try:
                result, _analysis, _diags = build(
                    self.path,
                    engine=opts.engine,
                    tag=self.tag,
                    cache_dir=opts.cache_dir,
                    ca_bundle=opts.ca_bundle,
                    network=opts.network,
                    on_event=self._emit,
                    tls=opts.tls,
                    connect_timeout=opts.connect_timeout,
                    secrets=opts.secrets,
                )
            except BuilderError as exc:
                failure = getattr(exc, "failure", None)
                logs = tuple(failure.log_tail) if failure is not None else ()
                message = (
                    exc.message if failure is None else f"{exc.message}\nstep {failure.step_id}: {failure.command}"
                )
                diags = getattr(exc, "diagnostics", ())
                if diags:
                    message = "\n".join(d.format() for d in diags)
                self._emit(DevFailed("build", message, logs, exc.hint, serving=self._current is not None))
                return None
        return str(result.image or self.tag)

    def _settings(self) -> VerifySettings:
        return replace(VerifySettings.from_config(self.config), env=dict(self.options.env or {}))

    def _replace(self, image: str, edited: float) -> None:
        """Start ``image`` in place of the current container; on failure bring the old one back."""
        assert self._docker is not None
        docker = self._docker
        settings = self._settings()
        host_port = self.options.port if self.options.port is not None else settings.port
        spec = dev_container_spec(image, settings, app=self.app, network=self._network, host_port=host_port)
        old = self._current
        try:
            new = docker.create_container(spec, name=f"builder-dev-{uuid.uuid4().hex[:12]}")
        except BuilderError as exc:
            self._emit(DevFailed("start", exc.message, (), exc.hint, serving=old is not None))
            return
        self._started.add(new)
        if old is not None:  # same port: the old one makes way, and comes back if the new one fails
            with suppress(BuilderError):
                docker.stop_container(old)
        failure = self._start_and_wait(new, settings)
        if failure is not None:
            logs = self._logs(new)
            self._remove(new)
            serving = False
            if old is not None:
                with suppress(BuilderError):
                    since = int(time.time())
                    docker.start_container(old)
                    serving = self._start_and_wait(old, settings, start=False) is None
                    self._follow(old, since=since)
            self._emit(DevFailed("start", failure, logs, _start_hint(logs), serving=serving))
            return
        self._current = new
        self._follow(new, since=0)
        self._emit(DevReady(self._url(settings), max(0.0, time.time() - edited), image, new))
        self.ready.set()
        if old is not None:  # after the report: removing a stopped container is nobody's wait
            self._remove(old)

    def _url(self, settings: VerifySettings) -> str:
        """Where the app answers: the published port (or, on the host network, the app's own) of the engine's host."""
        assert self._docker is not None
        port = settings.port if self._network == "host" or self.options.port is None else self.options.port
        self.url = f"http://{engine_host(self._docker)}:{port}"
        return self.url

    def _probe(self, container_id: str, settings: VerifySettings, endpoint: str) -> Probe:
        """One check. On an engine on this machine, at the URL the app is published on (what the user calls,
        and a few milliseconds); elsewhere inside the container, like ``builder verify``."""
        assert self._docker is not None and self._runtime is not None
        if self._docker.where.startswith("unix://") or engine_host(self._docker) in _LOCAL_HOSTS:
            url = self._url(settings)
            host, _, port = url[len("http://") :].rpartition(":")
            return probe(host, int(port), endpoint, timeout=2.0)
        return self._runtime.probe(container_id, settings.port, endpoint)

    def _start_and_wait(self, container_id: str, settings: VerifySettings, *, start: bool = True) -> str | None:
        """Start (unless already) and wait for the ready/health checks; None when ready, else why not."""
        assert self._docker is not None and self._runtime is not None
        began = time.monotonic()
        try:
            if start:
                self._docker.start_container(container_id)
            stages = [settings.readycheck_endpoint] + (
                [settings.healthcheck_endpoint] if settings.healthcheck_endpoint else []
            )
            last = "no check ran yet"
            while stages:
                state = self._runtime.state(container_id)
                if not state.running:
                    why = f"exited with code {state.exit_code}" + (f" ({state.error})" if state.error else "")
                    return f"the app {why} after {time.monotonic() - began:.1f}s, before it became ready"
                outcome = self._probe(container_id, settings, stages[0])
                if outcome.ok:
                    stages.pop(0)
                    continue
                last = outcome.detail
                if time.monotonic() - began >= settings.timeout:
                    return f"not ready after {settings.timeout:g}s (last check: {last})"
                time.sleep(min(settings.interval, 0.05))
        except BuilderError as exc:
            return exc.message
        return None

    def _logs(self, container_id: str) -> tuple[str, ...]:
        assert self._docker is not None
        try:
            return tuple(self._docker.container_logs(container_id, tail=LOG_TAIL))
        except BuilderError as exc:
            return (f"(could not read the container's logs: {exc})",)

    def _remove(self, container_id: str) -> None:
        assert self._docker is not None
        with suppress(BuilderError):
            self._docker.remove_container(container_id)
        self._started.discard(container_id)

    def _follow(self, container_id: str, since: int) -> None:
        """Stream the container's log lines as :class:`DevAppLog` until it stops or is replaced."""
        assert self._docker is not None
        self._log_generation += 1
        generation = self._log_generation
        docker = self._docker

        def pump() -> None:
            for line in docker.follow_logs(container_id, since=since):
                if generation != self._log_generation:
                    return
                self._emit(DevAppLog(line))

        threading.Thread(target=pump, name="builder-dev-logs", daemon=True).start()

    # -- sync ------------------------------------------------------------------------------------

    def _files_dest(self) -> str | None:
        """Where the ``files`` step puts the project in the image (planned once per config)."""
        from builder.plan.make import make_plan
        from builder.plan.model import StepKind

        held = self._dest
        if held is not None and held[0] is self.config:
            return held[1]
        try:
            from builder.deps import resolve_dependencies

            plan = make_plan(self.config, resolve_dependencies(self.config, use_lock=True))
        except BuilderError:
            return None
        step = plan.get(StepKind.FILES)
        dest = getattr(step.inputs, "dest", None) if step is not None else None
        self._dest = (self.config, dest if isinstance(dest, str) else None)
        return self._dest[1]

    def _can_sync(self) -> bool:
        runtime = self.config.runtime
        return self._current is not None and not (runtime is not None and runtime.dockerfile_path)

    def _sync(self, edited: float, changed: tuple[str, ...]) -> None:
        """Copy the changed files into the running container, restart its app, rebuild in the background."""
        assert self._docker is not None
        docker, current = self._docker, self._current
        dest = self._files_dest()
        if current is None or dest is None:
            image = self._build()
            if image is not None:
                self._replace(image, edited)
            return
        present = [p for p in changed if os.path.lexists(self.root / p)]
        gone = [p for p in changed if p not in present]
        self._emit(
            DevPlanned(
                f"sync: {len(changed)} file(s) copied into the running container, app restarted; "
                "the image rebuilds in the background",
                (),
                "files changed",
                sync=True,
            )
        )
        try:
            if present:
                docker.put_archive(current, dest, files_tar(self.root, present))
            if gone:
                docker.exec_in(current, ["rm", "-f", "--", *(f"{dest.rstrip('/')}/{p}" for p in gone)])
            since = int(time.time())
            docker.restart_container(current)
        except BuilderError as exc:
            self._emit(DevFailed("start", f"sync failed: {exc.message}", (), exc.hint, serving=False))
            return
        failure = self._start_and_wait(current, self._settings(), start=False)
        if failure is not None:
            logs = self._logs(current)
            self._emit(DevFailed("start", failure, logs, _start_hint(logs), serving=False))
        else:
            self._follow(current, since=since)
            self._emit(
                DevReady(self._url(self._settings()), max(0.0, time.time() - edited), self.tag, current, synced=True)
            )
        self._background = threading.Thread(target=self._build, name="builder-dev-rebuild", daemon=True)
        self._background.start()


def _start_hint(logs: tuple[str, ...]) -> str:
    if not any(line.strip() for line in logs):
        return "the app printed nothing; fix the edit and save again"
    return "the app's last log lines are shown above; fix the edit and save again"


class DevHandle:
    """A running :func:`dev` loop: :meth:`wait_ready`, :attr:`url`, :meth:`stop`."""

    def __init__(self, loop: DevLoop) -> None:
        self.loop = loop
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="builder-dev", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.loop.run(self._stop)
        except BaseException as exc:
            self.error = exc

    @property
    def url(self) -> str | None:
        """Where the app answers (None until it first became ready)."""
        return self.loop.url

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the app first answers (True) or ``timeout`` passes / the loop ended (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.loop.ready.wait(0.1):
            if not self._thread.is_alive() or (deadline is not None and time.monotonic() > deadline):
                return self.loop.ready.is_set()
        return True

    def stop(self, timeout: float | None = 60.0) -> None:
        """End the loop and remove its containers; re-raise what ended the loop early, if anything."""
        self._stop.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> DevHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dev(
    path: str | os.PathLike[str] = ".",
    *,
    port: int | None = None,
    sync: bool = False,
    engine: str | None = None,
    tls: Any = None,
    connect_timeout: float | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
    network: str | None = None,
    tag: str | None = None,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[Any], None] | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> DevHandle:
    """Start a dev loop for the project at ``path`` in a background thread and return its handle.

    ``on_event`` receives :data:`DevEvent` values and the build's engine events (from the loop's
    threads). ``env`` is the app's run-time environment (never printed or stored). Stop it with
    ``handle.stop()`` (or use the handle as a context manager): every container it started is removed.
    Raises ConfigError at once for an invalid project.
    """
    options = DevOptions(
        port=port,
        sync=sync,
        engine=engine,
        tls=tls,
        connect_timeout=connect_timeout,
        cache_dir=cache_dir,
        ca_bundle=ca_bundle,
        network=network,
        tag=tag,
        env=env,
        poll_interval=poll_interval,
    )
    return DevHandle(DevLoop(path, options, on_event))
