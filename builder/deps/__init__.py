"""Requirement sets per package manager, read from ``cerebrium.toml``.

:func:`resolve_dependencies` turns ``[cerebrium.dependencies]`` (inline tables
or the files named in ``paths``) into validated, canonical
:class:`ResolvedDependencies`, preferring an up-to-date ``cerebrium.lock/``.

>>> # deps = resolve_dependencies(load_config("cerebrium.toml"))
>>> # deps.pip.requirements_txt(), canonical_bytes(deps.pip)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from builder.config.locate import located
from builder.config.model import Config
from builder.deps import apt, conda, pip
from builder.deps._text import Problems, redact
from builder.deps.canonical import canonical_bytes, digest
from builder.deps.lock.files import (
    CONDA_LOCK,
    PIP_LOCK,
    conda_input_digest,
    pip_input_digest,
    read_conda_lock_digest,
    read_lock_digest,
)
from builder.deps.model import (
    AptPackage,
    AptSet,
    CondaSet,
    CondaSpec,
    Manager,
    PipRequirement,
    PipSet,
    ResolvedDependencies,
)
from builder.diagnostics import Diagnostic
from builder.errors import DependencyError

PIP_LOCK_STALE = "pip lock is out of date (run builder lock)"
CONDA_LOCK_STALE = "conda lock is out of date (run builder lock)"

__all__ = [
    "redact",
    "AptPackage",
    "AptSet",
    "CondaSet",
    "CondaSpec",
    "Manager",
    "PipRequirement",
    "PipSet",
    "ResolvedDependencies",
    "canonical_bytes",
    "digest",
    "resolve_dependencies",
    "resolve_sets",
]


def resolve_dependencies(config: Config, *, use_lock: bool = True) -> ResolvedDependencies:
    """Validated requirement sets for ``config`` (None for a manager with nothing to install).

    With ``use_lock`` a matching ``cerebrium.lock/requirements.txt`` replaces
    the pip specs (``locked=True``) and a matching conda lock is recorded in
    ``CondaSet.lock_file``; a stale lock adds a note and the specs as written
    are used.  Raises :class:`DependencyError` naming the file/key and line.
    """
    pip_set, apt_set, conda_set = resolve_sets(config)
    notes: list[str] = []
    warnings = _located_warnings(config, pip_set.warnings if pip_set is not None else ())
    if use_lock and pip_set is not None:
        pip_set = _apply_pip_lock(config, pip_set, notes)
    if use_lock and conda_set is not None:
        conda_set = _apply_conda_lock(config.project_dir, conda_set, notes)
    return ResolvedDependencies(pip=pip_set, apt=apt_set, conda=conda_set, notes=tuple(notes), warnings=warnings)


def _located_warnings(config: Config, found: tuple[Diagnostic, ...]) -> tuple[Diagnostic, ...]:
    if not found:
        return ()
    exc = DependencyError("", diagnostics=found)
    return _located(config, exc).diagnostics


def resolve_sets(config: Config) -> tuple[PipSet | None, AptSet | None, CondaSet | None]:
    """The three sets exactly as declared (no lock files consulted).

    Every problem of every manager is collected: the DependencyError raised
    carries them all in ``diagnostics``, each located in the file as the user
    named it (``app/cerebrium.toml:12``, ``app/requirements.txt:3``).
    """
    problems = Problems()
    for manager in ("pip", "apt", "conda"):
        with problems.entry():
            _check_not_both(config, manager)
    sets: dict[str, PipSet | AptSet | CondaSet] = {}
    for manager, read in (("pip", _pip_set), ("apt", _apt_set), ("conda", _conda_set)):
        with problems.entry():
            sets[manager] = read(config)
    if problems.errors:
        problems.errors[:] = [_located(config, exc) for exc in problems.errors]
        problems.raise_if_any()
    pip_set, apt_set, conda_set = sets["pip"], sets["apt"], sets["conda"]
    assert isinstance(pip_set, PipSet) and isinstance(apt_set, AptSet) and isinstance(conda_set, CondaSet)
    return (
        None if pip_set.is_empty else pip_set,
        None if apt_set.is_empty else apt_set,
        None if conda_set.is_empty else conda_set,
    )


def _lines(config: Config) -> dict[str, int]:
    return dict(config.source_map.lines) if config.source_map else {}


def _pip_set(config: Config) -> PipSet:
    deps = config.dependencies
    if deps.paths.pip:
        found = pip.pip_set_from_file(deps.paths.pip, project_dir=config.project_dir)
    else:
        found = pip.pip_set_from_inline(
            deps.pip, project_dir=config.project_dir, config_file=config.path.name, lines=_lines(config)
        )
    if config.deployment.use_uv:
        _check_uv_options(found)
    return found


def _check_uv_options(found: PipSet) -> None:
    """uv only warns about (and ignores) some options pip honours in a requirements file: refuse them."""
    problems = Problems()
    for option, file, line in found.option_sources:
        if option in pip.UV_IGNORES:
            with problems.entry():
                raise DependencyError(
                    f"{option} is honoured by pip but ignored by uv in a requirements file (use_uv = true)",
                    key_path=pip.PATHS_KEY,
                    file=file,
                    line=line or None,
                    hint="remove the line, or set cerebrium.deployment.use_uv = false to install with pip",
                )
    problems.raise_if_any()


def _apt_set(config: Config) -> AptSet:
    deps = config.dependencies
    if deps.paths.apt:
        return apt.apt_set_from_file(deps.paths.apt, project_dir=config.project_dir)
    return apt.apt_set_from_inline(deps.apt, config_file=config.path.name, lines=_lines(config))


def _conda_set(config: Config) -> CondaSet:
    deps = config.dependencies
    if deps.paths.conda:
        return conda.conda_set_from_file(deps.paths.conda, project_dir=config.project_dir)
    return conda.conda_set_from_inline(deps.conda, config_file=config.path.name, lines=_lines(config))


def _located(config: Config, exc: DependencyError) -> DependencyError:
    """``exc`` with every diagnostic placed in the file as the user named it (see builder.config.locate)."""
    diags = located(config, exc.as_diagnostics())
    first = diags[0]
    return DependencyError(
        exc.message, file=first.file, key_path=first.key_path, line=first.line, hint=exc.hint, diagnostics=diags
    )


def _check_not_both(config: Config, manager: str) -> None:
    inline = getattr(config.dependencies, manager)
    path = getattr(config.dependencies.paths, manager)
    if inline and path:
        inline_key = f"cerebrium.dependencies.{manager}"
        paths_key = f"cerebrium.dependencies.paths.{manager}"
        line = config.source_map.line_of(inline_key) if config.source_map else None
        raise DependencyError(
            f"both {inline_key} (inline table) and {paths_key} ({path!r}) are given",
            file=config.path.name,
            key_path=inline_key,
            line=line,
            hint=f"keep one: either list the packages under [{inline_key}] or point {paths_key} at a file",
        )


def _apply_pip_lock(config: Config, pip_set: PipSet, notes: list[str]) -> PipSet:
    found = read_lock_digest(config.project_dir)
    if found is None:
        return pip_set
    recorded, text = found
    if recorded != pip_input_digest(pip_set, config.deployment.python_version):
        notes.append(PIP_LOCK_STALE)
        return pip_set
    locked = pip.parse_requirements_text(
        text, rel=_lock_rel_for_paths(), project_dir=config.project_dir, key_path="cerebrium.lock"
    )
    return replace(locked, locked=True, source=PIP_LOCK)


def _lock_rel_for_paths() -> str:
    # Paths inside the lock are project-relative, so parse it as if it sat at the project root.
    return Path(PIP_LOCK).name


def _apply_conda_lock(project_dir: Path, conda_set: CondaSet, notes: list[str]) -> CondaSet:
    recorded = read_conda_lock_digest(project_dir)
    if recorded is None:
        return conda_set
    if recorded != conda_input_digest(conda_set):
        notes.append(CONDA_LOCK_STALE)
        return conda_set
    return replace(conda_set, lock_file=CONDA_LOCK)
