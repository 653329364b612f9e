"""A warm server for the ``builder`` command (like dockerd for ``docker``, or Gradle's daemon).

Most of a cached ``builder build`` is Python importing grpc, protobuf, h2 and
builder itself; the engine's own work is a fraction of it.  The first command
runs in-process and then starts a server in the background; later commands
connect to it over a private Unix socket and it forks a child with everything
already imported, which runs the command with the client's own terminal,
working directory and environment.

* ``BUILDER_SERVER=off`` runs every command in-process (no server is started);
* ``BUILDER_SERVER_IDLE`` (seconds, default 600) is how long an unused server stays;
* ``builder server start|status|stop`` manage servers explicitly.

A server serves only its own user and only clients whose code fingerprint
(interpreter, installed packages, builder's sources) equals its own; a client
talks only to a server of its own user (SO_PEERCRED), in a directory that no
other user can change (:func:`builder.server.paths.open_dir`), else it runs
in-process with a one-line warning.
"""

from __future__ import annotations

__all__ = ["run_via_server", "spawn", "start_and_wait"]
_HOMES = {
    "run_via_server": "builder.server.client",
    "spawn": "builder.server.spawn",
    "start_and_wait": "builder.server.spawn",
}


def __getattr__(name: str) -> object:  # the client must not import what only the spawner needs
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'builder.server' has no attribute {name!r}")
