"""``--push``: the registry named by --tag, who pushes on which engine, the Engine API push stream."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from builder.engines import BuildOptions
from builder.engines.buildkit.caps import derive_capabilities
from builder.engines.buildkit.export import plan_export
from builder.engines.buildkit.push import (
    exporter_pushes,
    read_push_stream,
    registries_of,
    registry_auth_header,
    registry_host,
    split_reference,
)
from builder.errors import ConfigError, EngineError, RegistryAuthError, RegistryUnavailable
from builder.registry.credentials import Credentials

DOCKERD26 = derive_capabilities(
    kind="dockerd", buildkit_version="v0.0.0+unknown", daemon_version="26.1.5", llb_caps=["mergeop"]
)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("127.0.0.1:5000/app:dev", ("127.0.0.1:5000", "127.0.0.1:5000/app", "dev")),
        ("reg.example.com/team/app", ("reg.example.com", "reg.example.com/team/app", "latest")),
        ("localhost/app:1", ("localhost", "localhost/app", "1")),
        ("localhost:5000/a/b@sha256:" + "0" * 64, ("localhost:5000", "localhost:5000/a/b", "latest")),
        ("team/app:1", (None, "team/app", "1")),
        ("app", (None, "app", "latest")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str | None, str, str]) -> None:
    assert split_reference(reference) == expected


@pytest.mark.parametrize("tag", ["app:dev", "team/app:1", None, ""])
def test_push_needs_a_registry_in_the_tag(tag: str | None) -> None:
    with pytest.raises(ConfigError, match="--push needs --tag") as info:
        registry_host(tag)
    assert info.value.key_path == "--tag"


def test_registries_of_names_base_and_push_hosts_once() -> None:
    options = BuildOptions(tag="127.0.0.1:5000/app:1", push=True)
    assert registries_of("127.0.0.1:5000/base:1", options) == ("127.0.0.1:5000",)
    assert registries_of("docker.io/library/debian:12", options) == ("docker.io", "127.0.0.1:5000")
    assert registries_of(None, BuildOptions(tag="127.0.0.1:5000/app:1")) == ()


def test_dockerd_push_goes_in_the_exporter_only_when_it_can() -> None:
    options = BuildOptions(tag="127.0.0.1:5000/app:1", push=True)
    by_exporter = plan_export(DOCKERD26, options, b"{}", exporter_pushes=True)
    assert [dict(e.attrs) for e in by_exporter.exporters] == [{"name": "127.0.0.1:5000/app:1", "push": "true"}]
    loaded = plan_export(DOCKERD26, options, b"{}", exporter_pushes=False)
    assert [(e.type, dict(e.attrs)) for e in loaded.exporters] == [("moby", {"name": "127.0.0.1:5000/app:1"})]


def test_exporter_pushes_on_buildkitd_and_the_containerd_store_only() -> None:
    containerd = {"org.mobyproject.buildkit.worker.snapshotter": "overlayfs"}
    on_containerd = derive_capabilities(
        kind="dockerd", buildkit_version="v0.13.2", daemon_version="26.1.5", llb_caps=[], worker_labels=containerd
    )
    assert exporter_pushes(on_containerd)
    assert not exporter_pushes(DOCKERD26)  # classic store: dockerd pushes after the build
    buildkitd = derive_capabilities(kind="buildkitd", buildkit_version="v0.13.2", daemon_version=None, llb_caps=[])
    assert exporter_pushes(buildkitd)


def test_registry_auth_header_is_base64url_json() -> None:
    assert base64.urlsafe_b64decode(registry_auth_header(None)) == b"{}"
    decoded = json.loads(base64.urlsafe_b64decode(registry_auth_header(Credentials("h:1", "u", "p?>~"))))
    assert decoded == {"username": "u", "password": "p?>~", "serveraddress": "h:1"}


def test_push_stream_gives_the_digest() -> None:
    lines = iter(
        [
            {"status": "The push refers to repository [h:1/app]"},
            {"status": "Pushed", "id": "a2fb"},
            {"status": "1: digest: sha256:abc size: 528"},
            {"aux": {"Tag": "1", "Digest": "sha256:abc", "Size": 528}},
        ]
    )
    assert read_push_stream(lines, "h:1", logged_in=True) == "sha256:abc"


def test_push_stream_errors_are_mapped() -> None:
    refused = iter([{"errorDetail": {"message": "unauthorized: authentication required"}, "error": "x"}])
    with pytest.raises(RegistryAuthError, match="registry h:1 refused the credentials"):
        read_push_stream(refused, "h:1", logged_in=True)
    anonymous = iter([{"error": "no basic auth credentials"}])
    with pytest.raises(RegistryAuthError, match="needs credentials"):
        read_push_stream(anonymous, "h:1", logged_in=False)
    down = iter([{"error": 'Get "https://h:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'}])
    with pytest.raises(RegistryUnavailable, match="cannot reach registry h:1"):
        read_push_stream(down, "h:1", logged_in=False)
    other = iter([{"error": "blob upload invalid"}])
    with pytest.raises(EngineError, match="pushing to h:1 failed: blob upload invalid"):
        read_push_stream(other, "h:1", logged_in=False)


def test_build_options_repr_hides_the_credentials_hook(tmp_path: Path) -> None:
    options = BuildOptions(tag="h:1/app", push=True, credentials=lambda host: Credentials(host, "u", "secret-x"))
    assert "credentials" not in repr(options) and "secret-x" not in repr(options)
