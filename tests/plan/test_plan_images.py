"""Image reference normalisation."""

from __future__ import annotations

import pytest

from builder.errors import ConfigError
from builder.plan.images import normalize_image

SAME = [
    ("debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"),
    ("docker.io/library/debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"),
    ("docker.io/debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"),
    ("index.docker.io/library/debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"),
    ("registry-1.docker.io/debian:bookworm-slim", "docker.io/library/debian:bookworm-slim"),
    ("ubuntu", "docker.io/library/ubuntu:latest"),
    ("nvidia/cuda:12.1.1-runtime-ubuntu22.04", "docker.io/nvidia/cuda:12.1.1-runtime-ubuntu22.04"),
    ("ghcr.io/org/img", "ghcr.io/org/img:latest"),
    ("GHCR.IO/org/img:v1", "ghcr.io/org/img:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("localhost/app:1", "localhost/app:1"),
    ("python@sha256:" + "a" * 64, "docker.io/library/python@sha256:" + "a" * 64),
    ("python:3.12@sha256:" + "b" * 64, "docker.io/library/python:3.12@sha256:" + "b" * 64),
    ("  debian:12  ", "docker.io/library/debian:12"),
]


@pytest.mark.parametrize(("ref", "expected"), SAME)
def test_normalise(ref: str, expected: str) -> None:
    assert normalize_image(ref) == expected


BAD = ["", "Debian:12", "debian:bad tag", "debian:-x", "python@sha256:zz", "repo//x", "a b"]


@pytest.mark.parametrize("ref", BAD)
def test_invalid_reference_names_the_key(ref: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_image(ref)
    assert info.value.key_path == "cerebrium.deployment.docker_base_image_url"
    assert info.value.hint
