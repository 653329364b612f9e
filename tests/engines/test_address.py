"""Engine address parsing (buildctl syntax + docker://) and the auto-detect order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.buildkit.address import (
    BUILDKITD_DEFAULT_SOCKET,
    DOCKER_DEFAULT_SOCKET,
    EngineAddress,
    EngineAddressError,
    candidate_addresses,
    parse_address,
    resolve_docker_default,
)
from builder.errors import EngineError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unix:///run/buildkit/buildkitd.sock", EngineAddress("unix", path="/run/buildkit/buildkitd.sock")),
        ("UNIX:///tmp/x.sock", EngineAddress("unix", path="/tmp/x.sock")),
        ("unix:///tmp//a/./b.sock", EngineAddress("unix", path="/tmp/a/b.sock")),
        ("  unix:///tmp/x.sock \n", EngineAddress("unix", path="/tmp/x.sock")),
        ("tcp://buildkit.example:1234", EngineAddress("tcp", host="buildkit.example", port=1234)),
        ("tcp://10.0.0.5:1234/", EngineAddress("tcp", host="10.0.0.5", port=1234)),
        ("tcp://[::1]:1234", EngineAddress("tcp", host="[::1]", port=1234)),
        ("docker://", EngineAddress("docker")),
        ("docker:///var/run/docker.sock", EngineAddress("docker", path="/var/run/docker.sock")),
        ("docker://unix:///srv/d.sock", EngineAddress("docker", path="/srv/d.sock")),
        ("docker://tcp://dockerhost:2375", EngineAddress("docker", host="dockerhost", port=2375)),
        ("docker+tcp://dockerhost:2376", EngineAddress("docker", host="dockerhost", port=2376)),
    ],
)
def test_parse_valid_forms(text: str, expected: EngineAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("/run/buildkit/buildkitd.sock", "no scheme"),
        ("localhost:1234", "no scheme"),
        ("unix://relative.sock", "absolute path"),
        ("unix://", "absolute path"),
        ("unix:///", "missing"),
        ("tcp://host", "host:port"),
        ("tcp://host:0", "out of range"),
        ("tcp://host:70000", "out of range"),
        ("tcp://:1234", "host:port"),
        ("docker://relative", "docker://"),
        ("docker://ssh://x", "docker://"),
        ("docker-container://buildkitd", "not supported"),
        ("kube-pod://x", "not supported"),
        ("http://host:1234", "unknown scheme"),
        ("unix:///tmp/a?b", "not allowed"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(EngineAddressError, match=message) as info:
        parse_address(text, source="BUILDKIT_HOST")
    assert "BUILDKIT_HOST" in str(info.value)
    assert isinstance(info.value, EngineError)


def test_no_scheme_path_suggests_unix() -> None:
    with pytest.raises(EngineAddressError) as info:
        parse_address("/run/buildkit/buildkitd.sock")
    assert info.value.hint is not None
    assert "unix:///run/buildkit/buildkitd.sock" in info.value.hint


@pytest.mark.parametrize(
    "text",
    [
        "unix:///run/buildkit/buildkitd.sock",
        "tcp://h:1",
        "docker:///var/run/docker.sock",
        "docker+tcp://h:2375",
    ],
)
def test_str_round_trips(text: str) -> None:
    assert str(parse_address(text)) == text
    assert parse_address(str(parse_address(text))) == parse_address(text)


_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12).filter(
    lambda s: s not in {".", ".."}
)


@given(st.lists(_segment, min_size=1, max_size=5), st.sampled_from(["unix", "docker"]))
def test_socket_paths_round_trip(parts: list[str], scheme: str) -> None:
    text = f"{scheme}:///" + "/".join(parts)
    address = parse_address(text)
    assert address.path == "/" + "/".join(parts)
    assert parse_address(str(address)) == address


@given(st.text(max_size=60))
def test_parser_only_raises_engine_address_error(text: str) -> None:
    try:
        address = parse_address(text)
    except EngineAddressError:
        return
    assert address.kind in {"unix", "tcp", "docker"}


@given(st.integers(min_value=1, max_value=65535))
def test_every_valid_port(port: int) -> None:
    assert parse_address(f"tcp://h:{port}").port == port


def test_explicit_address_wins_over_environment() -> None:
    env = {"BUILDKIT_HOST": "tcp://other:1", "DOCKER_HOST": "unix:///d.sock"}
    assert candidate_addresses("unix:///mine.sock", env) == (EngineAddress("unix", path="/mine.sock"),)


def test_buildkit_host_wins_over_autodetect() -> None:
    assert candidate_addresses(None, {"BUILDKIT_HOST": "tcp://bk:1234"}) == (
        EngineAddress("tcp", host="bk", port=1234),
    )


def test_bad_buildkit_host_names_the_variable() -> None:
    with pytest.raises(EngineAddressError, match="BUILDKIT_HOST"):
        candidate_addresses(None, {"BUILDKIT_HOST": "nonsense"})


def test_autodetect_order_without_environment() -> None:
    assert candidate_addresses(None, {}) == (
        EngineAddress("unix", path=BUILDKITD_DEFAULT_SOCKET),
        EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET),
    )


def test_autodetect_order_with_docker_host() -> None:
    assert candidate_addresses(None, {"DOCKER_HOST": "unix:///srv/docker.sock"}) == (
        EngineAddress("unix", path=BUILDKITD_DEFAULT_SOCKET),
        EngineAddress("docker", path="/srv/docker.sock"),
        EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET),
    )


def test_autodetect_does_not_repeat_the_default_docker_socket() -> None:
    found = candidate_addresses(None, {"DOCKER_HOST": f"unix://{DOCKER_DEFAULT_SOCKET}"})
    assert found == (
        EngineAddress("unix", path=BUILDKITD_DEFAULT_SOCKET),
        EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET),
    )


def test_tcp_docker_host_is_a_docker_address() -> None:
    found = candidate_addresses(None, {"DOCKER_HOST": "tcp://dockerhost:2375"})
    assert EngineAddress("docker", host="dockerhost", port=2375) in found


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, EngineAddress("docker", path=DOCKER_DEFAULT_SOCKET)),
        ({"DOCKER_HOST": "unix:///x/d.sock"}, EngineAddress("docker", path="/x/d.sock")),
        ({"DOCKER_HOST": "tcp://h:2375"}, EngineAddress("docker", host="h", port=2375)),
    ],
)
def test_bare_docker_resolves_against_docker_host(env: dict[str, str], expected: EngineAddress) -> None:
    assert resolve_docker_default(parse_address("docker://"), env) == expected
    assert candidate_addresses("docker://", env) == (expected,)
