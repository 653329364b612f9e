"""Whose cache directory this is: only a cache nobody else can write is used, unless shared on purpose.

Whoever can write a cache directory decides what builds reuse (and, with a
looser store, what runs).  So a cache root must be owned by the user running
builder and not writable by anyone else, and so must each directory above it
(owned by root or the user; writable by others only when sticky, like
``/tmp``).  A private root that is merely readable by others is tightened to
0700.

A cache shared on purpose (a CI volume owned by the CI user, a group-shared
directory) is used when ``BUILDER_CACHE_SHARED=1`` is set: the owner of such a
volume is then trusted like the user, and files are created group-readable and
writable (0660, directories 0770) instead of 0600/0700.  Nothing read from any
cache is ever unpickled or followed outside it (see :mod:`cache.disk`).

Example::

    >>> shared_opt_in({"BUILDER_CACHE_SHARED": "1"}), shared_opt_in({})
    (True, False)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cache.errors import CacheUnavailable

ENV_SHARED = "BUILDER_CACHE_SHARED"
_YES = ("1", "yes", "true", "on")


class CacheRefused(CacheUnavailable):
    """The cache directory could be changed by another user, and sharing it was not asked for."""


def shared_opt_in(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``$BUILDER_CACHE_SHARED`` says a cache owned or writable by others is meant to be used."""
    env = os.environ if environ is None else environ
    return env.get(ENV_SHARED, "").strip().lower() in _YES


def check_root(root: Path, *, shared: bool) -> None:
    """Raise :class:`CacheRefused` unless only this user (or root) can change ``root`` and its ancestors.

    A missing ``root`` is judged by the directories above it (it will be created 0700).  With
    ``shared`` nothing is refused.  A root of ours with group or other permissions is tightened to 0700.
    """
    if shared:
        return
    uid = os.getuid()
    real = Path(os.path.realpath(root))
    for directory in reversed(real.parents):
        _check_ancestor(root, directory, uid)
    try:
        info = os.lstat(real)
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable: opening the store reports it
    if info.st_uid != uid:
        raise _refused(root, f"it is owned by uid {info.st_uid}, not by you (uid {uid})")
    if _writable_by_others(info):
        raise _refused(root, f"other users can write it (mode {stat.S_IMODE(info.st_mode):04o})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        try:
            os.chmod(real, 0o700)
        except OSError as exc:
            raise _refused(root, f"it cannot be made private (chmod 0700: {exc.strerror})") from exc


def _check_ancestor(root: Path, directory: Path, uid: int) -> None:
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return  # created by us below an ancestor already checked
    except OSError:
        return
    if info.st_uid not in (0, uid):
        raise _refused(root, f"{directory} above it belongs to uid {info.st_uid}, who could replace the cache")
    if _writable_by_others(info) and not info.st_mode & stat.S_ISVTX:
        raise _refused(
            root,
            f"{directory} above it is writable by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}, not sticky), who could replace the cache",
        )


def _writable_by_others(info: os.stat_result) -> bool:
    return bool(info.st_mode & stat.S_IWOTH or (info.st_mode & stat.S_IWGRP and info.st_gid != os.getgid()))


def _refused(root: Path, why: str) -> CacheRefused:
    return CacheRefused(
        f"cache directory {root} is not used: {why}; whoever can write a cache decides what builds reuse. "
        f"Use a directory of your own (--cache-dir or BUILDER_CACHE_DIR), or set {ENV_SHARED}=1 if this is a "
        "cache shared on purpose whose owner you trust (e.g. a CI volume)"
    )
