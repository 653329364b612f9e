"""Which engine a build ran on, as the engine itself says: the identity step records are scoped to.

Two engines hold different caches even at the same address (a re-created runner) or with
the same version (two instances), so an address or a version string cannot say whether a
step built "before" is in *this* engine's cache.  The engine's own identifier can:

- dockerd: ``/info``'s ``ID`` (a UUID kept in its data root since 23.0, an ``ABCD:EFGH:…``
  key before), shown with its version;
- buildkitd: the first worker's id from ``Control/ListWorkers`` (random per state directory).

>>> # with open_engine(None) as client: identify(client).id  →  'dockerd:e710def8-…'
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from builder.errors import EngineError

__all__ = ["EngineIdentity", "identify", "identify_at"]

#: Seconds an identity looked up by address is reused (the warm server plans many times a minute).
IDENTITY_TTL = 30.0
#: Seconds one identity lookup may take while planning (an unreachable engine must not stall a plan).
IDENTIFY_TIMEOUT = 5.0

_recent: dict[str, tuple[float, EngineIdentity]] = {}
_recent_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class EngineIdentity:
    """An engine's stable identifier (``id``, what step records hold) and how to show it (``description``)."""

    id: str
    description: str

    def to_json(self) -> dict[str, str]:
        """``{"id", "description"}``."""
        return {"id": self.id, "description": self.description}


def identify(client: Any) -> EngineIdentity:
    """The identity of the engine behind an open :class:`~builder.engines.buildkit.client.EngineClient`.

    Raises EngineError when the engine does not say (no dockerd ``ID``, no worker).
    """
    docker = client.docker_socket
    if docker is not None:
        from builder.engines.buildkit.connect import docker_get_json

        try:
            info = json.loads(docker_get_json(docker, "/info", IDENTIFY_TIMEOUT, client.tls))
        except (OSError, ValueError) as exc:
            raise EngineError(f"dockerd at {client.address}: cannot read /info ({exc})") from exc
        if isinstance(info, dict) and isinstance(info.get("ID"), str) and info["ID"]:
            return _dockerd_identity(info)
        raise EngineError(f"dockerd at {client.address}: /info has no ID")
    workers = client.workers()
    if not workers or not workers[0].id:
        raise EngineError(f"the engine at {client.address} lists no BuildKit worker")
    version = client.capabilities.buildkit_version
    return EngineIdentity(
        f"buildkit:{workers[0].id}",
        f"buildkitd {version or '(unknown version)'} (worker {_short(workers[0].id)})",
    )


def _dockerd_identity(info: dict[str, Any]) -> EngineIdentity:
    version = str(info.get("ServerVersion") or "(unknown version)")
    return EngineIdentity(f"dockerd:{info['ID']}", f"dockerd {version} (ID {_short(info['ID'])})")


def _short(ident: str) -> str:
    return ident if len(ident) <= 14 else ident[:12] + "…"


def identify_at(address: str | None, tls: Any = None, connect_timeout: float | None = None) -> EngineIdentity:
    """Connect to the engine ``address`` names (as ``builder build --engine`` would), identify it, disconnect.

    An explicitly named engine's identity is reused for :data:`IDENTITY_TTL` seconds.  Raises
    EngineUnavailable / EngineError like connecting does.
    """
    import os

    from builder.engines.buildkit.address import candidate_addresses
    from builder.engines.buildkit.client import open_engine

    try:
        candidates = candidate_addresses(address, os.environ)
    except Exception:  # a malformed address: open_engine below says what is wrong with it
        candidates = ()
    named = str(candidates[0]) if len(candidates) == 1 else None
    now = time.monotonic()
    if named is not None:
        with _recent_lock:
            seen = _recent.get(named)
        if seen is not None and now - seen[0] < IDENTITY_TTL:
            return seen[1]
    timeout = IDENTIFY_TIMEOUT if connect_timeout is None else min(connect_timeout, IDENTIFY_TIMEOUT)
    with open_engine(address, tls=tls, connect_timeout=timeout) as client:
        found = identify(client)
    if named is not None:
        with _recent_lock:
            _recent[named] = (now, found)
    return found
