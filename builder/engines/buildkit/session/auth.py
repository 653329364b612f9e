"""``moby.filesync.v1.Auth``: registry credentials for the engine's pulls and pushes.

The daemon asks ``Credentials(host)`` before it talks to a registry that wants
a login; the answer comes from the ``lookup`` hook (docker's config and
credential helpers, :func:`builder.registry.credentials.lookup`).  The token
methods answer UNIMPLEMENTED, so BuildKit fetches tokens itself with the basic
credentials.  Hosts asked are recorded (never the secrets); a lookup that
fails (a missing credential helper, a malformed config) is kept in ``errors``
so the build can report it instead of the daemon's "401".

>>> provider = AuthProvider(lambda host: None)
>>> sorted(provider.handlers())[0]
'/moby.filesync.v1.Auth/Credentials'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import grpc

from builder.engines.buildkit._pb import auth_pb2
from builder.errors import BuilderError

SERVICE = "/moby.filesync.v1.Auth/"
CREDENTIALS = SERVICE + "Credentials"
_TOKEN_METHODS: dict[str, tuple[Any, Any]] = {
    "FetchToken": (auth_pb2.FetchTokenRequest, auth_pb2.FetchTokenResponse),
    "GetTokenAuthority": (auth_pb2.GetTokenAuthorityRequest, auth_pb2.GetTokenAuthorityResponse),
    "VerifyTokenAuthority": (auth_pb2.VerifyTokenAuthorityRequest, auth_pb2.VerifyTokenAuthorityResponse),
}


class RegistryLogin(Protocol):
    """What a credentials lookup returns (see :class:`builder.registry.credentials.Credentials`)."""

    @property
    def username(self) -> str: ...
    @property
    def secret(self) -> str: ...
    @property
    def identity_token(self) -> str: ...


#: ``lookup(host)`` → the login for that registry host, or None for anonymous access.
CredentialLookup = Callable[[str], "RegistryLogin | None"]


class AuthProvider:
    """Serve ``Auth/Credentials`` from ``lookup``; the token methods are UNIMPLEMENTED on purpose."""

    def __init__(self, lookup: CredentialLookup) -> None:
        self._lookup = lookup
        self._lock = threading.Lock()
        #: Hosts the daemon asked about, in order (no secrets).
        self.asked: list[str] = []
        #: Hosts for which credentials were found.
        self.answered: list[str] = []
        #: Lookups that failed, as builder errors (the first explains a failed build best).
        self.errors: list[BuilderError] = []

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """Credentials plus the three token methods."""
        table = {
            CREDENTIALS: grpc.unary_unary_rpc_method_handler(
                self._credentials,
                request_deserializer=auth_pb2.CredentialsRequest.FromString,
                response_serializer=auth_pb2.CredentialsResponse.SerializeToString,
            )
        }
        for name, (request, response) in _TOKEN_METHODS.items():
            table[SERVICE + name] = grpc.unary_unary_rpc_method_handler(
                _unimplemented,
                request_deserializer=request.FromString,
                response_serializer=response.SerializeToString,
            )
        return table

    def _credentials(
        self, request: auth_pb2.CredentialsRequest, context: grpc.ServicerContext
    ) -> auth_pb2.CredentialsResponse:
        host = request.Host
        with self._lock:
            self.asked.append(host)
        try:
            found = self._lookup(host)
        except BuilderError as exc:
            with self._lock:
                self.errors.append(exc)
            found = None  # anonymous: the registry's refusal follows, and the build reports this error
        if found is None:
            return auth_pb2.CredentialsResponse()
        with self._lock:
            self.answered.append(host)
        if found.identity_token:  # BuildKit sends a bare secret as an identity (refresh) token
            return auth_pb2.CredentialsResponse(Secret=found.identity_token)
        return auth_pb2.CredentialsResponse(Username=found.username, Secret=found.secret)


def _unimplemented(request: object, context: grpc.ServicerContext) -> object:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "token authentication is not offered; use Credentials")
    raise AssertionError("abort returns only by raising")  # pragma: no cover
