"""Engine addresses: ``--engine ADDR`` / ``BUILDKIT_HOST`` parsing and the auto-detect order.

The syntax follows ``buildctl --addr`` plus a ``docker://`` form for dockerd's embedded
BuildKit::

    unix:///run/buildkit/buildkitd.sock   a buildkitd socket (or a docker socket: detected when connecting)
    tcp://host:1234                       buildkitd over TCP (TLS settings required: see tls.py)
    docker://                             dockerd at $DOCKER_HOST, else /var/run/docker.sock
    docker:///path/to/docker.sock         dockerd at that socket
    docker+tcp://host:2376                dockerd over TCP (TLS settings required; also docker://tcp://host:2376)

Parsing is pure: no file system or network access happens here.

>>> parse_address("unix:///run/buildkit/buildkitd.sock").path
'/run/buildkit/buildkitd.sock'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from builder.errors import ConfigError, EngineError

AddressKind = Literal["unix", "tcp", "docker"]

#: Where a standalone buildkitd listens by default (first auto-detect candidate).
BUILDKITD_DEFAULT_SOCKET = "/run/buildkit/buildkitd.sock"
#: Where dockerd listens by default (last auto-detect candidate).
DOCKER_DEFAULT_SOCKET = "/var/run/docker.sock"

START_HINT = (
    "start a local engine with `scripts/engine-up` (then export the BUILDKIT_HOST=... line it prints), "
    "or point --engine / BUILDKIT_HOST at a running buildkitd or dockerd"
)

_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_SYNTAX = "unix:///path, tcp://host:port, docker://, docker:///path/to/docker.sock or docker+tcp://host:port"


class EngineAddressError(EngineError, ConfigError):
    """An engine address (``--engine`` or ``BUILDKIT_HOST``) is not valid.

    Also a :class:`ConfigError`: it is bad user input (exit 2), not an engine failure.
    """


@dataclass(frozen=True, slots=True)
class EngineAddress:
    """One place an engine may answer.

    ``kind`` is how to talk to it: ``unix`` (plain gRPC on a unix socket; the socket may
    turn out to be dockerd's, which ``connect`` detects), ``tcp`` (plain gRPC over TCP) or
    ``docker`` (dockerd's ``/grpc`` upgrade endpoint, on ``path`` or on ``host:port``).
    """

    kind: AddressKind
    path: str | None = None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.path}"
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        if self.path is not None:
            return f"docker://{self.path}"
        return f"docker+tcp://{self.host}:{self.port}"

    @property
    def is_socket(self) -> bool:
        """True when the engine is reached through a unix socket path."""
        return self.path is not None


def parse_address(text: str, *, source: str = "--engine") -> EngineAddress:
    """Parse one address in buildctl syntax; ``source`` names where it came from in errors.

    ``docker://`` with nothing after it means dockerd at ``$DOCKER_HOST`` or the default
    socket; resolve it with :func:`resolve_docker_default`.
    """
    value = text.strip()
    if not value:
        raise EngineAddressError(f"{source}: the engine address is empty", hint=f"use {_SYNTAX}")
    scheme, sep, rest = value.partition("://")
    if not sep:
        raise EngineAddressError(
            f"{source}: {value!s} has no scheme",
            hint=f"use {_SYNTAX}, e.g. unix://{value}" if value.startswith("/") else f"use {_SYNTAX}",
        )
    scheme = scheme.lower()
    if scheme == "unix":
        return EngineAddress("unix", path=_socket_path(rest, value, source))
    if scheme == "tcp":
        host, port = _host_port(rest, value, source)
        return EngineAddress("tcp", host=host, port=port)
    if scheme == "docker":
        return _parse_docker(rest, value, source)
    if scheme == "docker+tcp":
        host, port = _host_port(rest, value, source)
        return EngineAddress("docker", host=host, port=port)
    if scheme in {"docker-container", "kube-pod", "podman-container", "ssh", "npipe"}:
        raise EngineAddressError(
            f"{source}: {value}: the {scheme}:// transport is not supported by builder",
            hint=f"use {_SYNTAX}",
        )
    raise EngineAddressError(f"{source}: {value}: unknown scheme {scheme!r}", hint=f"use {_SYNTAX}")


def _parse_docker(rest: str, value: str, source: str) -> EngineAddress:
    if rest == "":
        return EngineAddress("docker")  # placeholder: resolved against DOCKER_HOST later
    if rest.startswith("/"):
        return EngineAddress("docker", path=_socket_path(rest, value, source))
    inner_scheme, sep, inner = rest.partition("://")
    if sep and inner_scheme == "unix":
        return EngineAddress("docker", path=_socket_path(inner, value, source))
    if sep and inner_scheme == "tcp":
        host, port = _host_port(inner, value, source)
        return EngineAddress("docker", host=host, port=port)
    raise EngineAddressError(
        f"{source}: {value}: expected docker://, docker:///path/to/docker.sock or docker+tcp://host:port",
    )


def _socket_path(rest: str, value: str, source: str) -> str:
    if not rest.startswith("/"):
        raise EngineAddressError(
            f"{source}: {value}: a unix socket needs an absolute path (three slashes: unix:///path)",
        )
    if "\x00" in rest or "?" in rest or "#" in rest:
        raise EngineAddressError(f"{source}: {value}: the socket path has characters that are not allowed")
    path = str(Path(rest))
    if path == "/":
        raise EngineAddressError(f"{source}: {value}: the socket path is missing")
    return path


def _host_port(rest: str, value: str, source: str) -> tuple[str, int]:
    m = _HOST_PORT.match(rest.rstrip("/"))
    if m is None:
        raise EngineAddressError(f"{source}: {value}: expected tcp://host:port")
    port = int(m.group("port"))
    if not 0 < port < 65536:
        raise EngineAddressError(f"{source}: {value}: port {port} is out of range (1-65535)")
    return m.group("host"), port


def resolve_docker_default(address: EngineAddress, env: Mapping[str, str]) -> EngineAddress:
    """Turn a bare ``docker://`` into the daemon at ``$DOCKER_HOST`` or the default socket."""
    if address.kind != "docker" or address.path is not None or address.host is not None:
        return address
    docker_host = env.get("DOCKER_HOST", "").strip()
    if docker_host:
        return docker_host_address(docker_host)
    return EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET)


def docker_host_address(docker_host: str) -> EngineAddress:
    """The dockerd address that a ``DOCKER_HOST`` value (``unix://`` or ``tcp://``) names."""
    parsed = parse_address(docker_host, source="DOCKER_HOST")
    if parsed.kind == "unix":
        return EngineAddress("docker", path=parsed.path)
    if parsed.kind == "tcp":
        return EngineAddress("docker", host=parsed.host, port=parsed.port)
    return parsed


def candidate_addresses(explicit: str | None, env: Mapping[str, str]) -> tuple[EngineAddress, ...]:
    """The addresses to try, in order.

    An explicit ``--engine`` wins, then ``BUILDKIT_HOST``; otherwise auto-detect:
    the buildkitd default socket, ``$DOCKER_HOST``, then the docker default socket.
    """
    if explicit:
        return (resolve_docker_default(parse_address(explicit, source="--engine"), env),)
    buildkit_host = env.get("BUILDKIT_HOST", "").strip()
    if buildkit_host:
        return (resolve_docker_default(parse_address(buildkit_host, source="BUILDKIT_HOST"), env),)
    found: list[EngineAddress] = [EngineAddress("unix", path=BUILDKITD_DEFAULT_SOCKET)]
    docker_host = env.get("DOCKER_HOST", "").strip()
    if docker_host:
        found.append(docker_host_address(docker_host))
    default_docker = EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET)
    if default_docker not in found:
        found.append(default_docker)
    return tuple(found)
