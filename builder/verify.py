"""Startup verification: run the built image and wait until the app answers.

:func:`verify_image` creates and starts a container from the image through the
Docker Engine API (host networking: the local dockerd runs without a bridge),
then polls, every ``interval`` seconds until ``timeout``:

1. the container is still running (an early exit fails at once);
2. ``readycheck_endpoint`` with an HTTP GET on ``127.0.0.1:<port>`` (any 2xx
   is ready), or a TCP connect to the port when the endpoint is empty;
3. then ``healthcheck_endpoint`` the same way (skipped when empty).

On timeout or early exit it raises :class:`~builder.errors.VerifyFailed`
(exit 5) carrying the container's last 100 log lines.  The container is
always removed (``force``), whatever happens.

The timeout is ``deployment_initialization_timeout`` (60..830 s).  For tests
only, ``BUILDER_VERIFY_TIMEOUT`` (seconds, may be below 60) overrides it.

>>> settings = VerifySettings(port=8000, readycheck_endpoint="/ready", timeout=60)
>>> result = verify_image("app:latest", settings, docker=DockerAPI.unix("/var/run/docker.sock"))  # doctest: +SKIP
>>> result.seconds_to_ready  # doctest: +SKIP
1.4
"""

from __future__ import annotations

import http.client
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from builder.config.model import Config
from builder.engines.buildkit.address import START_HINT, candidate_addresses
from builder.engines.docker_api import ContainerState, DockerAPI
from builder.errors import BuilderError, ConfigError, EngineError, EngineUnavailable, VerifyFailed
from builder.verify_start import start_failure

#: Label put on every verification container (tests list containers by it).
VERIFY_LABEL = "dev.builder.verify"
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

    @classmethod
    def from_config(cls, config: Config, *, timeout: float | None = None) -> VerifySettings:
        """Port and endpoints of the app's runtime (the default runtime: ``/ready``, ``/health``); timeout from the deployment."""
        ready, health = config.endpoints
        return cls(
            port=config.port,
            readycheck_endpoint=ready,
            healthcheck_endpoint=health,
            timeout=resolve_timeout(config.deployment.deployment_initialization_timeout, timeout),
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
        )


def resolve_timeout(configured: int, requested: float | None = None,
                    env: Mapping[str, str] | None = None) -> float:
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
            raise ConfigError(f"{TIMEOUT_ENV}={override!r} is not a number of seconds in (0, 830]",
                              key_path=TIMEOUT_ENV)
        return value
    if requested is not None:
        low, high = TIMEOUT_RANGE
        if not low <= requested <= high:
            raise ConfigError(f"{requested:g} is out of range", key_path="--timeout",
                              hint=f"deployment_initialization_timeout allows {low}..{high} seconds")
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
    shares_host_network: bool

    def run(self, image: str, settings: VerifySettings) -> str: ...
    def state(self, container_id: str) -> ContainerState: ...
    def logs(self, container_id: str, tail: int) -> list[str]: ...
    def remove(self, container_id: str) -> None: ...


class DockerRuntime:
    """Containers on a Docker daemon, with host networking and the :data:`VERIFY_LABEL` label."""

    shares_host_network = True

    def __init__(self, api: DockerAPI) -> None:
        self.api = api
        self.where = api.where

    def run(self, image: str, settings: VerifySettings) -> str:
        spec = {
            "Image": image,
            "Labels": {VERIFY_LABEL: "1"},
            "Env": [f"PORT={settings.port}"],
            "HostConfig": {"NetworkMode": "host"},
        }
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

    def logs(self, container_id: str, tail: int) -> list[str]:
        return self.api.container_logs(container_id, tail=tail)

    def remove(self, container_id: str) -> None:
        self.api.remove_container(container_id)


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
        return {"image": self.image, "ready": self.ready, "seconds_to_ready": round(self.seconds_to_ready, 3),
                "checks": list(self.checks), "logs_tail": list(self.logs_tail)}


ProbeFn = Callable[[str, int, str, float], Probe]


def verify_image(
    image: str,
    settings: VerifySettings,
    *,
    docker: DockerAPI | None = None,
    runtime: ContainerRuntime | None = None,
    probe_fn: ProbeFn = probe,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyResult:
    """Start ``image``, wait for its ready/health checks, always remove the container.

    Pass ``docker`` (a :class:`DockerAPI`) or any ``runtime`` implementing
    :class:`ContainerRuntime`.  Raises VerifyFailed on timeout or early exit.
    """
    if runtime is None:
        if docker is None:
            raise ValueError("verify_image needs docker= or runtime=")
        runtime = DockerRuntime(docker)
    if runtime.shares_host_network:
        busy = probe_fn(settings.host, settings.port, "", 0.5)
        if busy.ok:
            raise VerifyFailed(
                f"cannot verify {image}: something on this host already listens on {settings.host}:{settings.port}",
                hint="the app runs with host networking; stop the process using that port and retry",
            )
    started = clock()
    container_id = runtime.run(image, settings)
    try:
        checks = _wait_ready(image, container_id, settings, runtime, probe_fn, clock, sleep, started)
        elapsed = clock() - started
        result = VerifyResult(image, True, elapsed, checks, tuple(_safe_logs(runtime, container_id, 20)))
    except BaseException:
        with suppress(BuilderError):  # removal is still attempted; the original failure is what gets reported
            runtime.remove(container_id)
        raise
    runtime.remove(container_id)
    return result


def docker_for_engine(engine: str | None = None, env: Mapping[str, str] | None = None) -> DockerAPI:
    """The Docker daemon that runs the engine at ``engine`` / ``BUILDKIT_HOST`` / auto-detect.

    Raises :class:`VerifyUnavailable` when the engine is a standalone buildkitd
    (it has no container runtime) and ``EngineUnavailable`` when nothing answers.
    """
    environ = os.environ if env is None else env
    tried: list[str] = []
    for address in candidate_addresses(engine, environ):
        if address.kind == "tcp":
            raise _unavailable(str(address))
        api = DockerAPI(path=address.path, host=address.host, port=address.port)
        if api.ping():
            return api
        tried.append(str(address))
        if address.kind == "unix" and address.path and os.path.exists(address.path):
            raise _unavailable(str(address))
    raise EngineUnavailable("no engine found to run the image (tried " + ", ".join(tried) + ")",
                            tried=tried, hint=START_HINT)


def _unavailable(where: str) -> VerifyUnavailable:
    return VerifyUnavailable(
        f"verification unavailable: the engine at {where} is a standalone buildkitd, which cannot run containers",
        hint="build on dockerd (e.g. --engine docker:///var/run/docker.sock) to verify startup, "
             "or leave out --verify",
    )


def _stages(settings: VerifySettings) -> tuple[str, ...]:
    stages = (settings.readycheck_endpoint,)
    return stages + ((settings.healthcheck_endpoint,) if settings.healthcheck_endpoint else ())


def _wait_ready(image: str, container_id: str, settings: VerifySettings, runtime: ContainerRuntime,
                probe_fn: ProbeFn, clock: Callable[[], float], sleep: Callable[[float], None],
                started: float) -> tuple[str, ...]:
    stages = _stages(settings)
    passed: list[str] = []
    last = "no check ran yet"
    while True:
        state = runtime.state(container_id)
        if not state.running:
            why = f"exited with code {state.exit_code}" + (f" ({state.error})" if state.error else "")
            raise _failed(f"{image}: the app {why} after {clock() - started:.1f}s, before it became ready",
                          runtime, container_id, hint="the app exited: its last log lines above show why")
        outcome = probe_fn(settings.host, settings.port, stages[len(passed)], _PROBE_TIMEOUT)
        if outcome.ok:
            passed.append(outcome.detail)
            if len(passed) == len(stages):
                return tuple(passed)
            continue
        last = outcome.detail
        if clock() - started >= settings.timeout:
            raise _failed(f"{image}: not ready after {settings.timeout:g}s (last check: {last})",
                          runtime, container_id)
        sleep(settings.interval)


_SILENT_HINT = ("check that the entrypoint starts a server that stays up and listens on the port "
                "(run the image with `docker run` to watch it)")
_SLOW_HINT = ("the app's last log lines are shown above; raise deployment_initialization_timeout "
              "if it only needs longer to start")


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
