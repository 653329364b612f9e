"""The public API: ``builder.__all__`` is sorted and every name exists."""

from __future__ import annotations

import builder
import builder.config


def test_all_is_sorted() -> None:
    assert builder.__all__ == sorted(builder.__all__)


def test_every_exported_name_exists() -> None:
    for name in builder.__all__:
        assert hasattr(builder, name), name


def test_config_package_exports_exist() -> None:
    for name in builder.config.__all__:
        assert hasattr(builder.config, name), name


def test_loaders_are_public() -> None:
    assert builder.load is builder.config.load
    assert builder.load_config is builder.config.load_config
    assert builder.LoadResult is builder.config.LoadResult


def test_dev_stays_the_function_after_its_module_is_imported() -> None:
    import builder.devloop

    assert builder.dev is builder.devloop.dev and callable(builder.dev)
