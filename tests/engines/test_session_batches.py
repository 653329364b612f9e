"""Batched messages: ``send_many`` through a server call, and H2GrpcServer packing them into DATA frames."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session import DiffCopyReceiver, FileSyncProvider, Session, SyncedDir
from builder.engines.buildkit.session.attachable import MethodTable
from builder.engines.buildkit.session.h2server import H2GrpcServer
from builder.engines.buildkit.session.loopback import LoopbackDaemon
from builder.engines.buildkit.session.sender import STAT_BATCH
from builder.engines.buildkit.session.stream import ClientCallStream, MessageBatch, serve_stream

BATCHES = "/test.Batches/Get"
# Sizes chosen to straddle HTTP/2's 16 KiB frames and a 64 KiB window: empty, tiny, exactly a frame, bigger.
SIZES = [0, 1, 5, 16_379, 16_384, 16_385, 40_000, 3, 70_000, 0, 7]


def payloads(seed: int = 0) -> list[bytes]:
    return [bytes([(seed + i) % 251]) * n for i, n in enumerate(SIZES)]


class Batches:
    """An attachable streaming ``payloads()`` through serve_stream, as one send_many then singles."""

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        def get(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            def work(stream: object) -> None:
                data = payloads()
                stream.send_many(data[:8])  # type: ignore[attr-defined]
                stream.send_many([])  # type: ignore[attr-defined]
                for item in data[8:]:
                    stream.send(item)  # type: ignore[attr-defined]

            return serve_stream(requests, context, bytes, work, bytes, name="batches")

        return {BATCHES: grpc.stream_stream_rpc_method_handler(get)}


@pytest.mark.parametrize("impl", ["h2", "grpcio"])
def test_send_many_arrives_whole_and_in_order(impl: str) -> None:
    """grpcio's client checks framing and flow control; every message must come out as it went in."""
    with LoopbackDaemon() as daemon, Session.start(daemon.channel(), Batches(), implementation=impl) as session:
        peer = daemon.attached(session.id)
        got = list(peer.channel.stream_stream(BATCHES)(iter(()), timeout=30))
    assert got == payloads()


def test_many_stats_cross_batch_boundaries(tmp_path: Path) -> None:
    """More entries than one STAT batch (and than two): the daemon side sees every file."""
    root = tmp_path / "proj"
    count = 2 * STAT_BATCH + 3
    for i in range(count):
        sub = root / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}").write_text(f"{i}\n")
    files = FileSyncProvider({"context": SyncedDir.whole(root)})
    with LoopbackDaemon() as daemon, Session.start(daemon.channel(), files) as session:
        peer = daemon.attached(session.id)
        stream = ClientCallStream(
            peer.channel.stream_stream("/moby.filesync.v1.FileSync/DiffCopy"),
            fsutil_pb2.Packet.FromString,
            metadata=(("dir-name", "context"),),
        )
        DiffCopyReceiver(tmp_path / "out").run(stream)
        stream.close()
    assert sorted(p.name for p in (tmp_path / "out").rglob("f*")) == [f"f{i:05d}" for i in range(count)]
    assert (tmp_path / "out" / "d10" / "f01000").read_text() == "1000\n"
    assert files.transfers[0].entries == count + count // 100 + 1


# --- H2GrpcServer against an in-memory h2 client that grants a small window --------------------


class _Client:
    """The daemon's side of one connection: an h2 client that counts DATA against its own window."""

    def __init__(self, window: int) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        self.inbox: list[bytes] = []
        self.cond = threading.Condition()
        self.body = bytearray()
        self.frames: list[int] = []
        self.ended = False

    def write(self, data: bytes) -> None:  # the server's output callable
        with self.cond:
            self.inbox.append(data)
            self.cond.notify_all()

    def take(self) -> list[h2.events.Event]:
        """Take in what the server wrote (h2 raises FlowControlError if it overran a window)."""
        with self.cond:
            data, self.inbox = b"".join(self.inbox), []
        events = self.conn.receive_data(data) if data else []
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.body += event.data
                self.frames.append(len(event.data))
            elif isinstance(event, h2.events.StreamEnded):
                self.ended = True
        return events

    def wait_output(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.cond.wait_for(lambda: bool(self.inbox), timeout)


def _grpc_messages(body: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(body):
        assert body[i] == 0, "compressed flag set"
        size = int.from_bytes(body[i + 1 : i + 5], "big")
        out.append(body[i + 5 : i + 5 + size])
        i += 5 + size
    assert i == len(body)
    return out


def _batch_table(batch: list[bytes]) -> MethodTable:
    def get(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        assert getattr(context, "accepts_batches", False)
        yield MessageBatch(batch)
        yield b"tail"

    class One:
        def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
            return {BATCHES: grpc.unary_stream_rpc_method_handler(get)}

    return MethodTable([One()])


def test_h2_batch_respects_a_small_window_and_frame_size() -> None:
    """A batch larger than the peer's window leaves in window-sized pieces, only as the peer grants more."""
    window = 1000
    batch = [os.urandom(n) for n in (300, 0, 2500, 1, 999, 1000, 40_000)]
    client = _Client(window)
    server = H2GrpcServer(_batch_table(batch), client.write)
    stream_id = client.conn.get_next_available_stream_id()
    client.conn.send_headers(
        stream_id,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", BATCHES),
            (":authority", "x"),
            ("content-type", "application/grpc"),
        ],
    )
    client.conn.send_data(stream_id, b"\x00\x00\x00\x00\x00", end_stream=True)  # one empty request
    rounds = 0
    while not client.ended:
        server.receive(client.conn.data_to_send())  # the request first, then window updates
        client.wait_output()
        rounds += 1
        for event in client.take():
            if isinstance(event, h2.events.DataReceived):  # grant back what was used (h2 batches the updates)
                client.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
        assert rounds < 10_000
    assert rounds > 5  # the batch needed several window updates
    assert _grpc_messages(bytes(client.body)) == [*batch, b"tail"]
    assert max(client.frames) <= min(window, 16_384)
    server.close()


def test_grpcio_contexts_get_single_messages() -> None:
    """serve_stream yields one message at a time where the context does not accept batches."""

    class Context:
        def add_callback(self, callback: Callable[[], None]) -> bool:
            return True

        def is_active(self) -> bool:
            return True

    out = list(serve_stream(iter(()), Context(), bytes, lambda s: s.send_many([b"a", b"b"]), bytes, name="t"))  # type: ignore[arg-type]
    assert out == [b"a", b"b"] and all(type(o) is bytes for o in out)
    ctx = Context()
    ctx.accepts_batches = True  # type: ignore[attr-defined]
    out = list(serve_stream(iter(()), ctx, bytes, lambda s: s.send_many([b"a", b"b"]), bytes, name="t"))  # type: ignore[arg-type]
    assert out == [MessageBatch([b"a", b"b"])] and type(out[0]) is MessageBatch


class _Recorder:
    """A MessageStream that records send_many groups and answers FIN once the listing is over."""

    def __init__(self) -> None:
        self.groups: list[list[fsutil_pb2.Packet]] = []
        self._done = threading.Event()

    def send(self, message: fsutil_pb2.Packet) -> None:
        self.groups.append([message])

    def send_many(self, messages: list[fsutil_pb2.Packet]) -> None:
        self.groups.append(list(messages))
        if messages and not messages[-1].HasField("stat"):
            self._done.set()

    def recv(self) -> fsutil_pb2.Packet | None:
        self._done.wait(10)
        if not self._done.is_set():
            return None
        self._done.clear()
        return fsutil_pb2.Packet(type=fsutil_pb2.PACKET_FIN)


@pytest.mark.parametrize("count", [0, 1, STAT_BATCH - 1, STAT_BATCH, 2 * STAT_BATCH + 1])
def test_stat_listing_is_batched_and_ends_once(count: int) -> None:
    from builder.engines.buildkit.session import DiffCopySender, FileEntry

    entries = [FileEntry(f"f{i:05d}", size=1) for i in range(count)]
    recorder = _Recorder()
    report = DiffCopySender("/", entries).run(recorder)
    stats = [p for g in recorder.groups for p in g if p.type == fsutil_pb2.PACKET_STAT]
    assert [p.stat.path for p in stats[:-1]] == [e.relpath for e in entries]
    assert not stats[-1].HasField("stat") and all(p.HasField("stat") for p in stats[:-1])
    assert all(len(g) <= STAT_BATCH + 1 for g in recorder.groups)
    assert report.complete and report.entries == count
