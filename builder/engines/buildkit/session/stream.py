"""A two-way packet stream: the seam between the fsutil protocol code and its transport.

The sender and the receiver only ``send`` and ``recv``; the gRPC handlers in
this package adapt a server-side call to it, and :func:`memory_pipe` joins a
sender to a receiver in one process for tests.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, Protocol, TypeVar

import grpc

from builder.engines.buildkit.session.errors import TransferError

T = TypeVar("T")
M = TypeVar("M")


class MessageStream(Protocol[T]):
    """One side of a bidirectional message stream."""

    def send(self, message: T) -> None:
        """Queue ``message`` for the peer (thread-safe)."""

    def send_many(self, messages: Sequence[T]) -> None:
        """Queue ``messages`` in order, as one unit when the transport can (one handoff, one write)."""

    def recv(self) -> T | None:
        """The next message from the peer, or None once the peer has closed its side."""


class _PipeEnd(Generic[T]):
    def __init__(self, inbox: queue.Queue[T | None], outbox: queue.Queue[T | None]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._closed = False
        self.sent: list[T] = []

    def send(self, message: T) -> None:
        if self._closed:
            raise TransferError("send on a closed pipe")
        self.sent.append(message)
        self._outbox.put(message)

    def send_many(self, messages: Sequence[T]) -> None:
        for message in messages:
            self.send(message)

    def recv(self) -> T | None:
        return self._inbox.get()

    def close(self) -> None:
        """Half-close: the peer's ``recv`` returns None after the queued messages."""
        if not self._closed:
            self._closed = True
            self._outbox.put(None)


def memory_pipe() -> tuple[_PipeEnd[T], _PipeEnd[T]]:
    """Two connected in-memory stream ends; each records what it sent in ``.sent``."""
    a: queue.Queue[T | None] = queue.Queue()
    b: queue.Queue[T | None] = queue.Queue()
    return _PipeEnd(a, b), _PipeEnd(b, a)


_DONE = object()


class MessageBatch(list[bytes]):
    """Encoded messages a server call yields as one unit (only to a transport that accepts batches).

    :class:`~builder.engines.buildkit.session.h2server.H2GrpcServer` writes a
    batch into DATA frames with one flush, instead of one flush (and one thread
    handoff) per message.  A handler yields batches only when its context has
    ``accepts_batches`` set; grpcio's contexts do not, so they get single messages.
    """

    __slots__ = ()


def ended_cleanly(context: grpc.ServicerContext, grace: float = 0.1) -> bool:
    """After a server call's request iterator ended: was it a half-close rather than a cancel?

    grpcio ends the iterator the same way for both and learns about a cancel
    through a separate event, so give that event a moment to land.  The wait
    only happens once per call, on the success path.
    """
    over = threading.Event()
    if not context.add_callback(over.set):
        return False  # the call has already terminated
    over.wait(grace)
    return bool(context.is_active())


class ServerCallStream(Generic[M]):
    """A gRPC server-side bidi call seen as a :class:`MessageStream`.

    ``recv`` pulls from the request iterator; ``send`` feeds the response
    generator returned by :func:`serve_stream`.  Sending blocks when the
    client is slow (bounded queue) and fails once the call is over.
    """

    def __init__(self, requests: Iterator[bytes], context: grpc.ServicerContext, decode: Callable[[bytes], M]) -> None:
        self._requests = requests
        self._context = context
        self._decode = decode
        self._out: queue.Queue[object] = queue.Queue(maxsize=64)
        self._over = threading.Event()
        context.add_callback(self._over.set)

    def recv(self) -> M | None:
        try:
            raw = next(self._requests)
        except StopIteration:
            return None
        except Exception as exc:  # grpcio raises its own RpcError subclasses when the call dies
            raise TransferError(f"the daemon's stream broke: {exc}") from exc
        return self._decode(raw)

    def send(self, message: object) -> None:
        self._put(message)

    def send_many(self, messages: Sequence[object]) -> None:
        if messages:
            self._put(_Many(messages))

    def _put(self, item: object) -> None:
        while True:
            if self._over.is_set() or not self._context.is_active():
                raise TransferError("the daemon closed the call")
            try:
                self._out.put(item, timeout=0.5)
            except queue.Full:
                continue
            return

    def _finish(self) -> None:
        while True:
            try:
                self._out.put(_DONE, timeout=0.5)
            except queue.Full:
                if self._over.is_set():
                    return  # nobody reads responses any more
                continue
            return

    def _responses(self) -> Iterator[object]:
        """Queued messages; a ``send_many`` group comes out as one :class:`_Many` list."""
        while True:
            item = self._out.get()
            if item is _DONE:
                return
            yield item


class _Many(list[object]):
    """The messages of one ``send_many`` call, queued as one item."""

    __slots__ = ()


def serve_stream(
    requests: Iterator[bytes],
    context: grpc.ServicerContext,
    decode: Callable[[bytes], M],
    work: Callable[[ServerCallStream[M]], None],
    encode: Callable[[object], bytes],
    *,
    name: str,
) -> Iterator[bytes]:
    """Run ``work(stream)`` in a thread and yield what it sends; map its failure to a gRPC status.

    This lets protocol code read and write concurrently while grpcio drives
    the response iterator from the handler thread.
    """
    stream: ServerCallStream[M] = ServerCallStream(requests, context, decode)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work(stream)
        except BaseException as exc:
            failure.append(exc)
        finally:
            stream._finish()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    batches = bool(getattr(context, "accepts_batches", False))
    for item in stream._responses():
        if type(item) is not _Many:
            yield encode(item)
        elif batches:
            yield MessageBatch(map(encode, item))  # type: ignore[misc]  # a batch the transport sends as several messages
        else:
            yield from map(encode, item)
    worker.join()
    if failure:
        exc = failure[0]
        code = getattr(exc, "grpc_code", grpc.StatusCode.UNKNOWN)
        context.set_code(code)
        context.set_details(str(exc))


class ClientCallStream(Generic[M]):
    """The client side of a bidi gRPC call as a :class:`MessageStream` (raw-bytes multi-callable).

    ``close()`` half-closes the request side; ``call`` is the grpc call object
    (for ``code()``/``details()`` after the end).
    """

    def __init__(
        self,
        multi_callable: grpc.StreamStreamMultiCallable,
        decode: Callable[[bytes], M],
        *,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._decode = decode
        self._queue: queue.Queue[object] = queue.Queue()
        self.call = multi_callable(self._requests(), metadata=metadata)

    def _requests(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            yield item.SerializeToString()  # type: ignore[attr-defined]

    def send(self, message: object) -> None:
        self._queue.put(message)

    def send_many(self, messages: Sequence[object]) -> None:
        for message in messages:
            self._queue.put(message)

    def recv(self) -> M | None:
        try:
            raw = next(self.call)
        except StopIteration:
            return None
        except grpc.RpcError as exc:
            raise TransferError(f"the call failed: {exc.code().name}: {exc.details()}") from exc
        return self._decode(raw)

    def close(self) -> None:
        self._queue.put(None)
