"""Fixtures for tests against a real BuildKit engine (every test here is marked ``integration``).

The engine comes from ``BUILDKIT_HOST`` when set; otherwise from the env files
``scripts/engine-up`` writes (``.engine/<engine>/env``), one parameter per engine that
is up, so the same tests run on every engine started (e.g. dockerd20 and dockerd26).
With no engine at all the tests fail with how to start one; they never skip silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engines.buildkit.client import EngineClient, open_engine
from builder.engines.buildkit.tls import TLSConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_DIR = REPO_ROOT / ".engine"
ENGINE_ORDER = ("dockerd20", "dockerd26", "buildkitd", "tls")  # tls: dockerd 26 over TCP + TLS


@dataclass(frozen=True)
class EngineTarget:
    """One engine to test against: its name and the environment engine-up exported."""

    name: str
    env: dict[str, str]

    @property
    def address(self) -> str:
        return self.env["BUILDKIT_HOST"]

    @property
    def tls(self) -> TLSConfig | None:
        """The TLS settings of a TCP engine (from Docker's DOCKER_CERT_PATH that engine-up printed)."""
        folder = self.env.get("DOCKER_CERT_PATH")
        if not folder:
            return None
        return TLSConfig(ca=Path(folder) / "ca.pem", cert=Path(folder) / "cert.pem", key=Path(folder) / "key.pem")

    @property
    def cli_args(self) -> list[str]:
        """``--engine`` and, for a TCP engine, the ``--tls-*`` flags, for ``builder`` command lines."""
        tls = self.tls
        extra = [] if tls is None else ["--tls-ca", str(tls.ca), "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
        return ["--engine", self.address, *extra]


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values


def discover_engines() -> list[EngineTarget]:
    """The engines to test: BUILDKIT_HOST, else every .engine/<name>/env engine-up wrote."""
    if os.environ.get("BUILDKIT_HOST"):
        env = {"BUILDKIT_HOST": os.environ["BUILDKIT_HOST"]}
        if os.environ.get("DOCKER_HOST"):
            env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        return [EngineTarget(os.environ.get("ENGINE", "env"), env)]
    wanted = os.environ.get("BUILDER_TEST_ENGINES")  # e.g. "dockerd20" to restrict the matrix
    found = []
    for name in ENGINE_ORDER:
        path = ENGINE_DIR / name / "env"
        if path.is_file() and (not wanted or name in wanted.split(",")):
            found.append(EngineTarget(name, _read_env(path)))
    return found


ENGINES = discover_engines()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", params=ENGINES or [None], ids=[e.name for e in ENGINES] or ["no-engine"])
def engine_target(request: pytest.FixtureRequest) -> EngineTarget:
    """Which engine this test runs against (parametrized over every engine that is up)."""
    target = request.param
    if target is None:
        pytest.fail("no BuildKit engine: run `scripts/engine-up` (or set BUILDKIT_HOST) before the integration tests")
    return target


@pytest.fixture(scope="session")
def engine(engine_target: EngineTarget) -> Iterator[EngineClient]:
    """A connected EngineClient for the engine under test (shared by the session)."""
    client = open_engine(engine_target.address, env=engine_target.env)
    yield client
    client.close()


@pytest.fixture(scope="session")
def engine_env(engine_target: EngineTarget) -> dict[str, str]:
    """Environment for subprocesses (``docker`` CLI, ``builder``) aimed at the engine under test."""
    env = dict(os.environ)
    env.update(engine_target.env)
    return env
