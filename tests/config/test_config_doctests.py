"""The usage examples in the config modules' docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = [
    "builder.config",
    "builder.config.checks",
    "builder.config.lines",
    "builder.config.read",
    "builder.config.schema",
    "builder.config.spec",
    "builder.config.validate",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # examples use fixtures/ paths
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
    assert result.attempted > 0
