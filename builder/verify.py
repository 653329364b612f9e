"""Startup verification: run the built image and wait until the app answers.

:func:`verify_image` creates and starts a container from the image through the
Docker Engine API, then polls, every ``interval`` seconds until ``timeout``:

1. the container is still running (an early exit fails at once);
2. ``readycheck_endpoint`` with an HTTP GET on ``127.0.0.1:<port>`` (any 2xx
   is ready), or a TCP connect to the port when the endpoint is empty;
3. then ``healthcheck_endpoint`` the same way (skipped when empty).

The checks run *inside* the container's network namespace (the engine's exec API,
:mod:`builder.verify_probe`), so a remote engine verifies exactly like a local one and a
busy port on the engine's host is no obstacle. The container gets the daemon's ``bridge``
network when it has one, else none; it runs with every capability dropped (plus
``NET_BIND_SERVICE`` for a port below 1024), ``no-new-privileges``, a pids limit and the
memory and CPU of ``[cerebrium.hardware]`` when given.

On timeout or early exit it raises :class:`~builder.errors.VerifyFailed`
(exit 5) carrying the container's last 100 log lines.  The container is
always removed (``force``), whatever happens: Ctrl-C, and SIGTERM / SIGHUP too
(they are turned into an exception while verify waits). Containers that earlier
runs left behind (labelled :data:`VERIFY_LABEL`; their builder process is gone,
or they are older than the longest possible verify) are removed first.

The timeout is ``deployment_initialization_timeout`` (60..830 s).  For tests
only, ``BUILDER_VERIFY_TIMEOUT`` (seconds, may be below 60) overrides it.

>>> settings = VerifySettings(port=8000, readycheck_endpoint="/ready", timeout=60)
>>> result = verify_image("app:latest", settings, docker=DockerAPI.unix("/var/run/docker.sock"))  # doctest: +SKIP
>>> result.seconds_to_ready  # doctest: +SKIP
1.4
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from builder.config.model import Config
from builder.engines.buildkit.address import START_HINT, candidate_addresses
from builder.engines.docker_api import ContainerState, DockerAPI
from builder.errors import BuilderError, ConfigError, EngineError, EngineUnavailable, VerifyFailed
from builder.verify_probe import ExecProber
from builder.verify_start import start_failure

if TYPE_CHECKING:
    from builder.engines.buildkit.tls import TLSConfig

#: Label put on every verification container (tests list containers by it).
VERIFY_LABEL = "dev.builder.verify"
#: Which builder process started a verification container: ``<hostname>:<pid>``.
OWNER_LABEL = "dev.builder.verify.owner"
#: A verification container older than this (seconds) is a leftover whoever started it.
LEFTOVER_AGE = 830 + 120
DEFAULT_PIDS_LIMIT = 4096
#: Test-only override of the timeout, in seconds (may be below the config's minimum of 60).
TIMEOUT_ENV = "BUILDER_VERIFY_TIMEOUT"
TIMEOUT_RANGE = (60, 830)
LOG_TAIL = 100
DEFAULT_PORT = 8000
_PROBE_TIMEOUT = 2.0


class VerifyUnavailable(VerifyFailed):
    """The engine cannot run containers (a standalone buildkitd): nothing to verify with."""


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """What to probe and for how long (see :meth:`from_config` and :meth:`from_image`)."""

    port: int
    readycheck_endpoint: str = ""
    healthcheck_endpoint: str = ""
    timeout: float = 600.0
    interval: float = 0.5
    host: str = "127.0.0.1"
    memory_bytes: int | None = None
    nano_cpus: int | None = None
    pids_limit: int = DEFAULT_PIDS_LIMIT
    #: The app's run-time environment (``--env`` / ``--env-file``): secrets, so never in a repr.
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: Config, *, timeout: float | None = None) -> VerifySettings:
        """Port and endpoints of the app's runtime (the default runtime: ``/ready``, ``/health``); timeout from the deployment."""
        ready, health = config.endpoints
        hardware = config.hardware
        return cls(
            port=config.port,
            readycheck_endpoint=ready,
            healthcheck_endpoint=health,
            timeout=resolve_timeout(config.deployment.deployment_initialization_timeout, timeout),
            memory_bytes=_memory_bytes(hardware.memory),
            nano_cpus=_nano_cpus(hardware.cpu),
        )

    @classmethod
    def from_image(cls, image_config: Mapping[str, Any], *, timeout: float | None = None) -> VerifySettings:
        """Settings read back from a built image's config (its ``ai.cerebrium.*`` labels and ports)."""
        labels = image_config.get("Labels") or {}
        ports = sorted(p for p in (image_config.get("ExposedPorts") or {}) if p.endswith("/tcp"))
        port = int(ports[0].split("/")[0]) if ports else DEFAULT_PORT
        configured = labels.get("ai.cerebrium.initialization_timeout", "")
        base = int(configured) if configured.isdigit() else 600
        return cls(
            port=port,
            readycheck_endpoint=labels.get("ai.cerebrium.readycheck_endpoint", ""),
            healthcheck_endpoint=labels.get("ai.cerebrium.healthcheck_endpoint", ""),
            timeout=resolve_timeout(base, timeout),
            memory_bytes=_memory_bytes(_number(labels.get("ai.cerebrium.hardware.memory"))),
            nano_cpus=_nano_cpus(_number(labels.get("ai.cerebrium.hardware.cpu"))),
        )


def _number(text: object) -> float | None:
    try:
        return float(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _memory_bytes(gigabytes: float | None) -> int | None:
    """``[cerebrium.hardware] memory`` (GB) as a container memory limit in bytes."""
    return int(gigabytes * 1024**3) if gigabytes and gigabytes > 0 else None


def _nano_cpus(cpus: float | None) -> int | None:
    return int(cpus * 1e9) if cpus and cpus > 0 else None


def resolve_timeout(configured: int, requested: float | None = None, env: Mapping[str, str] | None = None) -> float:
    """The timeout in force: ``BUILDER_VERIFY_TIMEOUT`` (tests), else ``requested``, else ``configured``.

    ``requested`` (``--timeout``) must lie in the config's range, 60..830.
    """
    environ = os.environ if env is None else env
    override = environ.get(TIMEOUT_ENV, "").strip()
    if override:
        try:
            value = float(override)
        except ValueError:
            value = -1.0
        if not 0 < value <= TIMEOUT_RANGE[1]:
            raise ConfigError(
                f"{TIMEOUT_ENV}={override!r} is not a number of seconds in (0, 830]", key_path=TIMEOUT_ENV
            )
        return value
    if requested is not None:
        low, high = TIMEOUT_RANGE
        if not low <= requested <= high:
            raise ConfigError(
                f"{requested:g} is out of range",
                key_path="--timeout",
                hint=f"deployment_initialization_timeout allows {low}..{high} seconds",
            )
        return float(requested)
    return float(configured)


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of one check: ``ok`` and what was seen (``GET /ready -> 200``)."""

    ok: bool
    detail: str


def probe(host: str, port: int, endpoint: str, timeout: float = _PROBE_TIMEOUT) -> Probe:
    """HTTP GET ``endpoint`` (2xx = ok), or a TCP connect when ``endpoint`` is empty."""
    if not endpoint:
        try:
            socket.create_connection((host, port), timeout).close()
        except OSError as exc:
            return Probe(False, f"TCP {host}:{port}: {exc.strerror or exc}")
        return Probe(True, f"TCP {host}:{port} accepted")
    path = endpoint if endpoint.startswith("/") else "/" + endpoint
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "builder-verify"})
        response = conn.getresponse()
        response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        return Probe(False, f"GET {path}: {getattr(exc, 'strerror', None) or exc}")
    finally:
        conn.close()
    return Probe(200 <= response.status < 300, f"GET {path} -> {response.status}")


class ContainerRuntime(Protocol):
    """The seam :func:`verify_image` runs containers through (Docker API in production)."""

    where: str

    def run(self, image: str, settings: VerifySettings) -> str: ...
    def state(self, container_id: str) -> ContainerState: ...
    def probe(self, container_id: str, port: int, endpoint: str) -> Probe: ...
    def logs(self, container_id: str, tail: int) -> list[str]: ...
    def remove(self, container_id: str) -> None: ...
    def remove_leftovers(self) -> list[str]: ...


def owner_id() -> str:
    """This process as a verification container's owner (``<hostname>:<pid>``)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def container_spec(image: str, settings: VerifySettings, network: str) -> dict[str, Any]:
    """The ``POST /containers/create`` body for a verification container (pure)."""
    host_config: dict[str, Any] = {
        "NetworkMode": network,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        "PidsLimit": settings.pids_limit,
    }
    if settings.port < 1024:
        host_config["CapAdd"] = ["NET_BIND_SERVICE"]
    if settings.memory_bytes:
        host_config["Memory"] = settings.memory_bytes
    if settings.nano_cpus:
        host_config["NanoCpus"] = settings.nano_cpus
    return {
        "Image": image,
        "Labels": {VERIFY_LABEL: "1", OWNER_LABEL: owner_id()},
        "Env": [f"PORT={settings.port}", *(f"{k}={v}" for k, v in sorted(settings.env.items()))],
        "HostConfig": host_config,
    }


def is_leftover(container: Mapping[str, Any], now: float, host: str, alive: Callable[[int], bool]) -> bool:
    """Whether a labelled verification container (``GET /containers/json`` entry) was left behind."""
    labels = container.get("Labels") or {}
    owner_host, _, pid = str(labels.get(OWNER_LABEL, "")).rpartition(":")
    if owner_host == host and pid.isdigit():
        return not alive(int(pid))
    created = container.get("Created")
    return isinstance(created, int | float) and now - created > LEFTOVER_AGE


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DockerRuntime:
    """Containers on a Docker daemon, labelled :data:`VERIFY_LABEL`, probed from inside."""

    def __init__(self, api: DockerAPI) -> None:
        self.api = api
        self.where = api.where
        self._prober = ExecProber(api.exec_in)

    def run(self, image: str, settings: VerifySettings) -> str:
        network = "bridge" if self.api.has_network("bridge") else "none"
        spec = container_spec(image, settings, network)
        container_id = self.api.create_container(spec, name=f"builder-verify-{uuid.uuid4().hex[:12]}")
        try:
            self.api.start_container(container_id)
        except EngineError as exc:  # e.g. the entrypoint is not in the image: the app's failure (exit 5), in words
            with suppress(BuilderError):
                self.api.remove_container(container_id)
            raise start_failure(image, exc) from exc
        except BaseException:
            self.api.remove_container(container_id)
            raise
        return container_id

    def state(self, container_id: str) -> ContainerState:
        return self.api.container_state(container_id)

    def probe(self, container_id: str, port: int, endpoint: str) -> Probe:
        try:
            ok, detail = self._prober(container_id, port, endpoint)
        except BuilderError:
            if self.api.container_state(container_id).running:
                raise
            return Probe(False, "the container stopped")  # the next poll reports the exit and its logs
        return Probe(ok, detail)

    def logs(self, container_id: str, tail: int) -> list[str]:
        return self.api.container_logs(container_id, tail=tail)

    def remove(self, container_id: str) -> None:
        self.api.remove_container(container_id)

    def remove_leftovers(self) -> list[str]:
        """Remove verification containers earlier runs left behind; return their ids."""
        now, host = time.time(), socket.gethostname()
        gone = []
        for container in self.api.list_containers(label=VERIFY_LABEL):
            if is_leftover(container, now, host, pid_alive):
                self.api.remove_container(str(container["Id"]))
                gone.append(str(container["Id"]))
        return gone


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """A verified image: how long it took to answer and what answered."""

    image: str
    ready: bool
    seconds_to_ready: float
    checks: tuple[str, ...] = ()
    logs_tail: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready mapping (``builder verify --format json``)."""
        return {
            "image": self.image,
            "ready": self.ready,
            "seconds_to_ready": round(self.seconds_to_ready, 3),
            "checks": list(self.checks),
            "logs_tail": list(self.logs_tail),
        }


class VerifyInterrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while verify waited (raised so the container is removed)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`VerifyInterrupted` like Ctrl-C raises KeyboardInterrupt.

    Only in the main thread (where Python delivers signals); the previous handlers come back after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise VerifyInterrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def verify_image(
    image: str,
    settings: VerifySettings,
    *,
    docker: DockerAPI | None = None,
    runtime: ContainerRuntime | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyResult:
    """Start ``image``, wait for its ready/health checks, always remove the container.

    Pass ``docker`` (a :class:`DockerAPI`) or any ``runtime`` implementing
    :class:`ContainerRuntime`.  Raises VerifyFailed on timeout or early exit, and
    :class:`VerifyInterrupted` (a KeyboardInterrupt) on SIGTERM/SIGHUP, after removing the container.
    """
    if runtime is None:
        if docker is None:
            raise ValueError("verify_image needs docker= or runtime=")
        runtime = DockerRuntime(docker)
    with signals_interrupt():
        runtime.remove_leftovers()
        started = clock()
        container_id = ""
        try:
            container_id = runtime.run(image, settings)
            checks = _wait_ready(image, container_id, settings, runtime, clock, sleep, started)
            elapsed = clock() - started
            result = VerifyResult(image, True, elapsed, checks, tuple(_safe_logs(runtime, container_id, 20)))
        except BaseException:
            if container_id:
                with suppress(BuilderError):  # removal is still attempted; the original failure is reported
                    runtime.remove(container_id)
            raise
        runtime.remove(container_id)
    return result


def docker_for_engine(
    engine: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    tls: TLSConfig | None = None,
    connect_timeout: float | None = None,
) -> DockerAPI:
    """The Docker daemon that runs the engine at ``engine`` / ``BUILDKIT_HOST`` / auto-detect.

    Raises :class:`VerifyUnavailable` when the engine is a standalone buildkitd
    (it has no container runtime) and ``EngineUnavailable`` when nothing answers.
    """
    from builder.engines.buildkit.client import connect_timeout_from_env
    from builder.engines.buildkit.tls import resolve_tls

    environ = os.environ if env is None else env
    timeout = connect_timeout if connect_timeout is not None else connect_timeout_from_env(environ)
    tried: list[str] = []
    for address in candidate_addresses(engine, environ):
        if address.kind == "tcp":
            raise _unavailable(str(address))
        api = DockerAPI(
            path=address.path,
            host=address.host,
            port=address.port,
            tls=resolve_tls(address, tls, environ),
            connect_timeout=timeout,
        )
        if address.host is not None:
            api.request("GET", "/_ping", timeout=timeout)  # a refused port or a TLS failure, in words
            return api
        if api.ping():
            return api
        tried.append(str(address))
        if address.kind == "unix" and address.path and os.path.exists(address.path):
            raise _unavailable(str(address))
    raise EngineUnavailable(
        "no engine found to run the image (tried " + ", ".join(tried) + ")", tried=tried, hint=START_HINT
    )


def _unavailable(where: str) -> VerifyUnavailable:
    return VerifyUnavailable(
        f"verification unavailable: the engine at {where} is a standalone buildkitd, which cannot run containers",
        hint="build on dockerd (e.g. --engine docker:///var/run/docker.sock) to verify startup, or leave out --verify",
    )


def _stages(settings: VerifySettings) -> tuple[str, ...]:
    stages = (settings.readycheck_endpoint,)
    return stages + ((settings.healthcheck_endpoint,) if settings.healthcheck_endpoint else ())


def _wait_ready(
    image: str,
    container_id: str,
    settings: VerifySettings,
    runtime: ContainerRuntime,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    started: float,
) -> tuple[str, ...]:
    stages = _stages(settings)
    passed: list[str] = []
    last = "no check ran yet"
    while True:
        state = runtime.state(container_id)
        if not state.running:
            why = f"exited with code {state.exit_code}" + (f" ({state.error})" if state.error else "")
            raise _failed(
                f"{image}: the app {why} after {clock() - started:.1f}s, before it became ready",
                runtime,
                container_id,
                hint="the app exited: its last log lines above show why",
            )
        outcome = runtime.probe(container_id, settings.port, stages[len(passed)])
        if outcome.ok:
            passed.append(outcome.detail)
            if len(passed) == len(stages):
                return tuple(passed)
            continue
        last = outcome.detail
        if clock() - started >= settings.timeout:
            raise _failed(f"{image}: not ready after {settings.timeout:g}s (last check: {last})", runtime, container_id)
        sleep(settings.interval)


_SILENT_HINT = (
    "check that the entrypoint starts a server that stays up and listens on the port "
    "(run the image with `docker run` to watch it)"
)
_SLOW_HINT = (
    "the app's last log lines are shown above; raise deployment_initialization_timeout if it only needs longer to start"
)


def _failed(message: str, runtime: ContainerRuntime, container_id: str, hint: str = _SLOW_HINT) -> VerifyFailed:
    logs = _safe_logs(runtime, container_id, LOG_TAIL)
    if not logs:  # no "log lines above" to point at
        return VerifyFailed(f"{message}; the app printed nothing", hint=_SILENT_HINT)
    return VerifyFailed(message, logs=logs, hint=hint)


def _safe_logs(runtime: ContainerRuntime, container_id: str, tail: int) -> list[str]:
    try:
        return runtime.logs(container_id, tail)
    except BuilderError as exc:
        return [f"(could not read the container's logs: {exc})"]
