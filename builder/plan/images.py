"""Image reference normalisation (the ``base`` step hashes the normal form).

Docker's short forms are expanded the way ``docker pull`` reads them:

>>> normalize_image("debian:bookworm-slim")
'docker.io/library/debian:bookworm-slim'
>>> normalize_image("nvidia/cuda:12.1.1-runtime-ubuntu22.04")
'docker.io/nvidia/cuda:12.1.1-runtime-ubuntu22.04'
>>> normalize_image("ghcr.io/org/img")
'ghcr.io/org/img:latest'
>>> normalize_image("python@sha256:" + "a" * 64) == "docker.io/library/python@sha256:" + "a" * 64
True

A digest is kept (with the tag, when both are given); ``:latest`` is added
only when neither is.  ``index.docker.io`` and ``registry-1.docker.io`` are
spelled ``docker.io``; a registry host is lower-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from builder.errors import ConfigError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$"
)
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
KEY_PATH = "cerebrium.deployment.docker_base_image_url"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed reference: ``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class ResolvedBase:
    """What a base image reference pointed at when it was resolved (at the edge, before planning).

    ``reference`` is the normal form it was resolved for; ``digest`` the manifest digest its tag
    named (None when only an engine's image store knew the image, without a registry digest);
    ``layers`` the ChainID of its layers.
    """

    reference: str
    digest: str | None
    layers: str


def parse_image(ref: str) -> ImageRef:
    """Parse and normalise ``ref``; ConfigError (naming the key) when it is not a valid reference."""
    text = ref.strip()
    if not text or any(c.isspace() for c in text):
        raise _invalid(ref, "it is empty or contains whitespace")
    name, _, digest = text.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise _invalid(ref, f"digest {digest!r} is not algorithm:hex")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise _invalid(ref, f"tag {tag!r} is not a valid tag")
    registry, repository = _split_registry(name)
    if not _PATH_RE.match(repository):
        raise _invalid(ref, f"repository {repository!r} must be lower-case letters, digits and separators")
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry, repository, tag, digest or None)


def normalize_image(ref: str) -> str:
    """The fully qualified form of ``ref`` (see module docstring)."""
    return str(parse_image(ref))


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST_RE.match(first):
            raise _invalid(name, f"registry {first!r} is not a host name")
        registry = first.lower()
        if registry in _DOCKER_HUB_ALIASES:
            registry = "docker.io"
            if "/" not in rest:
                rest = "library/" + rest
        return registry, rest
    return "docker.io", name if sep else "library/" + name


def _invalid(ref: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid image reference {ref!r}: {why}",
        key_path=KEY_PATH,
        hint='use a reference such as "debian:bookworm-slim" or "docker.io/library/python:3.12-slim"',
    )
