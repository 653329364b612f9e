"""Fixtures for dependency tests (helpers live in deps_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deps_helpers import load_channel_module, make_wheel_project


@pytest.fixture
def wheel_project(tmp_path: Path) -> Path:
    """A project whose requirements resolve offline against ./wheels (--no-index)."""
    return make_wheel_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local, indexed conda channel with alpha/beta/gamma noarch packages."""
    module = load_channel_module()
    return module.build_channel(tmp_path_factory.mktemp("channel"), module.DEFAULT_PACKAGES)  # type: ignore[no-any-return]
