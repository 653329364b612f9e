"""Open a connection to a BuildKit engine: :func:`open_engine` → :class:`EngineClient`.

>>> with open_engine("docker:///var/run/docker.sock") as engine:  # doctest: +SKIP
...     print(engine.info().capabilities.describe())
...     engine.control.ListWorkers(control_pb2.ListWorkersRequest())

The address comes from the argument, else ``BUILDKIT_HOST``, else the auto-detect order of
:func:`builder.engines.buildkit.address.candidate_addresses`. Each candidate is tried with
a short ``ListWorkers``; the first that answers wins, and if none does,
``EngineUnavailable`` lists every address tried and why.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Self

import grpc

from builder.engines.buildkit._pb import control_pb2, control_pb2_grpc, gateway_pb2_grpc
from builder.engines.buildkit.address import START_HINT, EngineAddress, candidate_addresses
from builder.engines.buildkit.caps import Capabilities, EngineKind, detect_capabilities
from builder.engines.buildkit.connect import (
    UpgradeRelay,
    check_docker,
    docker_get_json,
    make_channel,
    open_upgraded,
    ping_docker,
)
from builder.engines.buildkit.errors import engine_errors, map_rpc_error
from builder.engines.buildkit.tls import DEFAULT_CONNECT_TIMEOUT, TLSConfig, open_tls, resolve_tls
from builder.errors import ConfigError, EngineError, EngineUnavailable

_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One BuildKit worker: its id, platforms (``os/arch[/variant]``) and labels."""

    id: str
    platforms: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, object]:
        """JSON-ready mapping."""
        return {"id": self.id, "platforms": list(self.platforms), "labels": dict(self.labels)}


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What ``builder engine info`` shows: where the engine is, what it is, what it can do."""

    address: str
    kind: EngineKind
    workers: tuple[WorkerInfo, ...]
    capabilities: Capabilities

    @property
    def buildkit_version(self) -> str | None:
        """BuildKit's version when the engine reports it (BuildKit >= 0.11)."""
        return self.capabilities.buildkit_version

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every platform any worker supports, in first-seen order."""
        seen: dict[str, None] = {}
        for w in self.workers:
            seen.update(dict.fromkeys(w.platforms))
        return tuple(seen)

    def to_json(self) -> dict[str, object]:
        """A stable JSON-ready mapping (the ``--format json`` output)."""
        return {
            "address": self.address,
            "kind": self.kind,
            "buildkit_version": self.buildkit_version,
            "daemon_version": self.capabilities.daemon_version,
            "platforms": list(self.platforms),
            "workers": [w.to_json() for w in self.workers],
            "capabilities": self.capabilities.to_json(),
        }


def _platform_text(p: object) -> str:
    os_ = getattr(p, "OS", "")
    arch = getattr(p, "Architecture", "")
    variant = getattr(p, "Variant", "")
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")


class EngineClient:
    """A live connection to one engine.

    ``control`` and ``bridge`` are the gRPC stubs for ``moby.buildkit.v1.Control`` and
    ``moby.buildkit.v1.frontend.LLBBridge``; ``kind`` is ``"buildkitd"`` or ``"dockerd"``;
    ``docker_socket`` is the daemon's address for dockerd (for ``open_raw_stream`` and the
    Docker API). Capabilities are detected on first use and cached for the connection.
    Close it (or use it as a context manager) to stop its relay.
    """

    def __init__(
        self,
        address: EngineAddress,
        kind: EngineKind,
        channel: grpc.Channel,
        relay: UpgradeRelay | None = None,
        *,
        tls: TLSConfig | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.address = address
        #: The TLS settings in force for a TCP engine (None on a unix socket).
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.kind: EngineKind = kind
        self.channel = channel
        self.control = control_pb2_grpc.ControlStub(channel)
        self.bridge = gateway_pb2_grpc.LLBBridgeStub(channel)
        self._relay = relay
        self._capabilities: Capabilities | None = None
        self._caps_lock = threading.Lock()
        self._closed = False

    @property
    def docker_socket(self) -> EngineAddress | None:
        """The dockerd endpoint (unix path or tcp) for dockerd engines, else None."""
        if self.kind != "dockerd":
            return None
        return EngineAddress("docker", path=self.address.path, host=self.address.host, port=self.address.port)

    def open_raw_stream(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> tuple[socket.socket, bytes]:
        """Open a fresh dockerd connection upgraded to h2c at ``path`` (e.g. ``/session``).

        Returns the socket and any bytes the daemon sent right after ``101``. The caller
        owns the socket. Only for dockerd engines.
        """
        docker = self.docker_socket
        if docker is None:
            raise EngineError(f"{path}: raw upgraded streams exist only on dockerd, not on {self.address}")
        with engine_errors(str(self.address), f"POST {path}"):
            return open_upgraded(docker, path, headers, self.connect_timeout, self.tls)

    @property
    def capabilities(self) -> Capabilities:
        """The engine's capabilities (detected once, on first access)."""
        with self._caps_lock:  # one probe per connection, even with concurrent callers
            if self._capabilities is None:
                self._capabilities = self._detect()
            return self._capabilities

    def _detect(self) -> Capabilities:
        # dockerd's /version is its own HTTP round trip: ask it while the gRPC probes run.
        found: list[str | None] = []
        thread = None
        if self.docker_socket is not None:
            thread = threading.Thread(
                target=lambda: found.append(self._daemon_version()), name="builder-daemon-version", daemon=True
            )
            thread.start()
        try:
            caps = detect_capabilities(self.control, self.bridge, address=str(self.address), kind=self.kind)
        finally:
            if thread is not None:
                thread.join()
        return replace(caps, daemon_version=found[0]) if found else caps

    def _daemon_version(self) -> str | None:
        docker = self.docker_socket
        if docker is None:
            return None
        try:
            body = json.loads(docker_get_json(docker, "/version", self.connect_timeout, self.tls))
        except (OSError, EngineError, ValueError):
            return None
        version = body.get("Version") if isinstance(body, dict) else None
        return str(version) if version else None

    def workers(self) -> tuple[WorkerInfo, ...]:
        """The engine's workers (``Control/ListWorkers``)."""
        with engine_errors(str(self.address), "ListWorkers"):
            response = self.control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=30)
        return tuple(
            WorkerInfo(
                id=r.ID,
                platforms=tuple(_platform_text(p) for p in r.platforms),
                labels=tuple(sorted(r.Labels.items())),
            )
            for r in response.record
        )

    def info(self) -> EngineInfo:
        """Workers, platforms, BuildKit version and capabilities in one value."""
        return EngineInfo(
            address=str(self.address), kind=self.kind, workers=self.workers(), capabilities=self.capabilities
        )

    def close(self) -> None:
        """Close the channel and the dockerd relay (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.channel.close()
        if self._relay is not None:
            self._relay.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _probe(client: EngineClient, timeout: float = _PROBE_TIMEOUT) -> None:
    """Fail unless the engine answers a cheap call."""
    client.control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=timeout, wait_for_ready=False)


def _diagnose_tls(address: EngineAddress, tls: TLSConfig, timeout: float) -> None:
    """Raise the TLS failure in words when a handshake with a tcp:// buildkitd fails (else return)."""
    assert address.host is not None and address.port is not None
    try:
        sock = socket.create_connection((address.host.strip("[]"), address.port), timeout=timeout)
    except OSError:
        return  # the gRPC error already says the port is closed or unreachable
    open_tls(sock, address, tls, timeout).close()


def _connect_one(address: EngineAddress, tls: TLSConfig | None, timeout: float) -> EngineClient:
    kind: EngineKind = "buildkitd"
    if address.kind == "docker":
        if address.host is not None:
            check_docker(address, timeout, tls)  # says why: refused, timed out, which TLS failure
        elif not ping_docker(address):
            raise EngineUnavailable(f"no Docker daemon answers at {address}", tried=(str(address),))
        kind = "dockerd"
    elif address.kind == "unix":
        if not os.path.exists(address.path or ""):
            raise EngineUnavailable(f"{address}: no such socket", tried=(str(address),))
        if ping_docker(address):  # a docker socket given as unix://
            address = EngineAddress("docker", path=address.path)
            kind = "dockerd"
    channel, relay = make_channel(address, tls=tls, timeout=timeout)
    client = EngineClient(address, kind, channel, relay, tls=tls, connect_timeout=timeout)
    try:
        _probe(client, timeout if address.host is not None else _PROBE_TIMEOUT)
    except grpc.RpcError as exc:
        relay_errors = list(relay.errors) if relay is not None else []
        client.close()
        error = map_rpc_error(exc, address=str(address), operation="ListWorkers")
        if relay_errors:  # the upgrade failed: that is the real reason, not grpc's "socket closed"
            error = EngineUnavailable(relay_errors[-1], tried=(str(address),))
        elif address.kind == "tcp" and tls is not None and not tls.insecure:
            _diagnose_tls(address, tls, timeout)  # grpc's TLS errors are terse: say what failed, if it was TLS
        raise error from exc
    except BaseException:
        client.close()
        raise
    return client


#: Environment override of the connect/handshake timeout, in seconds (``--connect-timeout`` wins).
CONNECT_TIMEOUT_ENV = "BUILDER_CONNECT_TIMEOUT"


def connect_timeout_from_env(env: Mapping[str, str]) -> float:
    """``BUILDER_CONNECT_TIMEOUT`` when it is a positive number of seconds, else the 10 s default."""
    text = env.get(CONNECT_TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_CONNECT_TIMEOUT
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise ConfigError(
            f"{CONNECT_TIMEOUT_ENV}={text!r} is not a number of seconds in (0, 3600)", key_path=CONNECT_TIMEOUT_ENV
        )
    return value


def open_engine(
    address: str | None = None,
    *,
    tls: TLSConfig | None = None,
    env: Mapping[str, str] | None = None,
    connect_timeout: float | None = None,
) -> EngineClient:
    """Connect to the engine at ``address`` (or ``BUILDKIT_HOST``, or the first auto-detected one).

    ``tls`` applies to TCP engines; without it the TLS settings come from the environment
    (:func:`builder.engines.buildkit.tls.resolve_tls`) and a TCP engine with none is refused
    (``TLSRequired``). ``connect_timeout`` (default ``BUILDER_CONNECT_TIMEOUT``, else 10 s)
    bounds the connect, the TLS handshake and the first call each.
    Raises ``EngineAddressError`` for a malformed address and ``EngineUnavailable`` (listing
    every address tried, with the reason for each) when nothing answers.
    """
    environ = os.environ if env is None else env
    timeout = connect_timeout if connect_timeout is not None else connect_timeout_from_env(environ)
    candidates = candidate_addresses(address, environ)
    failures: list[str] = []
    hints: list[str] = []
    for candidate in candidates:
        resolved = resolve_tls(candidate, tls, environ)
        try:
            return _connect_one(candidate, resolved, timeout)
        except EngineUnavailable as exc:
            failures.append(exc.message)
            if exc.hint:
                hints.append(exc.hint)
        except EngineError as exc:
            if len(candidates) == 1:
                raise
            failures.append(exc.message)
        except OSError as exc:
            failures.append(f"{candidate}: {exc.strerror or exc}")
    tried = tuple(str(c) for c in candidates)
    if address or environ.get("BUILDKIT_HOST", "").strip():
        lead = f"no BuildKit engine answers at {tried[0]}"
    else:
        lead = "no BuildKit engine found (tried " + ", ".join(tried) + ")"
    detail = "; ".join(failures)
    hint = hints[0] if len(candidates) == 1 and hints else START_HINT
    raise EngineUnavailable(f"{lead}: {detail}", tried=tried, hint=hint)
