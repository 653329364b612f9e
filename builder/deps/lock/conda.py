"""The conda back-end: solve a CondaSet for linux-64 and write a conda-lock file.

Two solvers sit behind :class:`CondaSolver`:

* :class:`CondaLockSolver` runs conda-lock itself (``python -m conda_lock``)
  and needs a conda/mamba/micromamba executable on PATH;
* :class:`RattlerSolver` uses py-rattler's solver and repodata gateway, so it
  needs no executable at all.

:func:`select_solver` picks the first when an executable exists, else the
second.  Either way the result is written with conda-lock's own lockfile
models (:mod:`conda_lock.lockfile.v2prelim.models`), stamped with our input
digest, so ``conda-lock install`` can consume it.

>>> # lock = lock_conda(conda_set, store=MemoryResolutionStore())
>>> # write_conda_lock(lock, project_dir / "cerebrium.lock/conda-lock.yml")
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from builder.deps.lock import ResolutionStore
from builder.deps.lock.files import CONDA_PLATFORM, DIGEST_KEY, conda_input_digest

__all__ = [
    "CONDA_PLATFORM",
    "CondaLockSolver",
    "CondaSolver",
    "RattlerSolver",
    "SolvedPackage",
    "build_lockfile",
    "conda_input_digest",
    "lock_conda",
    "select_solver",
    "solve_cached",
    "write_conda_lock",
]
from builder.deps.model import CondaSet
from builder.errors import LockError

if TYPE_CHECKING:
    from conda_lock.lockfile.v2prelim.models import Lockfile  # type: ignore[import-untyped]

DEFAULT_TIMEOUT = 120.0
CONDA_EXECUTABLES = ("micromamba", "mamba", "conda")
# A linux-64 build host as the solver should assume it (glibc of debian bookworm).
_VIRTUAL_PACKAGES = (
    ("__unix", "0", "0"),
    ("__linux", "6.1", "0"),
    ("__glibc", "2.36", "0"),
    ("__archspec", "1", "x86_64"),
)


@dataclass(frozen=True, slots=True)
class SolvedPackage:
    """One package of a solution (JSON-able, cached in the ResolutionStore)."""

    name: str
    version: str
    build: str
    url: str
    md5: str
    sha256: str
    depends: tuple[str, ...]
    subdir: str


class CondaSolver(Protocol):
    """Solves a conda set for one platform."""

    name: str

    def solve(self, conda_set: CondaSet, *, platform: str, timeout: float) -> list[SolvedPackage]:
        """Exact packages for ``conda_set`` on ``platform``; raises LockError."""


def channel_url(channel: str) -> str:
    """A channel name or URL as a URL rattler and conda-lock both accept."""
    return channel if "://" in channel else f"https://conda.anaconda.org/{channel}"


class RattlerSolver:
    """Solve with py-rattler (no conda executable needed)."""

    name = "rattler"

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir

    def solve(self, conda_set: CondaSet, *, platform: str, timeout: float) -> list[SolvedPackage]:
        try:
            records = asyncio.run(asyncio.wait_for(self._solve(conda_set, platform), timeout))
        except TimeoutError as exc:
            raise LockError(
                f"conda solve did not finish within {timeout:.0f} s",
                hint=f"check that the channels answer: {', '.join(conda_set.channels)}",
            ) from exc
        except _rattler_errors() as exc:
            raise _rattler_error(exc, conda_set) from exc
        return sorted((_from_record(r) for r in records), key=lambda p: p.name)

    async def _solve(self, conda_set: CondaSet, platform: str) -> list[Any]:
        import rattler

        with tempfile.TemporaryDirectory(prefix="builder-rattler-") as tmp:
            gateway = rattler.Gateway(cache_dir=self.cache_dir or Path(tmp))
            virtual = [
                rattler.GenericVirtualPackage(rattler.PackageName(n), rattler.Version(v), rattler.BuildString(b))
                for n, v, b in _VIRTUAL_PACKAGES
            ]
            return list(
                await rattler.solve(
                    [channel_url(c) for c in conda_set.channels],
                    [s.spec for s in conda_set.specs],
                    gateway=gateway,
                    platforms=[rattler.Subdir(platform), rattler.Subdir("noarch")],
                    virtual_packages=virtual,
                    timeout=datetime.timedelta(seconds=60),
                    timestamp_policy="allow-missing",
                )
            )


def _rattler_errors() -> tuple[type[Exception], ...]:
    """Rattler's own exception classes for fetching and solving (it has no common base)."""
    from rattler import exceptions as rx

    names = (
        "GatewayError",
        "SolverError",
        "FetchRepoDataError",
        "InvalidChannelError",
        "IoError",
        "InvalidMatchSpecError",
        "CacheDirError",
        "InvalidUrlError",
    )
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def _rattler_error(exc: Exception, conda_set: CondaSet) -> LockError:
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    detail = "; ".join(lines[:8])
    lowered = text.lower()
    if any(s in lowered for s in ("connect", "dns", "failed to fetch", "error sending request", "no such file")):
        return LockError(
            f"could not fetch conda repodata: {detail}",
            hint=f"check that these channels are reachable: {', '.join(conda_set.channels)}",
        )
    return LockError(f"conda solve failed: {detail}", hint="relax or fix the conda specs named above")


def _from_record(record: Any) -> SolvedPackage:
    return SolvedPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        url=str(record.url),
        md5=bytes(record.md5).hex() if record.md5 else "",
        sha256=bytes(record.sha256).hex() if record.sha256 else "",
        depends=tuple(record.depends),
        subdir=str(record.subdir),
    )


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class CondaLockSolver:
    """Solve with conda-lock, which drives a conda/mamba/micromamba executable."""

    name = "conda-lock"

    def __init__(self, executable: str, runner: Runner | None = None) -> None:
        self.executable = executable
        self.runner = runner

    def solve(self, conda_set: CondaSet, *, platform: str, timeout: float) -> list[SolvedPackage]:
        parse_conda_lock_file = _conda_lock_api().parse_conda_lock_file
        with tempfile.TemporaryDirectory(prefix="builder-conda-lock-") as tmp:
            env_file, out = Path(tmp) / "environment.yml", Path(tmp) / "conda-lock.yml"
            env_file.write_text(_environment_yml(conda_set), encoding="utf-8")
            argv = [
                sys.executable,
                "-m",
                "conda_lock",
                "lock",
                "--file",
                str(env_file),
                "--platform",
                platform,
                "--lockfile",
                str(out),
                "--conda",
                self.executable,
                "--kind",
                "lock",
            ]
            try:
                result = (self.runner or subprocess.run)(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                    env={**os.environ, "NO_COLOR": "1"},
                )
            except subprocess.TimeoutExpired as exc:
                raise LockError(f"conda-lock did not finish within {timeout:.0f} s") from exc
            except OSError as exc:
                raise LockError(f"cannot run conda-lock: {exc}") from exc
            if result.returncode != 0 or not out.exists():
                tail = "; ".join((result.stderr or "").strip().splitlines()[-6:])
                raise LockError(f"conda-lock failed: {tail or 'no error output'}")
            lock = parse_conda_lock_file(out)
        return sorted((_from_locked(p) for p in lock.package if p.manager == "conda"), key=lambda p: p.name)


def _environment_yml(conda_set: CondaSet) -> str:
    # Values are validated match specs and channels; JSON strings are valid YAML scalars.
    import json

    lines = ["channels:", *(f"  - {json.dumps(c)}" for c in conda_set.channels), "dependencies:"]
    lines += [f"  - {json.dumps(s.spec)}" for s in conda_set.specs]
    return "\n".join(lines) + "\n"


def _from_locked(dep: Any) -> SolvedPackage:
    depends = tuple(f"{n} {v}".strip() if v not in ("", "*") else n for n, v in sorted(dep.dependencies.items()))
    return SolvedPackage(
        name=dep.name,
        version=dep.version,
        build=dep.build or "",
        url=dep.url,
        md5=dep.hash.md5 or "",
        sha256=dep.hash.sha256 or "",
        depends=depends,
        subdir=dep.url.rstrip("/").split("/")[-2] if "/" in dep.url else "",
    )


def select_solver(
    *, which: Callable[[str], str | None] | None = None, runner: Runner | None = None, cache_dir: Path | None = None
) -> CondaSolver:
    """conda-lock when a conda/mamba/micromamba executable is on PATH, else rattler."""
    find = which or shutil.which
    for exe in CONDA_EXECUTABLES:
        path = find(exe)
        if path:
            return CondaLockSolver(path, runner)
    return RattlerSolver(cache_dir)


def solve_cached(
    conda_set: CondaSet,
    *,
    store: ResolutionStore,
    solver: CondaSolver,
    platform: str = CONDA_PLATFORM,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[SolvedPackage]:
    """Solve through the store: the same specs + channels + platform are solved once."""
    key = f"conda-solve:{platform}:{conda_input_digest(conda_set)}"
    cached = store.get(key)
    if cached is not None and isinstance(cached.get("packages"), list):
        return [SolvedPackage(**{**p, "depends": tuple(p["depends"])}) for p in cached["packages"]]
    packages = solver.solve(conda_set, platform=platform, timeout=timeout)
    store.put(key, {"packages": [asdict(p) | {"depends": list(p.depends)} for p in packages], "solver": solver.name})
    return packages


def build_lockfile(
    conda_set: CondaSet, packages: Sequence[SolvedPackage], *, source: str, platform: str = CONDA_PLATFORM
) -> Lockfile:
    """conda-lock's Lockfile model for a solution, stamped with our input digest."""
    _conda_lock_api()
    from conda_lock.lockfile.v2prelim.models import (
        HashModel,
        LockedDependency,
        Lockfile,
        LockMeta,
    )
    from conda_lock.models.channel import Channel  # type: ignore[import-untyped]

    input_digest = conda_input_digest(conda_set)
    deps = [
        LockedDependency(
            name=p.name,
            version=p.version,
            manager="conda",
            platform=platform,
            url=p.url,
            build=p.build,
            hash=HashModel(md5=p.md5 or None, sha256=p.sha256 or None),
            dependencies=dict(_split_dep(d) for d in p.depends),
            categories={"main"},
        )
        for p in packages
    ]
    meta = LockMeta(
        content_hash={platform: input_digest},
        channels=[Channel.from_string(channel_url(c)) for c in conda_set.channels],
        platforms=[platform],
        sources=[source],
        custom_metadata={DIGEST_KEY: input_digest},
    )
    return Lockfile(package=deps, metadata=meta)


def _split_dep(spec: str) -> tuple[str, str]:
    import rattler

    ms = rattler.MatchSpec(spec)
    name = ms.name.normalized if ms.name is not None else spec.split(maxsplit=1)[0]
    return name, str(ms.version) if ms.version is not None else "*"


def write_conda_lock(lockfile: Lockfile, path: Path) -> None:
    """Write ``lockfile`` in conda-lock's format (atomically)."""
    write_conda_lock_file = _conda_lock_api().write_conda_lock_file
    path.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock names the file in its help text, so write it under its final name in a temp dir.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".builder-") as tmp:
        staged = Path(tmp) / path.name
        write_conda_lock_file(lockfile, staged, metadata_choices=None, include_help_text=True)
        os.replace(staged, path)


def _conda_lock_api() -> Any:
    """``conda_lock.lockfile``, imported without its own deprecation warnings leaking to callers."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import conda_lock.lockfile  # type: ignore[import-untyped]
        import conda_lock.lockfile.v2prelim.models  # type: ignore[import-untyped]
        import conda_lock.models.channel  # type: ignore[import-untyped]

    return conda_lock.lockfile


def lock_conda(
    conda_set: CondaSet,
    *,
    store: ResolutionStore,
    solver: CondaSolver | None = None,
    source: str = "cerebrium.toml",
    timeout: float = DEFAULT_TIMEOUT,
) -> Lockfile:
    """Solve ``conda_set`` for linux-64 (cached) and return the conda-lock Lockfile model."""
    packages = solve_cached(conda_set, store=store, solver=solver or select_solver(), timeout=timeout)
    return build_lockfile(conda_set, packages, source=source)
