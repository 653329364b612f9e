"""``builder lock`` as a library call: lock every manager a config uses.

pip: compile with uv (or export a uv.lock project) and write
``cerebrium.lock/requirements.txt`` with the input digest in its header.
conda: solve and write ``cerebrium.lock/conda-lock.yml``.  apt has no lock
(Debian archives do not keep old versions).

>>> # result = lock_project(load_config("."), store=MemoryResolutionStore())
>>> # result.pip_lock, result.pip_from_cache
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from builder.config.model import Config
from builder.deps import pip as pip_parse
from builder.deps import resolve_sets
from builder.deps.lock import ResolutionStore, uv
from builder.deps.lock import conda as conda_lock
from builder.deps.lock.files import (
    CONDA_LOCK,
    PIP_LOCK,
    pip_input_digest,
    render_pip_lock,
)
from builder.deps.model import AptSet, CondaSet, PipSet
from builder.deps.paths import project_relative
from builder.errors import DependencyError, LockError

DEFAULT_EXPORT = "requirements.txt"


@dataclass(frozen=True, slots=True)
class LockOptions:
    """What ``builder lock`` was asked to do."""

    output: Path | None = None  # pip lock file; default <project>/cerebrium.lock/requirements.txt
    generate_hashes: bool = False
    from_uv_lock: bool = False
    timeout: float = uv.DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class LockResult:
    """Files written and whether each resolution came from the store."""

    pip_lock: Path | None = None
    pip_pins: int = 0
    pip_from_cache: bool = False
    exported: Path | None = None  # requirements file written by --from-uv-lock
    conda_lock: Path | None = None
    conda_packages: int = 0
    conda_from_cache: bool = False
    conda_solver: str = ""
    notes: tuple[str, ...] = ()


def lock_project(
    config: Config,
    *,
    store: ResolutionStore,
    options: LockOptions = LockOptions(),
    runner: uv.Runner | None = None,
    conda_solver: conda_lock.CondaSolver | None = None,
) -> LockResult:
    """Lock the pip and conda sets of ``config``; raises DependencyError/LockError."""
    notes: list[str] = []
    exported = _export_uv_lock(config, options, runner, notes) if options.from_uv_lock else None
    pip_set, _apt, conda_set = resolve_sets(config) if exported is None else _reload(config, exported)
    result = LockResult(exported=exported)
    if pip_set is not None:
        result = _lock_pip(config, pip_set, store, options, runner, result, exact=exported is not None)
    if conda_set is not None:
        result = _lock_conda(config, conda_set, store, conda_solver, options, result)
    if pip_set is None and conda_set is None:
        notes.append("no pip or conda dependencies: nothing to lock")
    return _with_notes(result, notes)


def _lock_pip(
    config: Config,
    pip_set: PipSet,
    store: ResolutionStore,
    options: LockOptions,
    runner: uv.Runner | None,
    result: LockResult,
    *,
    exact: bool,
) -> LockResult:
    python = config.deployment.python_version
    key = uv.resolution_key(
        pip_set, python_version=python, generate_hashes=options.generate_hashes, project_dir=config.project_dir
    )
    from_cache = exact or store.get(key) is not None
    locked = (
        pip_set
        if exact
        else uv.compile_pip(
            pip_set,
            python_version=python,
            store=store,
            generate_hashes=options.generate_hashes,
            runner=runner,
            project_dir=config.project_dir,
            timeout=options.timeout,
        )
    )
    text = render_pip_lock(locked, input_digest=pip_input_digest(pip_set, python), python_version=python)
    target = options.output or config.project_dir / PIP_LOCK
    _write(target, text)
    return _replace(result, pip_lock=target, pip_pins=len(locked.requirements), pip_from_cache=from_cache)


def _lock_conda(
    config: Config,
    conda_set: CondaSet,
    store: ResolutionStore,
    solver: conda_lock.CondaSolver | None,
    options: LockOptions,
    result: LockResult,
) -> LockResult:
    chosen = solver or conda_lock.select_solver()
    key = f"conda-solve:{conda_lock.CONDA_PLATFORM}:{conda_lock.conda_input_digest(conda_set)}"
    from_cache = store.get(key) is not None
    source = config.dependencies.paths.conda or config.path.name
    lockfile = conda_lock.lock_conda(
        conda_set, store=store, solver=chosen, source=source, timeout=min(options.timeout, conda_lock.DEFAULT_TIMEOUT)
    )
    target = config.project_dir / CONDA_LOCK
    try:
        conda_lock.write_conda_lock(lockfile, target)
    except OSError as exc:
        raise LockError(f"cannot write {target}: {exc.strerror or exc}") from exc
    return _replace(
        result,
        conda_lock=target,
        conda_packages=len(lockfile.package),
        conda_from_cache=from_cache,
        conda_solver=chosen.name,
    )


def _export_uv_lock(config: Config, options: LockOptions, runner: uv.Runner | None, notes: list[str]) -> Path:
    deps = config.dependencies
    if deps.pip:
        raise DependencyError(
            "--from-uv-lock cannot be combined with an inline [cerebrium.dependencies.pip] table",
            key_path="cerebrium.dependencies.pip",
            file=config.path.name,
            hint=f'remove the table and set [cerebrium.dependencies.paths] pip = "{DEFAULT_EXPORT}"',
        )
    rel = deps.paths.pip or DEFAULT_EXPORT
    if not deps.paths.pip:
        notes.append(f'add [cerebrium.dependencies.paths] pip = "{DEFAULT_EXPORT}" so builds use the export')
    _, target = project_relative(config.project_dir, rel, key_path="cerebrium.dependencies.paths.pip")
    text = uv.export_uv_lock(config.project_dir, runner=runner, timeout=options.timeout, hashes=options.generate_hashes)
    _write(target, "# Exported from uv.lock by `builder lock --from-uv-lock`; do not edit.\n" + text)
    return target


def _reload(config: Config, exported: Path) -> tuple[PipSet | None, AptSet | None, CondaSet | None]:
    """The sets with pip taken from the freshly exported file."""
    rel = exported.relative_to(config.project_dir.resolve()).as_posix()
    pip_set = pip_parse.pip_set_from_file(rel, project_dir=config.project_dir)
    _, apt_set, conda_set = resolve_sets(_without_pip(config))
    return (None if pip_set.is_empty else pip_set), apt_set, conda_set


def _without_pip(config: Config) -> Config:
    deps = replace(config.dependencies, pip=(), paths=replace(config.dependencies.paths, pip=None))
    return replace(config, dependencies=deps)


def _write(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise LockError(f"cannot write {target}: {exc.strerror or exc}") from exc


def _replace(result: LockResult, **changes: object) -> LockResult:
    return replace(result, **changes)  # type: ignore[arg-type]


def _with_notes(result: LockResult, notes: list[str]) -> LockResult:
    return _replace(result, notes=tuple(notes))
