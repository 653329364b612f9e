"""Fixtures for fleet tests (marked ``fleet``): the local registries and two CI runners.

- ``registry``: ``127.0.0.1:PORT`` of the plain HTTP registry ``scripts/registry-up`` started.
- ``auth_registry``: the TLS + htpasswd one (``REGISTRY_AUTH=1 scripts/registry-up``): address, CA, user
  and password (the password is left out of its repr, so it never lands in a test report).
- ``runner_a`` / ``runner_b``: the two fleet engines ``make fleet-up`` started (independent dockerd 26
  instances with the containerd image store), as :class:`EngineTarget`.
- ``docker_api(runner)``: the runner's Engine API (image inspect, /info).
- ``unique_repo``: a repository name of its own for each test, ``builder-test/<test>-<random>``, so tests
  running together (or again, against a registry that keeps what earlier runs pushed) never share one.

``make engine-up`` (and ``make test``) starts all of them. A fixture whose piece is missing fails with
the command that starts it; nothing is skipped.
"""

from __future__ import annotations

import re
import ssl
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from builder.engines.docker_api import DockerAPI
from tests.integration.targets import ENGINE_DIR, EngineTarget, read_env

FLEET_RUNNERS = ("fleet-a", "fleet-b")  # the Makefile's FLEET_INSTANCES
REPOSITORY_PREFIX = "builder-test"


@dataclass(frozen=True)
class AuthRegistry:
    """The registry with TLS and htpasswd users: where it is and how to log in."""

    address: str
    ca: Path
    user: str
    password: str = field(repr=False)


def _registry_env(name: str, how: str) -> dict[str, str]:
    path = ENGINE_DIR / name / "env"
    if not path.is_file():
        pytest.fail(f"no {name}: run `{how}` (make engine-up does) before the fleet tests")
    return read_env(path)


def _v2_status(url: str, context: ssl.SSLContext | None = None) -> int:
    """The HTTP status of GET /v2/ (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ssl.SSLError):
        return 0


@pytest.fixture(scope="session")
def registry() -> str:
    """``HOST:PORT`` of the plain registry (it answers /v2/ with 200)."""
    address = _registry_env("registry", "scripts/registry-up").get("REGISTRY", "")
    if _v2_status(f"http://{address}/v2/") != 200:
        pytest.fail(f"the registry at {address!r} does not answer /v2/: run `scripts/registry-up`")
    return address


@pytest.fixture(scope="session")
def auth_registry() -> AuthRegistry:
    """The TLS + htpasswd registry (it answers /v2/ with 401 without credentials)."""
    env = _registry_env("registry-auth", "REGISTRY_AUTH=1 scripts/registry-up")
    found = AuthRegistry(
        address=env.get("REGISTRY", ""),
        ca=Path(env.get("REGISTRY_CA", "")),
        user=env.get("REGISTRY_USER", ""),
        password=env.get("REGISTRY_PASSWORD", ""),
    )
    if not found.ca.is_file():
        pytest.fail(f"the auth registry's CA {found.ca} is missing: run `REGISTRY_AUTH=1 scripts/registry-up`")
    context = ssl.create_default_context(cafile=str(found.ca))
    if _v2_status(f"https://{found.address}/v2/", context) != 401:
        pytest.fail(
            f"the auth registry at {found.address!r} does not answer /v2/: run `REGISTRY_AUTH=1 scripts/registry-up`"
        )
    return found


def _runner(name: str) -> EngineTarget:
    path = ENGINE_DIR / name / "env"
    if not path.is_file():
        pytest.fail(
            f"no fleet runner {name}: run `make fleet-up` "
            f"(or `ENGINE=dockerd26 INSTANCE={name} SNAPSHOTTER=containerd scripts/engine-up`)"
        )
    return EngineTarget(name, read_env(path))


@pytest.fixture(scope="session")
def runner_a() -> EngineTarget:
    """The first fleet runner (.engine/fleet-a)."""
    return _runner(FLEET_RUNNERS[0])


@pytest.fixture(scope="session")
def runner_b() -> EngineTarget:
    """The second fleet runner (.engine/fleet-b): another engine, with its own image store and cache."""
    return _runner(FLEET_RUNNERS[1])


def unique_repository(label: str) -> str:
    """A fresh repository name under ``builder-test/`` (valid in any registry: lowercase, ``[a-z0-9-]``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-") or "test"
    return f"{REPOSITORY_PREFIX}/{slug}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own, e.g. ``builder-test/test-push-works-3f2a9c01d4``."""
    return unique_repository(request.node.name)


def docker_api(target: EngineTarget) -> DockerAPI:
    """The Engine API of a fleet runner (a local dockerd: its unix socket from DOCKER_HOST)."""
    host = target.env.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        pytest.fail(f"fleet runner {target.name} has no local DOCKER_HOST (got {host!r}): run `make fleet-up`")
    return DockerAPI.unix(host.removeprefix("unix://"))
