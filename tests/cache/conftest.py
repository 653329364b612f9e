"""Fixtures for the cache tests: a fresh cache dir and a controllable clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_helpers import FakeClock

from cache import CacheStore, open_cache


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def store(cache_dir: Path, clock: FakeClock) -> Iterator[CacheStore]:
    with open_cache(cache_dir, clock=clock) as opened:
        yield opened
