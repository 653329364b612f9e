"""conda back-end: rattler solves against a local channel; conda-lock format; solver choice; failures."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from deps_helpers import CountingRunner, make_config

from builder.deps import CONDA_LOCK_STALE, resolve_dependencies
from builder.deps.conda import conda_set_from_inline
from builder.deps.lock import MemoryResolutionStore
from builder.deps.lock.conda import (
    CondaLockSolver,
    RattlerSolver,
    SolvedPackage,
    lock_conda,
    select_solver,
    solve_cached,
    write_conda_lock,
)
from builder.deps.lock.files import CONDA_LOCK, DIGEST_KEY, conda_input_digest
from builder.errors import LockError


def local_set(channel: Path, **specs: str) -> Any:
    return replace(conda_set_from_inline(tuple(sorted(specs.items()))), channels=(channel.as_uri(),))


def test_rattler_solves_against_a_local_channel(conda_channel: Path) -> None:
    packages = RattlerSolver().solve(local_set(conda_channel, gamma="latest"), platform="linux-64", timeout=60)
    assert [(p.name, p.version) for p in packages] == [("alpha", "1.1"), ("beta", "2.5"), ("gamma", "0.3")]
    assert all(len(p.sha256) == 64 and p.url.startswith("file://") for p in packages)


def test_specs_constrain_the_solution(conda_channel: Path) -> None:
    packages = RattlerSolver().solve(
        local_set(conda_channel, gamma="latest", alpha="1.0"), platform="linux-64", timeout=60
    )
    assert [(p.name, p.version) for p in packages] == [("alpha", "1.0"), ("gamma", "0.3")]


def test_unsatisfiable_specs(conda_channel: Path) -> None:
    with pytest.raises(LockError, match="conda solve failed"):
        RattlerSolver().solve(local_set(conda_channel, alpha=">=9"), platform="linux-64", timeout=60)


def test_unreachable_channel_is_a_fast_clear_error() -> None:
    conda_set = replace(conda_set_from_inline((("alpha", "latest"),)), channels=("http://127.0.0.1:9/chan",))
    start = time.monotonic()
    with pytest.raises(LockError, match="could not fetch conda repodata") as info:
        RattlerSolver().solve(conda_set, platform="linux-64", timeout=30)
    assert time.monotonic() - start < 30
    assert "127.0.0.1:9" in (info.value.hint or "")


def test_missing_local_channel(tmp_path: Path) -> None:
    conda_set = replace(conda_set_from_inline((("alpha", "latest"),)), channels=((tmp_path / "nope").as_uri(),))
    with pytest.raises(LockError):
        RattlerSolver().solve(conda_set, platform="linux-64", timeout=30)


def test_lockfile_is_readable_by_conda_lock(conda_channel: Path, tmp_path: Path) -> None:
    from builder.deps.lock.conda import _conda_lock_api

    parse_conda_lock_file = _conda_lock_api().parse_conda_lock_file
    conda_set = local_set(conda_channel, gamma="latest")
    target = tmp_path / "conda-lock.yml"
    write_conda_lock(lock_conda(conda_set, store=MemoryResolutionStore(), solver=RattlerSolver()), target)
    parsed = parse_conda_lock_file(target)
    assert sorted(p.name for p in parsed.package) == ["alpha", "beta", "gamma"]
    assert parsed.metadata.platforms == ["linux-64"]
    assert parsed.metadata.custom_metadata == {DIGEST_KEY: conda_input_digest(conda_set)}
    alpha = next(p for p in parsed.package if p.name == "alpha")
    assert alpha.dependencies == {"beta": ">=2"} and alpha.hash.sha256


def test_lockfile_bytes_are_deterministic(conda_channel: Path, tmp_path: Path) -> None:
    conda_set = local_set(conda_channel, gamma="latest")
    for name in ("a", "b"):
        lock = lock_conda(conda_set, store=MemoryResolutionStore(), solver=RattlerSolver())
        write_conda_lock(lock, tmp_path / name / "conda-lock.yml")
    assert (tmp_path / "a" / "conda-lock.yml").read_bytes() == (tmp_path / "b" / "conda-lock.yml").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["conda-lock.yml"]  # no temp leftovers


class ExplodingSolver:
    name = "exploding"

    def solve(self, *args: Any, **kwargs: Any) -> list[SolvedPackage]:
        raise AssertionError("the solver must not run on a cache hit")


def test_second_solve_comes_from_the_store(conda_channel: Path) -> None:
    store = MemoryResolutionStore()
    conda_set = local_set(conda_channel, gamma="latest")
    first = solve_cached(conda_set, store=store, solver=RattlerSolver())
    assert solve_cached(conda_set, store=store, solver=ExplodingSolver()) == first


def test_solver_selection() -> None:
    assert isinstance(select_solver(which=lambda exe: None), RattlerSolver)
    chosen = select_solver(which=lambda exe: f"/opt/bin/{exe}" if exe == "mamba" else None)
    assert isinstance(chosen, CondaLockSolver) and chosen.executable == "/opt/bin/mamba"


def test_conda_lock_solver_drives_conda_lock(tmp_path: Path) -> None:
    """With an executable on PATH, conda-lock runs (faked here) and its lock is read back."""
    written = (
        "version: 1\nmetadata:\n  content_hash: {linux-64: x}\n  channels: [{url: conda-forge, used_env_vars: []}]\n"
        "  platforms: [linux-64]\n  sources: [environment.yml]\npackage:\n"
        "- {name: zlib, version: 1.3.1, manager: conda, platform: linux-64, dependencies: {libgcc: '>=13'},\n"
        "   url: 'https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-h0.conda',\n"
        "   hash: {md5: aa, sha256: bb}, category: main, optional: false, build: h0}\n"
    )

    def fake(argv: list[str], **kwargs: Any) -> Any:
        out = Path(argv[argv.index("--lockfile") + 1])
        env = Path(argv[argv.index("--file") + 1]).read_text()
        assert '"zlib >=1.3"' in env and '"conda-forge"' in env
        out.write_text(written)
        return subprocess.CompletedProcess(argv, 0, "", "")

    runner = CountingRunner(fake)
    conda_set = conda_set_from_inline((("zlib", ">=1.3"),))
    packages = CondaLockSolver("/usr/bin/micromamba", runner).solve(conda_set, platform="linux-64", timeout=10)
    assert [(p.name, p.version, p.subdir, p.depends) for p in packages] == [
        ("zlib", "1.3.1", "linux-64", ("libgcc >=13",))
    ]
    argv = runner.calls[0]
    assert argv[argv.index("--conda") + 1] == "/usr/bin/micromamba" and "--platform" in argv


def test_conda_lock_failure_is_a_lock_error() -> None:
    def failing(argv: list[str], **kwargs: Any) -> Any:
        return subprocess.CompletedProcess(argv, 1, "", "could not solve")

    with pytest.raises(LockError, match="could not solve"):
        CondaLockSolver("conda", failing).solve(
            conda_set_from_inline((("zlib", "1"),)), platform="linux-64", timeout=10
        )


def test_resolve_dependencies_sees_a_current_or_stale_conda_lock(conda_channel: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path, conda={"gamma": "latest"})
    conda_set = resolve_dependencies(config).conda
    assert conda_set is not None and conda_set.lock_file is None
    # Lock exactly the declared set (its default channel is replaced only inside the solver call).
    packages = solve_cached(
        local_set(conda_channel, gamma="latest"), store=MemoryResolutionStore(), solver=RattlerSolver()
    )
    from builder.deps.lock.conda import build_lockfile

    write_conda_lock(build_lockfile(conda_set, packages, source="cerebrium.toml"), tmp_path / CONDA_LOCK)
    current = resolve_dependencies(config)
    assert current.conda is not None and current.conda.lock_file == CONDA_LOCK and current.notes == ()
    stale = resolve_dependencies(make_config(tmp_path, conda={"gamma": "0.3"}))
    assert stale.conda is not None and stale.conda.lock_file is None
    assert stale.notes == (CONDA_LOCK_STALE,)
