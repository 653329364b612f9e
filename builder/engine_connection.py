"""Connecting to the engine in the background while a build plans.

Connecting and probing an engine is a few network round trips; ``builder.api.build``
starts them in a thread as it begins, plans meanwhile, and only then waits::

    with EngineConnection(address) as connecting:
        plan = ...                      # planning overlaps the connection
        with connecting.engine() as engine:
            engine.build(plan, ...)
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from typing import Any

__all__ = ["EngineConnection", "explicit_engine"]


def explicit_engine(address: str | None) -> str | None:
    """The one engine address ``address`` or ``$BUILDKIT_HOST`` names (None when auto-detecting)."""
    from builder.engines.buildkit.address import candidate_addresses

    try:
        found = candidate_addresses(address, os.environ)
    except Exception:
        return None
    return str(found[0]) if len(found) == 1 else None


class EngineConnection:
    """Connects to the engine (and detects its capabilities) in a background thread.

    ``engine()`` waits for it and returns the connected engine, or raises what
    connecting raised; if the build stops before asking, the connection is
    closed as soon as it is made.
    """

    def __init__(self, address: str | None, tls: Any = None, connect_timeout: float | None = None) -> None:
        self._address = address
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None
        self._abandoned = False
        self._taken = False
        self._thread = threading.Thread(target=self._connect, name="builder-connect", daemon=True)

    def __enter__(self) -> EngineConnection:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._abandoned = True
            engine = None if self._taken else self._result
        if engine is not None:
            engine.close()

    def join(self, timeout: float | None = None) -> None:
        """Wait until connecting has finished (succeeded or failed)."""
        self._thread.join(timeout)

    def _connect(self) -> None:
        from builder.engines.buildkit import BuildKitEngine

        try:
            engine = BuildKitEngine.connect(self._address, tls=self._tls, connect_timeout=self._connect_timeout)
        except BaseException as exc:
            self._error = exc
            return
        with suppress(Exception):  # a failed probe is retried (and reported) when the build needs it
            engine.client.capabilities  # noqa: B018 - the property probes the engine
        with self._lock:
            self._result = engine
            abandoned = self._abandoned
        if abandoned:
            engine.close()

    def engine(self) -> Any:
        """The connected :class:`BuildKitEngine` (the caller closes it)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        with self._lock:
            self._taken = True
            return self._result
