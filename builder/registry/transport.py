"""HTTP(S) to one registry the way docker reaches it: TLS with docker's extra CAs, plain HTTP on loopback.

- TLS is verified against the system bundle plus ``/etc/docker/certs.d/HOST:PORT/ca.crt``
  (docker's per-registry CA convention; ``*.crt`` files in that folder are all read).
- Loopback registries (``localhost``, ``127.0.0.0/8``, ``::1``) are *insecure registries* for
  docker: HTTPS is tried first without verifying the certificate, and plain HTTP when the
  port does not speak TLS.  Hosts the caller names as insecure (a cache's ``registry.insecure=true``)
  get the same rule.  Every other host is HTTPS only.
- Every request has a timeout (5 s by default); redirects (blob storage) are followed at most
  three times, and an ``Authorization`` header never follows a redirect to another host.

Every failure becomes a :class:`builder.errors.RegistryError` subclass naming the registry.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from builder.errors import RegistryUnavailable

DEFAULT_TIMEOUT = 5.0
CERTS_DIR = Path("/etc/docker/certs.d")
#: Largest response body read (manifests and image configs are kilobytes; a bigger one is not ours).
MAX_BODY = 8 * 1024 * 1024
_MAX_REDIRECTS = 3


class Credentials(Protocol):
    """What a credentials hook returns (``builder.registry.credentials.Credentials`` fits it)."""

    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def identitytoken(self) -> str | None: ...


#: ``host[:port]`` (as in the image reference, e.g. ``docker.io``) → its credentials, or None.
CredentialsHook = Callable[[str], Credentials | None]


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1`` (with or without a port)."""
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def api_host(registry: str) -> str:
    """Where a registry's API answers: Docker Hub's API is ``registry-1.docker.io``."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


@dataclass
class Transport:
    """Sends requests to registries; remembers per host whether it speaks TLS (loopback only)."""

    timeout: float = DEFAULT_TIMEOUT
    certs_dir: Path = CERTS_DIR
    #: ``host[:port]`` treated like loopback: unverified TLS, else plain HTTP.
    insecure: frozenset[str] = frozenset()
    _schemes: dict[str, str] = field(default_factory=dict)

    def lenient(self, host: str) -> bool:
        """True when ``host`` is an insecure registry: loopback, or named so by the caller."""
        return is_loopback(host) or host in self.insecure

    def base_url(self, registry: str) -> str:
        """``https://host`` (or ``http://`` for a loopback registry without TLS)."""
        host = api_host(registry)
        return f"{self._schemes.get(host, 'https')}://{host}"

    def request(
        self, method: str, url: str, headers: Mapping[str, str], registry: str, body: bytes | None = None
    ) -> Response:
        """Send one request (following redirects); RegistryUnavailable when nothing usable answers."""
        current = url
        sent = dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._once(method, current, sent, registry, body)
            if response.status not in (301, 302, 303, 307, 308) or "location" not in response.headers:
                return response
            target = urllib.parse.urljoin(current, response.headers["location"])
            if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(current).netloc:
                sent.pop("Authorization", None)  # a token for the registry is not for its blob store
            current = target
        raise RegistryUnavailable(f"registry {registry}: too many redirects for {url}", registry=registry)

    def _once(self, method: str, url: str, headers: Mapping[str, str], registry: str, body: bytes | None) -> Response:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc
        if parts.scheme == "https" and self.lenient(host) and host not in self._schemes:
            try:
                response = self._send("https", method, parts, headers, body)
            except ssl.SSLCertVerificationError as exc:  # TLS spoken, but not by the CA we were given
                raise _unreachable(registry, exc) from exc
            except (ssl.SSLError, ConnectionResetError, http.client.BadStatusLine):
                self._schemes[host] = "http"  # a plain-HTTP registry on loopback, as docker allows
                return self._send_mapped("http", method, parts, headers, registry, body)
            except (OSError, http.client.HTTPException) as exc:
                raise _unreachable(registry, exc) from exc
            self._schemes[host] = "https"
            return response
        return self._send_mapped(self._schemes.get(host, parts.scheme), method, parts, headers, registry, body)

    def _send_mapped(
        self,
        scheme: str,
        method: str,
        parts: urllib.parse.SplitResult,
        headers: Mapping[str, str],
        registry: str,
        body: bytes | None,
    ) -> Response:
        try:
            return self._send(scheme, method, parts, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(registry, exc) from exc

    def _send(
        self,
        scheme: str,
        method: str,
        parts: urllib.parse.SplitResult,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> Response:
        conn = self._connection(scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(method, path or "/", body=body, headers=dict(headers))
            answer = conn.getresponse()
            data = answer.read(MAX_BODY + 1) if method != "HEAD" else b""
            if len(data) > MAX_BODY:
                raise http.client.HTTPException(f"response larger than {MAX_BODY} bytes")
            found = {k.lower(): v for k, v in answer.getheaders()}
            return Response(answer.status, found, data, f"{scheme}://{parts.netloc}{path}")
        finally:
            conn.close()

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=self.timeout)
        return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._context(netloc))

    def _context(self, netloc: str) -> ssl.SSLContext:
        context = ssl.create_default_context()
        folder = self.certs_dir / netloc
        extra = sorted(folder.glob("*.crt")) if folder.is_dir() else []
        for ca in extra:
            try:
                context.load_verify_locations(cafile=str(ca))
            except (OSError, ssl.SSLError):
                continue  # an unreadable extra CA leaves the system bundle; the handshake then says why
        if self.lenient(netloc) and not extra:
            context.check_hostname = False  # docker's insecure-registry rule for loopback
            context.verify_mode = ssl.CERT_NONE
        return context


def _unreachable(registry: str, exc: BaseException) -> RegistryUnavailable:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = f"TLS certificate not trusted ({exc.verify_message})"
        hint = f"put the registry's CA certificate in /etc/docker/certs.d/{registry}/ca.crt"
    elif isinstance(exc, socket.timeout | TimeoutError):
        why, hint = "no answer in time", "check that the registry is up and reachable from here"
    else:
        why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        hint = "check that the registry is up and reachable from here"
    return RegistryUnavailable(f"registry {registry} is unreachable: {why}", registry=registry, hint=hint)
