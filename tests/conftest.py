"""Shared test fixtures.

Every ``fixtures/apps/<name>/`` becomes a pytest fixture ``app_<name>`` (``-``
becomes ``_``) that copies the app to ``tmp_path`` and returns the copy's
directory, so tests may modify it freely.  Adding an example app needs no
change here.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# CLI runs in subprocesses stay in-process: a test run must not leave warm servers behind.
# (tests/server starts its own, in private directories, and stops them.)
os.environ["BUILDER_SERVER"] = "off"
# Keys (and so the goldens) include the cache-mount scope: a caller's shared scope must not leak in.
os.environ.pop("BUILDER_CACHE_SCOPE", None)
# Plans resolve unpinned pip specs against the index by default: tests must not ask live PyPI by
# accident (tests/deps/test_deps_resolve_ttl.py turns it on against an index on 127.0.0.1).
os.environ["BUILDER_RESOLVE"] = "off"

# Property tests check what is computed, never how fast: a per-example deadline only turns a busy CI
# machine into a failed run (speed targets live in scripts/bench-*).
settings.register_profile("builder", deadline=None)
settings.load_profile("builder")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "fixtures"
APPS_DIR = FIXTURES / "apps"
INVALID_DIR = FIXTURES / "invalid"
REAL_WORLD_DIR = FIXTURES / "real-world"

APP_NAMES: tuple[str, ...] = tuple(sorted(p.name for p in APPS_DIR.iterdir() if (p / "cerebrium.toml").is_file()))


def _app_fixture(name: str) -> Callable[[Path], Path]:
    def fixture(tmp_path: Path) -> Path:
        target = tmp_path / name
        shutil.copytree(APPS_DIR / name, target)
        return target

    fixture.__name__ = f"app_{name.replace('-', '_')}"
    fixture.__doc__ = f"A fresh copy of fixtures/apps/{name} in tmp_path."
    return fixture


def _register_app_fixtures() -> None:
    module = sys.modules[__name__]
    for name in APP_NAMES:
        fixture_name = f"app_{name.replace('-', '_')}"
        setattr(module, fixture_name, pytest.fixture(name=fixture_name)(_app_fixture(name)))


_register_app_fixtures()


@pytest.fixture
def app_dir(request: pytest.FixtureRequest) -> Path:
    """Indirect form: ``@pytest.mark.parametrize("app_dir", APP_NAMES, indirect=True)``."""
    name = str(request.param)
    tmp_path: Path = request.getfixturevalue("tmp_path")
    target = tmp_path / name
    shutil.copytree(APPS_DIR / name, target)
    return target
