"""Fixtures for tests against a real BuildKit engine (every test here is marked ``integration``).

The engine comes from ``BUILDKIT_HOST`` when set; otherwise from the env files
``scripts/engine-up`` writes (``.engine/<engine>/env``), one parameter per engine that
is up, so the same tests run on every engine started (e.g. dockerd20 and dockerd26).
With no engine at all the tests fail with how to start one; they never skip silently.
The `tls` engine runs only tests marked ``remote``. The registries and fleet runners are not
in the matrix: fleet tests take them from the fixtures of ``fleet.py`` (imported here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.engines.buildkit.client import EngineClient, open_engine
from tests.integration.fleet import auth_registry, registry, runner_a, runner_b, unique_repo
from tests.integration.targets import ENGINE_DIR, REPO_ROOT, EngineTarget, read_env

# The engine matrix: every test that takes `engine_target` (or `engine`, `engine_env`) runs once per engine
# of this list that is up. Fleet runners (.engine/fleet-a, fleet-b) are not in it: only tests marked `fleet`
# use them, through fleet.py's fixtures.
ENGINE_ORDER = ("dockerd20", "dockerd26", "buildkitd", "tls")  # tls: dockerd 26 over TCP + TLS
# The tls engine runs only the tests marked `remote` (those that exercise TCP + TLS): on the same
# dockerd 26 as the dockerd26 entry, the rest would repeat it (BUILDER_TEST_TLS_ALL=1 runs them all there).
REMOTE_ONLY_ENGINES = ("tls",)
# A test taking any of these is a fleet test, marked or not.
FLEET_FIXTURES = frozenset({"registry", "auth_registry", "runner_a", "runner_b"})

__all__ = [
    "ENGINE_DIR",
    "ENGINE_ORDER",
    "REPO_ROOT",
    "EngineTarget",
    "auth_registry",
    "discover_engines",
    "registry",
    "runner_a",
    "runner_b",
    "unique_repo",
]

_read_env = read_env  # the name older tests import


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
            found.append(EngineTarget(name, read_env(path)))
    return found


ENGINES = discover_engines()


def _runs_here(item: pytest.Item) -> bool:
    """False for a test the matrix leaves out: one not marked `remote` on a remote-only engine."""
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("engine_target") if callspec is not None else None
    if not isinstance(target, EngineTarget) or target.name not in REMOTE_ONLY_ENGINES:
        return True
    return item.get_closest_marker("remote") is not None or bool(os.environ.get("BUILDER_TEST_TLS_ALL"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    kept, left_out = [], []
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
        if FLEET_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fleet)  # so `-m "not fleet"` leaves out every test that needs them
        (kept if _runs_here(item) else left_out).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


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
