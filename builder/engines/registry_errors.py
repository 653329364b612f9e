"""Tell a registry's refusal or absence apart in what an engine says, and name the registry.

BuildKit and dockerd report registry trouble as text inside a failed solve or
a push stream, e.g. ``failed to resolve source metadata for
127.0.0.1:5001/base:1: unexpected status code [manifests 1]: 401
Unauthorized`` or ``dial tcp 127.0.0.1:5999: connect: connection refused``.
:func:`registry_error` turns such text into :class:`~builder.errors.RegistryAuthError`
(exit 6) or :class:`~builder.errors.RegistryUnavailable` (exit 7); other text gives None.

>>> registry_error("pushing 127.0.0.1:5001/app: no basic auth credentials", ("127.0.0.1:5001",)).host
'127.0.0.1:5001'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from builder.errors import RegistryAuthError, RegistryError, RegistryUnavailable

_AUTH = re.compile(
    r"\b401\b|\b403\b|unauthorized|no basic auth credentials|authentication required|"
    r"insufficient_scope|access to the resource is denied|requested access to the resource is denied|"
    r"failed to authorize|denied:",
    re.IGNORECASE,
)
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|network is unreachable|connection reset by peer|"
    r"server gave HTTP response to HTTPS client|http: server gave HTTP response|tls: |x509: |"
    r"first record does not look like a TLS handshake",
    re.IGNORECASE,
)
_PLAIN_HTTP = re.compile(r"pulling from host \S+ failed with status code \[[^\]]*\]: 400 Bad Request")
_URL_HOST = re.compile(r"https?://([A-Za-z0-9.\-\[\]:]+)/v2/")
_DIAL_HOST = re.compile(r"dial tcp ([A-Za-z0-9.\-\[\]:]+?):? ")
_REF_HOST = re.compile(r"\b((?:[a-z0-9\-]+\.)+[a-z0-9\-]+(?::\d+)?|localhost(?::\d+)?|[a-z0-9\-]+:\d+)/[a-z0-9]")


def registry_host_in(text: str, known: Iterable[str] = ()) -> str | None:
    """The registry host ``text`` names: one of ``known`` first, then a ``/v2/`` URL, a dial, a reference."""
    for host in known:
        if host and host in text:
            return host
    for pattern in (_URL_HOST, _DIAL_HOST, _REF_HOST):
        found = pattern.search(text)
        if found:
            return found.group(1)
    return None


def registry_error(
    text: str, known: Iterable[str] = (), *, action: str = "", logged_in: Iterable[str] = ()
) -> RegistryError | None:
    """The registry error ``text`` reports, or None when it is about something else.

    ``known`` lists the registries the build talks to (base image, push target);
    ``action`` (e.g. ``push``) is said in the message; ``logged_in`` lists the hosts that
    were offered credentials (the registry "refused the credentials" rather than "needs credentials").
    """
    hosts = tuple(known)
    if _PLAIN_HTTP.search(text):
        host = registry_host_in(text, hosts) or (hosts[0] if hosts else None)
        if host is not None:
            return RegistryUnavailable(
                f"cannot reach registry {host}: it refused the engine's request as malformed "
                f"(400: an engine speaking plain HTTP to an HTTPS registry gets this): {_last_clause(text)}",
                registry=host,
                hint="dockerd 20.10's BuildKit (0.8) always uses plain HTTP for 127.0.0.1 registries: serve "
                "that registry over HTTP, or build on dockerd 26 / buildkitd",
            )
    auth = _AUTH.search(text)
    unreachable = None if auth else _UNREACHABLE.search(text)
    if auth is None and unreachable is None:
        return None
    host = registry_host_in(text, hosts)
    if host is None:
        if not hosts:
            return None
        host = hosts[0]
    doing = f" ({action})" if action else ""
    detail = _last_clause(text)
    if auth is not None:
        said = "refused the credentials" if host in set(logged_in) else "needs credentials (none were found)"
        return RegistryAuthError(
            f"registry {host} {said}{doing}: {detail}",
            registry=host,
            hint=f"run `docker login {host}` (builder reads $DOCKER_CONFIG/config.json and its credential helpers)",
        )
    return RegistryUnavailable(
        f"cannot reach registry {host}{doing}: {detail}",
        registry=host,
        hint=_UNREACHABLE_HINT,
    )


_UNREACHABLE_HINT = (
    "check the registry is running and the host:port is right; an HTTPS registry with its own CA must be "
    "trusted by the engine (dockerd: /etc/docker/certs.d/HOST/ca.crt)"
)


def _last_clause(text: str) -> str:
    """The engine's message without the long chain of wrappers, at most 300 characters."""
    line = text.strip().splitlines()[-1] if text.strip() else ""
    return line if len(line) <= 300 else "…" + line[-299:]
