"""``--push``: where the image goes and who pushes it.

=============================================  ==============================================
engine                                         push
=============================================  ==============================================
buildkitd                                      ``image`` exporter, ``push=true``
dockerd with the containerd image store        ``moby`` exporter (BuildKit's image exporter
(``containerd-snapshotter``)                   inside), ``push=true``
dockerd with the classic store (20.10, 26)     image loaded into the store as ``--tag``, then
                                               Engine API ``POST /images/{name}/push``
=============================================  ==============================================

Registry logins reach the exporter through the session's Auth service and the
Engine API through the ``X-Registry-Auth`` header, both from the same lookup.

>>> registry_host("127.0.0.1:5000/team/app:dev")
'127.0.0.1:5000'
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from builder.engines import BuildOptions
from builder.engines.buildkit.caps import Capabilities
from builder.engines.buildkit.client import EngineClient
from builder.engines.events import EngineProgress, EventSink
from builder.engines.registry_errors import registry_error
from builder.errors import ConfigError, EngineError, RegistryError
from builder.registry.credentials import lookup as docker_credentials

_PUSH_TIMEOUT = 900.0


def split_reference(reference: str) -> tuple[str | None, str, str]:
    """``(registry host or None, repository, tag)`` of an image reference (the tag defaults to ``latest``).

    >>> split_reference("localhost:5000/app")
    ('localhost:5000', 'localhost:5000/app', 'latest')
    >>> split_reference("app:dev")
    (None, 'app', 'dev')
    """
    name = reference.split("@", 1)[0]
    first, slash, _rest = name.partition("/")
    host = first if slash and ("." in first or ":" in first or first == "localhost") else None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name[: len(name) - len(last)] + last.split(":", 1)[0], last.split(":", 1)[1]
    else:
        repository, tag = name, "latest"
    return host, repository, tag


def registry_host(tag: str | None) -> str:
    """The registry host ``--tag`` names for ``--push``; ConfigError when it names none."""
    host = split_reference(tag)[0] if tag else None
    if host is None:
        raise ConfigError(
            f"--push needs --tag to name a registry, e.g. 127.0.0.1:5000/app:dev; {tag!r} names none"
            if tag
            else "--push needs --tag naming the registry reference to push to",
            key_path="--tag",
            hint="put the registry host first: --tag REGISTRY_HOST[:PORT]/NAME[:TAG] (docker.io/USER/NAME for Hub)",
        )
    return host


def exporter_pushes(caps: Capabilities) -> bool:
    """True when the engine's BuildKit pushes the image itself (buildkitd, dockerd's containerd store).

    The image store comes from :attr:`Capabilities.image_store` (the BuildKit worker's labels), the
    one place that decides it.
    """
    return caps.kind != "dockerd" or caps.image_store == "containerd"


def registry_auth_header(login: Any | None) -> str:
    """``X-Registry-Auth``: base64url JSON of the login (``{}`` for anonymous)."""
    fields = login.engine_auth() if login is not None else {}
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def push_with_engine_api(
    client: EngineClient,
    reference: str,
    credentials: Callable[[str], Any],
    on_event: EventSink | None = None,
) -> str | None:
    """Push ``reference`` from dockerd's image store; the pushed manifest digest (None if unsaid).

    Raises RegistryAuthError / RegistryUnavailable for the registry's refusal or absence,
    EngineError for anything else the daemon reports.
    """
    from builder.engines.docker_api import DockerAPI

    docker = client.docker_socket
    if docker is None:
        raise EngineError(f"cannot push {reference}: the engine {client.address} has no Docker API")
    host, repository, tag = split_reference(reference)
    assert host is not None  # registry_host() checked the tag before the build
    api = DockerAPI(path=docker.path, host=docker.host, port=docker.port, timeout=_PUSH_TIMEOUT, tls=client.tls)
    path = f"/images/{urllib.parse.quote(repository, safe='/:')}/push"
    login = credentials(host)
    header = registry_auth_header(login)
    name = f"pushing {reference}"
    started = time.monotonic()
    stream = api.stream("POST", path, query={"tag": tag}, headers={"X-Registry-Auth": header})
    digest = read_push_stream(stream, host, logged_in=login is not None)
    if on_event is not None:
        on_event(EngineProgress(name, done=True, seconds=round(time.monotonic() - started, 3)))
    return digest


def read_push_stream(lines: Iterator[dict[str, Any]], host: str, *, logged_in: bool) -> str | None:
    """The pushed digest from dockerd's push messages; their error raised as a registry/engine error."""
    digest = None
    for message in lines:
        detail = message.get("errorDetail")
        error = (detail.get("message") if isinstance(detail, dict) else None) or message.get("error")
        if error:
            mapped: RegistryError | None = registry_error(
                str(error), (host,), action="push", logged_in=(host,) if logged_in else ()
            )
            if mapped is not None:
                raise mapped
            raise EngineError(f"pushing to {host} failed: {error}")
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
    return digest


#: Who pushes: the engine's exporter in the build, or the Engine API after it.
PushRoute = Literal["exporter", "engine-api"]


def push_route(client: EngineClient, options: BuildOptions) -> PushRoute | None:
    """How ``options.push`` is done on this engine (None: no push); checks ``--tag`` names a registry."""
    if not options.push:
        return None
    registry_host(options.tag)
    return "exporter" if exporter_pushes(client.capabilities) else "engine-api"


def complete_push(
    client: EngineClient,
    options: BuildOptions,
    route: PushRoute | None,
    response: Mapping[str, str],
    on_event: EventSink | None = None,
) -> str | None:
    """After the build: push through the Engine API when that is the route; ``REPOSITORY@DIGEST`` pushed."""
    if route is None or options.tag is None:
        return None
    if route == "engine-api":
        lookup = options.credentials or docker_credentials
        digest = push_with_engine_api(client, options.tag, lookup, on_event)
    else:
        digest = response.get("containerimage.digest")
    _host, repository, _tag = split_reference(options.tag)
    return f"{repository}@{digest}" if digest else options.tag


def registries_of(base_image: str | None, options: BuildOptions) -> tuple[str, ...]:
    """The registry hosts a build talks to (base image, push target), for naming them in errors."""
    hosts = []
    for ref in (base_image, options.tag if options.push else None):
        host = split_reference(ref)[0] if ref else None
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)
