"""A small gRPC server over one HTTP/2 connection we do not own (built on ``h2``).

The daemon is the HTTP/2 client of a session, and the connection is either a
``Control.Session`` byte stream or an upgraded socket.  grpcio cannot serve
such a connection directly (it needs a relay through a unix socket) and sends
one message at a time, which makes fsutil's many small packets slow.  This
server speaks just the gRPC we need straight on the connection: it runs the
same ``grpc.RpcMethodHandler`` objects the attachables hand out, and every
write is queued, so many messages leave in one transport chunk.  A handler may
yield a :class:`~builder.engines.buildkit.session.stream.MessageBatch` (its
context says ``accepts_batches``): all its messages go into DATA frames (gRPC
lets messages share and straddle frames) with a single flush.

Threads: the transport's reader calls :meth:`H2GrpcServer.receive` with
incoming bytes; each call runs its handler in its own thread; outgoing bytes
go to the ``write`` callable given at construction (which must not block for
long: queue them).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from builder.engines.buildkit.session.attachable import MethodTable
from builder.engines.buildkit.session.errors import SessionError
from builder.engines.buildkit.session.stream import MessageBatch

_WINDOW = 16 * 1024 * 1024
_FLUSH_AT = 256 * 1024  # hand a long batch to the transport in pieces (a BytesMessage stays small)
_END = object()
_RESET = object()


class _Abort(Exception):
    """Raised by ``context.abort`` inside a handler."""


class CallCancelled(SessionError):
    """The daemon reset the stream (it cancelled the call)."""


class _Call:
    """One gRPC call (HTTP/2 stream) and the ServicerContext its handler sees."""

    accepts_batches = True  # the handler may yield MessageBatch values (see stream.serve_stream)

    def __init__(
        self, server: H2GrpcServer, stream_id: int, method: str, metadata: tuple[tuple[str, str], ...]
    ) -> None:
        self._server = server
        self.stream_id = stream_id
        self.method = method
        self._metadata = metadata
        self.inbound: queue.Queue[object] = queue.Queue()
        self.buffer = bytearray()
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.headers_sent = False
        self.finished = False
        self.reset = False
        self._callbacks: list[Callable[[], None]] = []

    # --- the ServicerContext subset our handlers use ---
    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise _Abort(details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details

    def is_active(self) -> bool:
        return not (self.finished or self.reset or self._server.closed)

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._server.lock:
            if not self.is_active():
                return False
            self._callbacks.append(callback)
            return True

    def time_remaining(self) -> float | None:
        return None

    def terminate(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    # --- requests ---
    def requests(self) -> Iterator[bytes]:
        while True:
            item = self.inbound.get()
            if item is _END:
                return
            if item is _RESET:
                raise CallCancelled("the engine cancelled the call")
            assert isinstance(item, bytes)
            yield item


class H2GrpcServer:
    """Serve ``table`` on one server-side HTTP/2 connection; see the module docstring."""

    def __init__(self, table: MethodTable, write: Callable[[bytes], None]) -> None:
        self._table = table
        self._write = write
        self.lock = threading.Condition()
        self.closed = False
        self._calls: dict[int, _Call] = {}
        self._threads: list[threading.Thread] = []
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_inbound_headers=False)
        self._conn = h2.connection.H2Connection(config=config)
        with self.lock:
            self._conn.initiate_connection()
            self._conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
            self._conn.increment_flow_control_window(_WINDOW)
            self._flush()

    # --- connection input ---
    def receive(self, data: bytes) -> None:
        """Feed bytes from the daemon (call from one reader thread)."""
        with self.lock:
            if self.closed:
                return
            try:
                events = self._conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                self._close_locked()
                raise SessionError(f"the engine broke the session's HTTP/2 protocol: {exc}") from exc
            starts = [self._on_event(event) for event in events]
            self._flush()
            self.lock.notify_all()
        for call in starts:
            if call is not None:
                thread = threading.Thread(target=self._run, args=(call,), name=f"bk-call-{call.stream_id}", daemon=True)
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
                thread.start()

    def _on_event(self, event: h2.events.Event) -> _Call | None:
        if isinstance(event, h2.events.RequestReceived):
            return self._on_request(event)
        if isinstance(event, h2.events.DataReceived):
            call = self._calls.get(event.stream_id)
            self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if call is not None and event.data:
                call.buffer += event.data
                self._split_messages(call)
        elif isinstance(event, h2.events.StreamEnded):
            call = self._calls.get(event.stream_id)
            if call is not None:
                call.inbound.put(_END)
        elif isinstance(event, h2.events.StreamReset):
            call = self._calls.pop(event.stream_id, None)
            if call is not None:
                call.reset = True
                call.inbound.put(_RESET)
                call.terminate()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._close_locked()
        return None

    def _on_request(self, event: h2.events.RequestReceived) -> _Call | None:
        headers = [(str(k), str(v)) for k, v in event.headers or ()]
        path = next((v for k, v in headers if k == ":path"), "")
        metadata = tuple((k, v) for k, v in headers if not k.startswith(":"))
        call = _Call(self, event.stream_id, path, metadata)
        self._calls[event.stream_id] = call
        return call

    @staticmethod
    def _split_messages(call: _Call) -> None:
        buf = call.buffer
        while len(buf) >= 5:
            size = int.from_bytes(buf[1:5], "big")
            if len(buf) < 5 + size:
                return
            if buf[0]:
                call.inbound.put(_RESET)  # compressed messages: we never offer compression
                return
            call.inbound.put(bytes(buf[5 : 5 + size]))
            del buf[: 5 + size]

    # --- handlers ---
    def _run(self, call: _Call) -> None:
        handler = self._table.table.get(call.method)
        if handler is None:
            self._finish(call, grpc.StatusCode.UNIMPLEMENTED, f"method {call.method} is not served")
            return
        try:
            for response in self._responses(handler, call):
                if type(response) is MessageBatch:
                    self.send_messages(call, response)
                else:
                    self.send_message(call, response)
            self._finish(call, call.code, call.details)
        except _Abort:
            self._finish(call, call.code, call.details)
        except (CallCancelled, SessionError):
            self._finish(call, grpc.StatusCode.CANCELLED, "cancelled")
        except Exception as exc:  # a handler bug must not take the session down
            self._finish(call, grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _responses(handler: grpc.RpcMethodHandler, call: _Call) -> Iterator[bytes]:
        decode = handler.request_deserializer or (lambda b: b)
        encode = handler.response_serializer or (lambda m: m)
        requests = (decode(raw) for raw in call.requests())
        if handler.request_streaming:
            request: Any = requests
        else:
            request = next(requests, None)
            if request is None:
                call.abort(grpc.StatusCode.INTERNAL, "no request message")
        behaviour = {
            (False, False): handler.unary_unary,
            (False, True): handler.unary_stream,
            (True, False): handler.stream_unary,
            (True, True): handler.stream_stream,
        }[(bool(handler.request_streaming), bool(handler.response_streaming))]
        result = behaviour(request, call)
        if handler.response_streaming:
            for item in result:
                yield item if type(item) is MessageBatch else encode(item)  # type: ignore[misc]  # batches pass through
        else:
            yield encode(result)

    # --- output ---
    def _send_headers_locked(self, call: _Call) -> None:
        if not call.headers_sent:
            call.headers_sent = True
            self._conn.send_headers(call.stream_id, [(":status", "200"), ("content-type", "application/grpc")])

    def send_message(self, call: _Call, payload: bytes) -> None:
        """Send one gRPC message on ``call``, waiting for flow-control window as needed."""
        self._send_bytes(call, len(payload).to_bytes(5, "big") + payload)  # first byte 0: not compressed

    def send_messages(self, call: _Call, payloads: list[bytes]) -> None:
        """Send several gRPC messages on ``call`` in order, packed into as few DATA frames as fit."""
        self._send_bytes(call, b"".join([b for p in payloads for b in (len(p).to_bytes(5, "big"), p)]))

    def _send_bytes(self, call: _Call, data: bytes) -> None:
        """Length-prefixed messages → DATA frames within the flow-control window; flush at the end."""
        frame = memoryview(data)
        with self.lock:
            self._send_headers_locked(call)
            pending = 0
            while frame:
                if not call.is_active():
                    raise CallCancelled("the call ended while sending")
                room = min(self._conn.local_flow_control_window(call.stream_id), self._conn.max_outbound_frame_size)
                if room <= 0:
                    self._flush()
                    pending = 0
                    self.lock.wait(1.0)
                    continue
                piece = frame[:room]
                self._conn.send_data(call.stream_id, piece.tobytes())
                frame = frame[room:]
                pending += len(piece)
                if pending >= _FLUSH_AT:
                    self._flush()
                    pending = 0
            self._flush()

    def _finish(self, call: _Call, code: grpc.StatusCode, details: str) -> None:
        with self.lock:
            if call.is_active():
                trailers = [("grpc-status", str(code.value[0]))]
                if details:
                    trailers.append(("grpc-message", quote(details, safe=" !#$&'()*+,/:;=?@[]~")))
                if not call.headers_sent:  # trailers-only response
                    call.headers_sent = True
                    trailers = [(":status", "200"), ("content-type", "application/grpc"), *trailers]
                with contextlib.suppress(h2.exceptions.StreamClosedError):  # the daemon already reset it
                    self._conn.send_headers(call.stream_id, trailers, end_stream=True)
                self._flush()
            call.finished = True
            self._calls.pop(call.stream_id, None)
        call.terminate()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._write(data)

    # --- shutdown ---
    def _close_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        calls, self._calls = list(self._calls.values()), {}
        for call in calls:
            call.reset = True
            call.inbound.put(_RESET)
            call.terminate()
        self.lock.notify_all()

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` seconds each) for the handler threads to return."""
        for thread in list(self._threads):
            thread.join(timeout)

    def close(self) -> None:
        """Say goodbye (GOAWAY) and cancel every running call (handlers see a cancelled call)."""
        with self.lock:
            if not self.closed:
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._conn.close_connection()
                    self._flush()
            self._close_locked()
