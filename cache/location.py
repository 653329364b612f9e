"""Where the cache lives.

Resolution order (first that is set and non-empty wins):

1. the explicit argument (``--cache-dir``),
2. ``BUILDER_CACHE_DIR``,
3. ``$XDG_CACHE_HOME/builder`` when ``XDG_CACHE_HOME`` is an absolute path
   (the XDG spec says relative values are invalid and must be ignored),
4. ``~/.cache/builder``.

Example::

    >>> resolve_cache_dir("/tmp/c", environ={})
    PosixPath('/tmp/c')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_CACHE_DIR = "BUILDER_CACHE_DIR"
APP_DIRNAME = "builder"


def resolve_cache_dir(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The absolute cache directory for ``cache_dir`` and the environment.

    ``~`` is expanded in every source.  Nothing is created on disk.
    """
    env = os.environ if environ is None else environ
    if cache_dir is not None and os.fspath(cache_dir) != "":
        return _absolute(os.fspath(cache_dir), env)
    explicit = env.get(ENV_CACHE_DIR, "")
    if explicit:
        return _absolute(explicit, env)
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(os.path.expanduser(xdg)):
        return Path(os.path.expanduser(xdg)) / APP_DIRNAME
    return _home(env) / ".cache" / APP_DIRNAME


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def _absolute(raw: str, env: Mapping[str, str]) -> Path:
    if raw == "~" or raw.startswith("~/"):
        raw = str(_home(env)) + raw[1:]
    else:
        raw = os.path.expanduser(raw)
    return Path(os.path.abspath(raw))
