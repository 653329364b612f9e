"""Which cache mounts a build may share: the cache scope in every cache mount id.

BuildKit cache mounts are shared by every build on an engine that names the same id.  A step
runs untrusted code with them mounted (the base image's own programs, sdist build backends), so
an unscoped id would let one project write what another project's build later reads or runs.
By default the scope is a digest of the app name (``[cerebrium.deployment] name``): projects
share nothing.  ``BUILDER_CACHE_SCOPE=<name>`` puts every project built with the same name in one
scope, on purpose (e.g. a team's CI builds that trust each other).  Both are deterministic.

>>> cache_scope("my-app", None)
'app-4c9a75cca717efb6'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from builder.plan.model import CacheMount

#: The environment variable that names a shared scope explicitly.
SCOPE_ENV = "BUILDER_CACHE_SCOPE"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def cache_scope(app: str, shared: str | None) -> str:
    """The scope of a project's cache mounts: ``app-<digest of app>``, or ``shared-<shared>`` when named.

    ValueError (naming :data:`SCOPE_ENV`) when ``shared`` is not a plain name.
    """
    if shared:
        if not _NAME.fullmatch(shared):
            raise ValueError(
                f"{SCOPE_ENV}={shared!r} is not a plain name: use 1-64 letters, digits, '_', '.' "
                "or '-', starting with a letter or digit"
            )
        return f"shared-{shared}"
    return "app-" + hashlib.sha256(app.encode("utf-8")).hexdigest()[:16]


def scoped(mounts: tuple[CacheMount, ...], scope: str) -> tuple[CacheMount, ...]:
    """``mounts`` with ``scope`` in each id (unchanged when ``scope`` is empty: plans from before scopes)."""
    if not scope:
        return mounts
    return tuple(replace(m, id=f"{m.id}-{scope}") for m in mounts)
