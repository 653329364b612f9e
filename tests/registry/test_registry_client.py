"""The registry client against a fake registry on loopback: Accept, digests, auth challenges, errors."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import pytest
from fake_registry import OCI_INDEX, FakeRegistry, digest_of, serve

from builder.errors import ImageNotFound, RegistryAuthError, RegistryError, RegistryUnavailable
from builder.plan.images import ImageRef, parse_image
from builder.registry import RegistryClient
from builder.registry.client import ACCEPT, chain_id
from builder.registry.transport import is_loopback

LAYERS = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]


@dataclass(frozen=True)
class Creds:
    username: str | None = "u"
    password: str | None = "p"
    identitytoken: str | None = None


def client(creds: Creds | None = None, timeout: float = 5.0) -> RegistryClient:
    return RegistryClient(credentials=(lambda host: creds), timeout=timeout)


def ref(reg: FakeRegistry, name: str = "team/app:v1") -> ImageRef:
    return parse_image(f"127.0.0.1:{reg.port}/{name}")


def test_resolve_reads_the_digest_config_and_chain_id() -> None:
    with serve(FakeRegistry()) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        found = client().resolve(ref(reg))
    assert found.digest == ids["digest"]
    assert found.config == ids["config"]
    assert found.layers == chain_id(LAYERS) != LAYERS[0]
    manifest_get = next(r for r in reg.requests if "/manifests/" in r[1])
    accept = manifest_get[2]["Accept"]
    for media in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        assert media in accept
    assert accept == ACCEPT


def test_an_index_resolves_to_its_own_digest_and_the_amd64_image() -> None:
    with serve(FakeRegistry()) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS, index=True)
        found = client().resolve(ref(reg))
    assert reg.manifests[("team/app", "v1")][0] == OCI_INDEX
    assert found.digest == ids["digest"] != ids["manifest"]  # the tag names the index; BuildKit pins that
    assert found.config == ids["config"]


def test_without_a_digest_header_the_digest_is_the_body_hash() -> None:
    with serve(FakeRegistry(send_digest=False)) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        assert client().resolve(ref(reg)).digest == ids["digest"]
        assert client().head_digest(ref(reg)) == ids["digest"]  # HEAD without the header falls back to GET


def test_head_digest_uses_head() -> None:
    with serve(FakeRegistry()) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        assert client().head_digest(ref(reg)) == ids["digest"]
    assert [r[0] for r in reg.requests] == ["HEAD"]


def test_a_digest_that_does_not_match_the_body_is_refused() -> None:
    with serve(FakeRegistry(wrong_digest=True)) as reg:
        reg.add_image("team/app", "v1", LAYERS)
        with pytest.raises(RegistryError, match="does not match its digest"):
            client().resolve(ref(reg))


def test_basic_auth_from_the_hook() -> None:
    with serve(FakeRegistry(auth="basic")) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        assert client(Creds()).resolve(ref(reg)).digest == ids["digest"]
        asked = []
        RegistryClient(credentials=lambda host: asked.append(host) or Creds()).resolve(ref(reg))
    assert asked == [f"127.0.0.1:{reg.port}"]


def test_bearer_challenge_fetches_a_token_with_the_credentials() -> None:
    with serve(FakeRegistry(auth="bearer")) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        c = client(Creds())
        assert c.resolve(ref(reg)).digest == ids["digest"]
    token_calls = [r for r in reg.requests if r[1].startswith("/token")]
    assert len(token_calls) == 1  # the token is reused for the manifest and the config blob
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_calls[0][1] and "service=fake" in token_calls[0][1]
    assert any(r[2].get("Authorization") == "Bearer good-token" for r in reg.requests if "/blobs/" in r[1])


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_wrong_or_missing_credentials_are_unauthorized_with_docker_login_hint(auth: str) -> None:
    with serve(FakeRegistry(auth=auth)) as reg:
        reg.add_image("team/app", "v1", LAYERS)
        for creds in (Creds(password="wrong"), None):
            with pytest.raises(RegistryAuthError) as info:
                client(creds).resolve(ref(reg))
            assert info.value.registry == f"127.0.0.1:{reg.port}"
            assert f"docker login 127.0.0.1:{reg.port}" in (info.value.hint or "")
            assert "wrong" not in str(info.value) and "wrong" not in (info.value.hint or "")


def test_a_failing_credentials_hook_is_an_error_not_a_traceback() -> None:
    def broken(host: str) -> None:
        raise RuntimeError("helper crashed with secret s3cr3t")

    with serve(FakeRegistry(auth="basic")) as reg:
        reg.add_image("team/app", "v1", LAYERS)
        with pytest.raises(RegistryAuthError) as info:
            RegistryClient(credentials=broken).resolve(ref(reg))
    assert "s3cr3t" not in str(info.value)


def test_unknown_tag_is_not_found() -> None:
    with serve(FakeRegistry()) as reg:
        with pytest.raises(ImageNotFound, match="team/app:nope"):
            client().resolve(ref(reg, "team/app:nope"))


def test_a_closed_port_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryUnavailable) as info:
        client().resolve(parse_image(f"127.0.0.1:{port}/team/app:v1"))
    assert info.value.registry == f"127.0.0.1:{port}" and info.value.hint


def test_a_stalled_registry_times_out() -> None:
    with serve(FakeRegistry(stall=3.0)) as reg:
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable, match="no answer in time"):
            client(timeout=0.5).resolve(ref(reg))
        assert time.monotonic() - started < 2.9


def test_authorization_does_not_follow_a_redirect_to_another_host() -> None:
    with serve(FakeRegistry(auth="basic", redirect_blobs_to="localhost")) as reg:
        reg.add_image("team/app", "v1", LAYERS)
        reg.auth = "basic"
        # the blob host ("localhost") asks for auth too in this fake, so the config fetch is refused there:
        with pytest.raises(RegistryAuthError):
            client(Creds()).resolve(ref(reg))
    redirected = [r for r in reg.requests if "/blobs/" in r[1] and r[2].get("Host", "").startswith("localhost")]
    assert redirected and all("Authorization" not in r[2] for r in redirected)


def test_redirected_blob_without_auth_is_read() -> None:
    with serve(FakeRegistry(redirect_blobs_to="localhost")) as reg:
        ids = reg.add_image("team/app", "v1", LAYERS)
        assert client().resolve(ref(reg)).config == ids["config"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("127.8.9.1", True),
        ("[::1]:5000", True),
        ("::1", True),
        ("10.0.0.1:5000", False),
        ("ghcr.io", False),
        ("128.0.0.1", False),
    ],
)
def test_loopback_hosts_are_docker_insecure_registries(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_chain_id_follows_the_oci_definition() -> None:
    a, b = LAYERS
    assert chain_id([a]) == a
    assert chain_id([a, b]) == digest_of(f"{a} {b}".encode())
    with pytest.raises(ValueError, match="no ChainID"):
        chain_id([])
