"""TLS settings for engines reached over TCP, and what a failed handshake means.

One value, :class:`TLSConfig`, carries the settings from wherever the user gave them to
every connection builder opens to a ``tcp://`` engine: the gRPC channel to buildkitd,
dockerd's ``/grpc`` and ``/session`` upgrades, and the Docker API that verification uses.
:func:`resolve_tls` picks them, first match wins:

1. an explicit value (the ``--tls-ca/--tls-cert/--tls-key/--tls-server-name`` flags, the
   ``tls=`` argument of the Python API, or ``--insecure`` / ``TLSConfig(insecure=True)``);
2. ``BUILDKIT_TLS_CA``, ``BUILDKIT_TLS_CERT``, ``BUILDKIT_TLS_KEY``, ``BUILDKIT_TLS_SERVER_NAME``;
3. for dockerd addresses, Docker's own convention: ``DOCKER_CERT_PATH`` (``ca.pem``,
   ``cert.pem``, ``key.pem``; ``~/.docker`` when only ``DOCKER_TLS_VERIFY`` is set).

A TCP engine with none of these is refused (:class:`TLSRequired`): project files and the
CA bundle would otherwise cross the network in cleartext. The server's certificate is
always verified (against ``ca`` when given, else the system's trust store).

>>> resolve_tls(EngineAddress("tcp", host="10.0.0.5", port=1234), None,
...             {"BUILDKIT_TLS_CA": "/certs/ca.pem"}).ca
PosixPath('/certs/ca.pem')
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.engines.buildkit.address import EngineAddress, EngineAddressError
from builder.errors import EngineError, EngineUnavailable

if TYPE_CHECKING:  # grpc loads only for gRPC channels; verify's Docker API needs just ssl
    import grpc

#: Seconds allowed for the TCP connect and then for the TLS handshake (``--connect-timeout``).
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Environment variables read when no TLS flag is given (buildctl's flags, as variables).
TLS_ENV = ("BUILDKIT_TLS_CA", "BUILDKIT_TLS_CERT", "BUILDKIT_TLS_KEY", "BUILDKIT_TLS_SERVER_NAME")


class TLSRequired(EngineAddressError):
    """A TCP engine address came without TLS settings and without ``--insecure`` (exit 2)."""


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """How to reach a TCP engine: client TLS files, or ``insecure=True`` for plain TCP.

    ``ca`` verifies the server (default: the system's trust store); ``cert`` and ``key``
    are the client certificate (mutual TLS); ``server_name`` is the name the server's
    certificate must carry when it differs from the host in the address.
    """

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if self.insecure and any(v is not None for v in (self.ca, self.cert, self.key, self.server_name)):
            raise EngineAddressError(
                "--insecure cannot be combined with TLS files",
                hint="drop --insecure to use TLS, or drop the --tls-* settings",
            )
        if (self.cert is None) != (self.key is None):
            raise EngineAddressError(
                "--tls-cert and --tls-key must be given together",
                hint="a client certificate needs its private key (and the key its certificate)",
            )

    def credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials from the PEM files (read now; errors name the file)."""
        import grpc

        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca, "--tls-ca"),
            private_key=_read_pem(self.key, "--tls-key"),
            certificate_chain=_read_pem(self.cert, "--tls-cert"),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` that verifies the server and presents the client certificate."""
        for path, flag in ((self.ca, "--tls-ca"), (self.cert, "--tls-cert"), (self.key, "--tls-key")):
            _read_pem(path, flag)  # a clear error naming the file before OpenSSL's terse one
        try:
            context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
            if self.cert is not None and self.key is not None:
                context.load_cert_chain(str(self.cert), str(self.key))
        except ssl.SSLError as exc:
            raise EngineError(
                f"the TLS files are not usable: {exc.reason or exc}",
                hint="--tls-ca, --tls-cert and --tls-key take PEM files",
            ) from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def to_json(self) -> dict[str, object]:
        """JSON-ready mapping (for the warm server's hint: paths only, never key material)."""
        return {
            "ca": _str(self.ca),
            "cert": _str(self.cert),
            "key": _str(self.key),
            "server_name": self.server_name,
            "insecure": self.insecure,
        }


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _read_pem(path: Path | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EngineError(f"{flag} {path}: cannot read it: {exc.strerror or exc}") from exc


def is_tcp(address: EngineAddress) -> bool:
    """True when the engine is reached over TCP (buildkitd ``tcp://`` or dockerd ``docker+tcp://``)."""
    return address.host is not None


def resolve_tls(address: EngineAddress, explicit: TLSConfig | None, env: Mapping[str, str]) -> TLSConfig | None:
    """The TLS settings for ``address`` (None for unix sockets); TLSRequired when a TCP engine has none."""
    if not is_tcp(address):
        return None
    if explicit is not None:
        return explicit
    from_env = _from_buildkit_env(env) or (_from_docker_env(env) if address.kind == "docker" else None)
    if from_env is not None:
        return from_env
    raise TLSRequired(
        f"{address}: refusing to talk to a TCP engine without TLS (project files would cross the network in cleartext)",
        hint="give --tls-ca/--tls-cert/--tls-key (or BUILDKIT_TLS_CA/_CERT/_KEY, or DOCKER_TLS_VERIFY=1 with "
        "DOCKER_CERT_PATH for dockerd), or --insecure when the network itself is trusted",
    )


def _from_buildkit_env(env: Mapping[str, str]) -> TLSConfig | None:
    ca, cert, key, name = (env.get(k, "").strip() or None for k in TLS_ENV)
    if ca is None and cert is None and key is None and name is None:
        return None
    return TLSConfig(ca=_path(ca), cert=_path(cert), key=_path(key), server_name=name)


def _from_docker_env(env: Mapping[str, str]) -> TLSConfig | None:
    cert_path = env.get("DOCKER_CERT_PATH", "").strip()
    if not cert_path and not env.get("DOCKER_TLS_VERIFY", "").strip():
        return None
    folder = Path(cert_path) if cert_path else Path(env.get("HOME", os.path.expanduser("~"))) / ".docker"
    cert, key = folder / "cert.pem", folder / "key.pem"
    has_client = cert.exists() or key.exists()
    return TLSConfig(ca=folder / "ca.pem", cert=cert if has_client else None, key=key if has_client else None)


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def open_tls(sock: socket.socket, address: EngineAddress, tls: TLSConfig, timeout: float) -> ssl.SSLSocket:
    """Run the TLS handshake on a connected socket within ``timeout``; errors name the address."""
    hostname = tls.server_name or str(address.host).strip("[]")
    try:
        wrapped = tls.ssl_context().wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        wrapped.settimeout(timeout)
        wrapped.do_handshake()
    except (OSError, ssl.SSLError) as exc:
        wrapped.close()
        raise describe_tls_error(exc, address, timeout) from exc
    return wrapped


_NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
    "UNKNOWN_PROTOCOL",
)
_CLIENT_REFUSED = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "HANDSHAKE_FAILURE",
    "CERTIFICATE_UNKNOWN",
    "ACCESS_DENIED",
    "DECRYPT_ERROR",
)


def describe_tls_error(exc: BaseException, address: EngineAddress, timeout: float) -> EngineUnavailable:
    """An ``EngineUnavailable`` (exit 4) saying in words why the TLS connection to ``address`` failed."""
    where = str(address)
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or str(exc)
        return EngineUnavailable(
            f"{where}: the engine's TLS certificate was rejected: {why}",
            tried=(where,),
            hint="check --tls-ca (or DOCKER_CERT_PATH/ca.pem): it must be the CA that signed the engine's "
            "certificate, which must be valid now and name the host you connect to (--tls-server-name)",
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if any(marker in reason for marker in _NOT_TLS):
            return EngineUnavailable(
                f"{where}: the engine did not answer with TLS ({reason})",
                tried=(where,),
                hint="is this a plain-HTTP port? point at the daemon's TLS port",
            )
        if any(marker in reason for marker in _CLIENT_REFUSED):
            return EngineUnavailable(
                f"{where}: the engine refused our TLS client certificate ({reason})",
                tried=(where,),
                hint="give the client certificate the engine trusts with --tls-cert and "
                "--tls-key (or cert.pem/key.pem in DOCKER_CERT_PATH)",
            )
        return EngineUnavailable(f"{where}: TLS handshake failed: {reason or exc}", tried=(where,))
    if isinstance(exc, TimeoutError | socket.timeout):
        return EngineUnavailable(
            f"{where}: no TLS answer within {timeout:g} s",
            tried=(where,),
            hint="is this the engine's port? raise --connect-timeout for a slow network",
        )
    if isinstance(exc, ConnectionRefusedError):
        return EngineUnavailable(f"{where}: connection refused (nothing listens there)", tried=(where,))
    if isinstance(exc, OSError):
        return EngineUnavailable(f"{where}: {exc.strerror or exc}", tried=(where,))
    return EngineUnavailable(f"{where}: {exc}", tried=(where,))
