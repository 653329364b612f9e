"""The session's Auth service over a real session stream (loopback daemon), both server implementations."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import grpc
import pytest

from builder.engines.buildkit._pb import auth_pb2
from builder.engines.buildkit.session import AuthProvider, Session
from builder.engines.buildkit.session.loopback import AttachedSession, LoopbackDaemon
from builder.errors import RegistryAuthError
from builder.registry.credentials import Credentials

AUTH = "/moby.filesync.v1.Auth/"
SECRET = "hunter2-registry"


@pytest.fixture(params=["h2", "grpcio"])
def start(request: pytest.FixtureRequest) -> Callable[..., Session]:
    return functools.partial(Session.start, implementation=str(request.param))


@pytest.fixture
def daemon() -> Iterator[LoopbackDaemon]:
    with LoopbackDaemon() as d:
        yield d


def _call(peer: AttachedSession, method: str, request: object, response: object) -> object:
    call = peer.channel.unary_unary(
        AUTH + method,
        request_serializer=type(request).SerializeToString,  # type: ignore[attr-defined]
        response_deserializer=response.FromString,  # type: ignore[attr-defined]
    )
    return call(request, timeout=10)


def _lookup(host: str) -> Credentials | None:
    if host == "127.0.0.1:5001":
        return Credentials(host, "ci", SECRET)
    if host == "tok.example":
        return Credentials(host, "", "", "refresh-tok")
    if host == "broken.example":
        raise RegistryAuthError("credential helper docker-credential-x is not installed", registry=host)
    return None


def test_credentials_come_from_the_lookup(daemon: LoopbackDaemon, start: Callable[..., Session]) -> None:
    provider = AuthProvider(_lookup)
    with start(daemon.channel(), provider) as session:
        peer = daemon.attached(session.id)
        creds = auth_pb2.CredentialsResponse
        found = _call(peer, "Credentials", auth_pb2.CredentialsRequest(Host="127.0.0.1:5001"), creds)
        assert (found.Username, found.Secret) == ("ci", SECRET)  # type: ignore[attr-defined]
        token = _call(peer, "Credentials", auth_pb2.CredentialsRequest(Host="tok.example"), creds)
        assert (token.Username, token.Secret) == ("", "refresh-tok")  # type: ignore[attr-defined]
        anonymous = _call(peer, "Credentials", auth_pb2.CredentialsRequest(Host="other.example"), creds)
        assert (anonymous.Username, anonymous.Secret) == ("", "")  # type: ignore[attr-defined]
        failed = _call(peer, "Credentials", auth_pb2.CredentialsRequest(Host="broken.example"), creds)
        assert (failed.Username, failed.Secret) == ("", "")  # type: ignore[attr-defined]
    assert provider.asked == ["127.0.0.1:5001", "tok.example", "other.example", "broken.example"]
    assert provider.answered == ["127.0.0.1:5001", "tok.example"]
    assert [e.host for e in provider.errors] == ["broken.example"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "request_value", "response_type"),
    [
        ("FetchToken", auth_pb2.FetchTokenRequest(Host="h", Realm="r", Service="s"), auth_pb2.FetchTokenResponse),
        (
            "GetTokenAuthority",
            auth_pb2.GetTokenAuthorityRequest(Host="h", Salt=b"s"),
            auth_pb2.GetTokenAuthorityResponse,
        ),
        (
            "VerifyTokenAuthority",
            auth_pb2.VerifyTokenAuthorityRequest(Host="h", Payload=b"p", Salt=b"s"),
            auth_pb2.VerifyTokenAuthorityResponse,
        ),
    ],
)
def test_token_methods_are_unimplemented_so_buildkit_falls_back(
    daemon: LoopbackDaemon, start: Callable[..., Session], method: str, request_value: object, response_type: object
) -> None:
    with start(daemon.channel(), AuthProvider(_lookup)) as session:
        peer = daemon.attached(session.id)
        with pytest.raises(grpc.RpcError) as info:
            _call(peer, method, request_value, response_type)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]


def test_session_headers_list_the_auth_methods() -> None:
    session = Session([AuthProvider(_lookup)])
    methods = {v for k, v in session.headers() if k == "x-docker-expose-session-grpc-method"}
    assert {AUTH + m for m in ("Credentials", "FetchToken", "GetTokenAuthority", "VerifyTokenAuthority")} <= methods
