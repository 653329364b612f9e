"""Load and validate ``cerebrium.toml``.

:func:`load` never raises for bad input: it returns the config (or None) and
every diagnostic found.  :func:`load_config` is the strict form that raises
:class:`~builder.errors.ConfigError` carrying the same diagnostics.

>>> result = load("fixtures/apps/minimal")
>>> result.config.deployment.name, result.ok
('minimal', True)
>>> load_config("fixtures/apps/minimal").deployment.python_version
'3.12'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from builder.config.lines import key_lines
from builder.config.model import (
    Config,
    Dependencies,
    DependencyPaths,
    Deployment,
    Hardware,
    RuntimeCustom,
    Scaling,
    SourceMap,
)
from builder.config.read import CONFIG_NAME, read_source
from builder.config.validate import validate_mapping
from builder.diagnostics import Diagnostic
from builder.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "Config",
    "Dependencies",
    "DependencyPaths",
    "Deployment",
    "Hardware",
    "LoadResult",
    "RuntimeCustom",
    "Scaling",
    "SourceMap",
    "load",
    "load_config",
]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The outcome of :func:`load`: ``config`` is None iff an error was found."""

    config: Config | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether a config was produced (no error found)."""
        return self.config is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The error diagnostics, in file order."""
        return tuple(d for d in self.diagnostics if d.level == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The warning diagnostics, in file order."""
        return tuple(d for d in self.diagnostics if d.level == "warning")


def load(path: str | os.PathLike[str] = ".") -> LoadResult:
    """Read and validate ``path`` (``cerebrium.toml`` or the directory holding it).

    Never raises for a bad file: missing, empty, binary, oversized, TOML syntax
    errors and invalid values all come back as error diagnostics.
    """
    source = read_source(path)
    if source.data is None:
        return LoadResult(None, source.diagnostics)
    text = source.text or ""
    config, diagnostics = validate_mapping(
        source.data,
        path=source.path,
        text=text,
        display=source.display,
        lines=key_lines(text),
    )
    return LoadResult(config, diagnostics)


def load_config(path: str | os.PathLike[str] = ".") -> Config:
    """Like :func:`load`, but return the config or raise ``ConfigError``.

    Warnings are dropped; use :func:`load` to see them.
    """
    result = load(path)
    if result.config is None:
        errors = result.errors
        first = errors[0] if errors else None
        count = len(errors)
        if count == 1 and first is not None:
            message = first.format()
        else:
            where = first.file if first and first.file else os.fspath(path)
            message = f"{where}: invalid configuration ({count} errors)"
        raise ConfigError(
            message,
            file=first.file if first else None,
            key_path=first.key_path if first else None,
            line=first.line if first else None,
            diagnostics=errors,
        )
    return result.config
