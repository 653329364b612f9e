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
(interpreter, installed packages, builder's sources) equals its own.
"""

from __future__ import annotations

from builder.server.client import run_via_server
from builder.server.spawn import spawn, start_and_wait

__all__ = ["run_via_server", "spawn", "start_and_wait"]
