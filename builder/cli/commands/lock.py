"""``builder lock [PATH]``: pin pip (uv) and conda (conda-lock/rattler) dependencies.

Writes ``cerebrium.lock/requirements.txt`` (or ``--output``) and, when conda
dependencies exist, ``cerebrium.lock/conda-lock.yml``.  Resolutions are
remembered in the resolution cache (``--cache-dir`` / ``BUILDER_CACHE_DIR``),
so a second run with the same inputs does no network work.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from builder.cli import output
from builder.cli.errors import EXIT_OK

if TYPE_CHECKING:  # imported in the functions: registering the command must stay cheap
    from builder.deps.lock import ResolutionStore
    from builder.deps.lock.project import LockResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``lock`` command."""
    parser = sub.add_parser(
        "lock",
        help="pin pip and conda dependencies into cerebrium.lock/",
        description="Resolve the pip dependencies to exact pins with uv (for the configured Python version on "
        "linux/x86_64) and write cerebrium.lock/requirements.txt; lock conda dependencies into "
        "cerebrium.lock/conda-lock.yml. Plans use a lock while it matches the declared dependencies.",
    )
    parser.add_argument("path", nargs="?", default=".", help="cerebrium.toml or its directory (default: .)")
    parser.add_argument("--output", "-o", type=Path, help="write the pip lock here instead")
    parser.add_argument("--generate-hashes", action="store_true", help="record --hash values for every pin")
    parser.add_argument(
        "--from-uv-lock",
        action="store_true",
        help="export pins from pyproject.toml + uv.lock (uv export) instead of resolving",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache directory (default: $BUILDER_CACHE_DIR or the user cache directory)",
    )
    parser.set_defaults(func=run)


def open_store(cache_dir: Path | None) -> ResolutionStore:
    """The on-disk resolution store, or an in-memory one when the cache package is unavailable."""
    from builder.deps.lock import MemoryResolutionStore

    if cache_dir is None and os.environ.get("BUILDER_CACHE_DIR"):
        cache_dir = Path(os.environ["BUILDER_CACHE_DIR"])
    try:
        import cache
    except ImportError:
        return MemoryResolutionStore()
    try:
        opened = cache.open_cache(cache_dir)
    except cache.CacheUnavailable as exc:
        # Locking still works without the cache; it just repeats network work.
        output.warn(f"{exc}; resolving without the resolution cache")
        return MemoryResolutionStore()
    for message in opened.warnings:
        output.warn(message)
    store: ResolutionStore = opened.resolutions
    return store


def run(args: argparse.Namespace) -> int:
    """Lock and report what was written."""
    from builder.config import load_config
    from builder.deps.lock.project import LockOptions, lock_project

    config = load_config(args.path)
    options = LockOptions(output=args.output, generate_hashes=args.generate_hashes, from_uv_lock=args.from_uv_lock)
    result = lock_project(config, store=open_store(args.cache_dir), options=options)
    _report(result, config.project_dir)
    return EXIT_OK


def _report(result: LockResult, project_dir: Path) -> None:
    if result.exported is not None:
        output.info(f"exported uv.lock to {_show(result.exported, project_dir)}")
    if result.pip_lock is not None:
        how = "resolved with uv"
        if result.exported is not None:
            how = "from uv.lock"
        elif result.pip_from_cache:
            how = "from the resolution cache"
        output.out(f"wrote {_show(result.pip_lock, project_dir)} ({result.pip_pins} pins, {how})")
    if result.conda_lock is not None:
        how = "from the resolution cache" if result.conda_from_cache else f"solved with {result.conda_solver}"
        output.out(f"wrote {_show(result.conda_lock, project_dir)} ({result.conda_packages} packages, {how})")
    for note in result.notes:
        output.info(f"note: {note}")


def _show(path: Path, project_dir: Path) -> str:
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return str(path)
