"""Capability decisions (pure) and the ``require`` messages that name the engine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.buildkit.caps import Capabilities, derive_capabilities, parse_version
from builder.errors import EngineUnsupported

# What dockerd 20.10.24 reports through LLBBridge/Ping (wire sheet §2.7), abridged.
DOCKERD20_CAPS = (
    "constraints",
    "platform",
    "exec.meta.base",
    "exec.mount.cache",
    "file.base",
    "source.image",
    "source.local",
)


def _dockerd20() -> Capabilities:
    return derive_capabilities(
        kind="dockerd", buildkit_version=None, daemon_version="20.10.24+dfsg1", llb_caps=DOCKERD20_CAPS
    )


def _dockerd26() -> Capabilities:
    return derive_capabilities(
        kind="dockerd",
        buildkit_version="v0.13.2",
        daemon_version="26.1.5",
        llb_caps=(*DOCKERD20_CAPS, "mergeop", "diffop"),
    )


def _buildkitd(version: str = "v0.17.0") -> Capabilities:
    return derive_capabilities(
        kind="buildkitd",
        buildkit_version=version,
        daemon_version=None,
        llb_caps=(*DOCKERD20_CAPS, "mergeop", "cache.gha"),
    )


def test_dockerd20_shapes() -> None:
    caps = _dockerd20()
    assert not caps.has_info
    assert not caps.supports_mergeop
    assert not caps.exporters_list_field
    assert caps.image_config_route == "gateway"
    assert caps.exporters == {"moby", "local", "tar"}
    assert caps.cache_export_types == {"inline"}


def test_dockerd26_shapes() -> None:
    caps = _dockerd26()
    assert caps.has_info
    assert caps.supports_mergeop and caps.supports_diffop
    assert caps.exporters_list_field
    assert caps.image_config_route == "gateway"  # moby exporter on the classic store still ignores the attr
    assert "image" not in caps.exporters


def test_buildkitd_shapes() -> None:
    caps = _buildkitd()
    assert caps.image_config_route == "exporter-attr"
    assert {"image", "oci", "docker", "local", "tar"} <= caps.exporters
    assert {"inline", "registry", "local", "gha"} <= caps.cache_export_types
    assert "s3" not in caps.cache_export_types


@pytest.mark.parametrize(
    ("version", "expected"), [("v0.12.5", False), ("v0.13.0", True), ("v0.20.1", True), ("v1.0.0", True)]
)
def test_exporters_list_needs_0_13(version: str, expected: bool) -> None:
    assert _buildkitd(version).exporters_list_field is expected


def test_require_names_the_engine_version() -> None:
    with pytest.raises(EngineUnsupported) as info:
        _dockerd20().require("mergeop", "independent files layer")
    message = str(info.value)
    assert "independent files layer" in message
    assert "'mergeop'" in message
    assert "dockerd 20.10.24+dfsg1" in message
    assert info.value.hint is not None and "dockerd26" in info.value.hint


def test_require_passes_when_present() -> None:
    _dockerd26().require("mergeop", "independent files layer")
    _dockerd20().require("exec.mount.cache", "cache mounts")


def test_require_exporter_and_cache_export() -> None:
    with pytest.raises(EngineUnsupported, match=r"'oci' exporter.*dockerd 20.10.24.*local, moby, tar"):
        _dockerd20().require_exporter("oci", "--output type=oci")
    with pytest.raises(EngineUnsupported, match=r"cache export type 'registry'.*supports: inline"):
        _dockerd20().require_cache_export("registry", "--cache-to registry")
    _buildkitd().require_exporter("oci", "--output type=oci")
    _buildkitd().require_cache_export("registry", "--cache-to")


def test_distro_build_with_unknown_version_decides_by_caps() -> None:
    caps = derive_capabilities(
        kind="dockerd",
        buildkit_version="v0.0.0+unknown",
        daemon_version="26.1.5+dfsg1",
        llb_caps=(*DOCKERD20_CAPS, "exporter.multiple"),
    )
    assert caps.has_info
    assert caps.exporters_list_field
    assert not caps.supports_mergeop  # moby on the classic store reports no mergeop cap
    assert "unknown version" in caps.describe()
    without = derive_capabilities(
        kind="dockerd", buildkit_version="v0.0.0+unknown", daemon_version="26.1.5", llb_caps=DOCKERD20_CAPS
    )
    assert not without.exporters_list_field


def test_describe() -> None:
    assert _dockerd20().describe() == "dockerd 20.10.24+dfsg1 (BuildKit < 0.11, no Info API)"
    assert _dockerd26().describe() == "dockerd 26.1.5 (BuildKit v0.13.2)"
    assert _buildkitd().describe() == "buildkitd (BuildKit v0.17.0)"


def test_to_json_is_sorted_and_stable() -> None:
    a = derive_capabilities(kind="dockerd", buildkit_version=None, daemon_version=None, llb_caps=["b", "a", "c"])
    b = derive_capabilities(kind="dockerd", buildkit_version=None, daemon_version=None, llb_caps=["c", "a", "b"])
    assert a.to_json() == b.to_json()
    assert a.to_json()["llb_caps"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v0.13.2", (0, 13, 2)),
        ("0.8", (0, 8, 0)),
        ("v0.8.4-0.20221020190723", (0, 8, 4)),
        ("", None),
        (None, None),
        ("dev", None),
    ],
)
def test_parse_version(text: str | None, expected: tuple[int, int, int] | None) -> None:
    assert parse_version(text) == expected


@given(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99))
def test_parse_version_round_trip(a: int, b: int, c: int) -> None:
    assert parse_version(f"v{a}.{b}.{c}") == (a, b, c)
