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

from builder.config.model import Config
from builder.deps import apt, conda, pip
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
from builder.errors import DependencyError

PIP_LOCK_STALE = "pip lock is out of date (run builder lock)"
CONDA_LOCK_STALE = "conda lock is out of date (run builder lock)"

__all__ = [
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
    if use_lock and pip_set is not None:
        pip_set = _apply_pip_lock(config, pip_set, notes)
    if use_lock and conda_set is not None:
        conda_set = _apply_conda_lock(config.project_dir, conda_set, notes)
    return ResolvedDependencies(pip=pip_set, apt=apt_set, conda=conda_set, notes=tuple(notes))


def resolve_sets(config: Config) -> tuple[PipSet | None, AptSet | None, CondaSet | None]:
    """The three sets exactly as declared (no lock files consulted)."""
    deps = config.dependencies
    project_dir = config.project_dir
    cfile = config.path.name
    lines = dict(config.source_map.lines) if config.source_map else {}
    for manager in ("pip", "apt", "conda"):
        _check_not_both(config, manager)
    pip_set: PipSet | None
    if deps.paths.pip:
        pip_set = pip.pip_set_from_file(deps.paths.pip, project_dir=project_dir)
    else:
        pip_set = pip.pip_set_from_inline(deps.pip, project_dir=project_dir, config_file=cfile, lines=lines)
    apt_set = (
        apt.apt_set_from_file(deps.paths.apt, project_dir=project_dir)
        if deps.paths.apt
        else apt.apt_set_from_inline(deps.apt, config_file=cfile, lines=lines)
    )
    conda_set = (
        conda.conda_set_from_file(deps.paths.conda, project_dir=project_dir)
        if deps.paths.conda
        else conda.conda_set_from_inline(deps.conda, config_file=cfile, lines=lines)
    )
    return (
        None if pip_set.is_empty else pip_set,
        None if apt_set.is_empty else apt_set,
        None if conda_set.is_empty else conda_set,
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
