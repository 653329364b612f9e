"""A stand-in for the daemon's half of a session, for tests and self-checks.

:class:`LoopbackDaemon` serves ``Control.Session`` on a private unix socket
exactly as BuildKit does: for each attached session it becomes the HTTP/2
*client* over the BytesMessage stream (sending the preface first) and hands
out a grpc channel that calls back into the client's session server.  Tests
use it to drive Health, FileSync, FileSend and Secrets through the real
transport, byte for byte, without an engine.

    >>> with LoopbackDaemon() as daemon, Session.start(daemon.channel(), provider) as s:  # doctest: +SKIP
    ...     peer = daemon.attached(s.id)
    ...     peer.check_health()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import grpc

from builder.engines.buildkit._pb import control_pb2, health_pb2
from builder.engines.buildkit.session.errors import SessionError
from builder.engines.buildkit.session.relay import CHUNK, SESSION_METHOD


class AttachedSession:
    """One client session as the daemon sees it: its headers and a channel back into it."""

    def __init__(self, metadata: tuple[tuple[str, str], ...], sock_path: str) -> None:
        self.metadata = metadata
        self.channel = grpc.insecure_channel(f"unix:{sock_path}")
        self.closed = threading.Event()

    def header(self, key: str) -> list[str]:
        """Every value of session header ``key`` (lower-case)."""
        return [str(v) for k, v in self.metadata if k == key]

    def check_health(self, timeout: float = 10.0) -> int:
        """Call Health/Check like the daemon does; return the status number (1 = SERVING)."""
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        return int(check(health_pb2.HealthCheckRequest(), timeout=timeout).status)


class LoopbackDaemon:
    """Serve ``Control.Session`` like BuildKit; see the module docstring."""

    def __init__(self, *, max_chunk: int = CHUNK) -> None:
        """``max_chunk`` caps each BytesMessage the daemon sends (tiny values test arbitrary boundaries)."""
        self._max_chunk = max_chunk
        self._dir = tempfile.mkdtemp(prefix="bk-loopback-")
        self._path = os.path.join(self._dir, "control.sock")
        self._sessions: dict[str, AttachedSession] = {}
        self._cond = threading.Condition()
        self._count = 0
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="bk-loopback"))
        handler = grpc.stream_stream_rpc_method_handler(
            self._session,
            request_deserializer=control_pb2.BytesMessage.FromString,
            response_serializer=control_pb2.BytesMessage.SerializeToString,
        )
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("moby.buildkit.v1.Control", {"Session": handler})]
        )
        self._server.add_insecure_port(f"unix:{self._path}")
        self._server.start()
        self._channels: list[grpc.Channel] = []
        assert SESSION_METHOD == "/moby.buildkit.v1.Control/Session"

    def channel(self) -> grpc.Channel:
        """A client channel to this fake control API."""
        channel = grpc.insecure_channel(f"unix:{self._path}")
        self._channels.append(channel)
        return channel

    def attached(self, session_id: str, timeout: float = 10.0) -> AttachedSession:
        """The session with ``session_id`` once it has attached."""
        with self._cond:
            if not self._cond.wait_for(lambda: session_id in self._sessions, timeout):
                raise SessionError(f"session {session_id} never attached")
            return self._sessions[session_id]

    def _session(
        self, requests: Iterator[control_pb2.BytesMessage], context: grpc.ServicerContext
    ) -> Iterator[control_pb2.BytesMessage]:
        metadata = tuple((k, str(v)) for k, v in context.invocation_metadata() or ())
        with self._cond:
            self._count += 1
            listen_path = os.path.join(self._dir, f"peer{self._count}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(listen_path)
        listener.listen(1)
        attached = AttachedSession(metadata, listen_path)
        grpc.channel_ready_future(attached.channel)  # makes the channel dial now and send its preface
        conn, _ = listener.accept()
        listener.close()

        def pump_in() -> None:
            try:
                for message in requests:
                    conn.sendall(message.data)
            except (OSError, grpc.RpcError):
                pass
            finally:
                attached.closed.set()
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump_in, daemon=True).start()
        session_id = next((v for k, v in metadata if k == "x-docker-expose-session-uuid"), "")
        with self._cond:
            self._sessions[session_id] = attached
            self._cond.notify_all()
        try:
            while data := conn.recv(CHUNK):
                for i in range(0, len(data), self._max_chunk):
                    yield control_pb2.BytesMessage(data=data[i : i + self._max_chunk])
        except OSError:
            pass
        finally:
            conn.close()
            attached.channel.close()

    def close(self) -> None:
        """Stop serving and remove the sockets."""
        for channel in self._channels:
            channel.close()
        self._server.stop(grace=1).wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LoopbackDaemon:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
