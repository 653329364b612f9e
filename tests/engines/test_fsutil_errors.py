"""Error and safety paths of the fsutil sender and receiver, driven packet by packet."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session.errors import TransferError, UnsafePathError
from builder.engines.buildkit.session.fsmode import GO_DEVICE, GO_DIR, GO_SYMLINK
from builder.engines.buildkit.session.manifest import FileEntry, walk_directory
from builder.engines.buildkit.session.receiver import DiffCopyReceiver
from builder.engines.buildkit.session.sender import DiffCopySender
from builder.engines.buildkit.session.stream import memory_pipe

Packet = fsutil_pb2.Packet
STAT, REQ, DATA, FIN, ERR = (
    fsutil_pb2.PACKET_STAT,
    fsutil_pb2.PACKET_REQ,
    fsutil_pb2.PACKET_DATA,
    fsutil_pb2.PACKET_FIN,
    fsutil_pb2.PACKET_ERR,
)


class SenderRun:
    """A sender running in a thread; the test plays the receiver through ``peer``."""

    def __init__(self, sender: DiffCopySender) -> None:
        self.ours, self.peer = memory_pipe()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(sender,))
        self.thread.start()

    def _run(self, sender: DiffCopySender) -> None:
        try:
            sender.run(self.ours)
        except BaseException as exc:
            self.error = exc
        finally:
            self.ours.close()

    def stats(self) -> list[fsutil_pb2.Stat]:
        out = []
        while (pkt := self.peer.recv()) is not None and pkt.HasField("stat"):
            out.append(pkt.stat)
        return out

    def drain(self) -> list[Packet]:
        out = []
        while (pkt := self.peer.recv()) is not None:
            out.append(pkt)
        return out

    def finish(self) -> BaseException | None:
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        return self.error


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "secret.txt").write_text("inside\n")
    (root / "app.py").write_text("print('hi')\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.txt").write_text("OUTSIDE-SECRET\n")
    (out / "app.py").write_text("OUTSIDE-SECRET\n")
    return out


def id_of(stats: list[fsutil_pb2.Stat], path: str) -> int:
    return next(i for i, s in enumerate(stats) if s.path == path)


def sent_bytes(packets: Iterable[Packet]) -> bytes:
    return b"".join(p.data for p in packets if p.type == DATA)


def test_unknown_or_directory_id_is_a_protocol_error(project: Path) -> None:
    run = SenderRun(DiffCopySender(project, walk_directory(project)))
    stats = run.stats()
    run.peer.send(Packet(type=REQ, ID=id_of(stats, "pkg")))  # a directory has no data
    packets = run.drain()
    assert packets[-1].type == ERR
    assert b"unknown file ID" in packets[-1].data
    assert isinstance(run.finish(), TransferError)


def test_unknown_id_beyond_the_stats(project: Path) -> None:
    run = SenderRun(DiffCopySender(project, walk_directory(project)))
    run.stats()
    run.peer.send(Packet(type=REQ, ID=999))
    assert run.drain()[-1].type == ERR
    assert isinstance(run.finish(), TransferError)


def test_files_outside_the_manifest_are_never_described_or_served(project: Path) -> None:
    st_ = (project / "app.py").stat()
    manifest = [FileEntry("app.py", size=st_.st_size, mtime_ns=st_.st_mtime_ns)]
    run = SenderRun(DiffCopySender(project, manifest))
    stats = run.stats()
    assert [s.path for s in stats] == ["app.py"]
    run.peer.send(Packet(type=REQ, ID=1))  # what a walk of the whole directory would have numbered next
    packets = run.drain()
    assert b"inside" not in sent_bytes(packets)
    assert packets[-1].type == ERR


def test_directory_swapped_for_a_symlink_after_planning_is_refused(project: Path, outside: Path) -> None:
    sender = DiffCopySender(project, walk_directory(project))
    os.rename(project / "pkg", project / "pkg.moved")
    os.symlink(outside, project / "pkg")
    run = SenderRun(sender)
    stats = run.stats()
    run.peer.send(Packet(type=REQ, ID=id_of(stats, "pkg/secret.txt")))
    packets = run.drain()
    assert b"OUTSIDE" not in sent_bytes(packets)
    assert packets[-1].type == ERR
    assert isinstance(run.finish(), UnsafePathError)


def test_file_swapped_for_a_symlink_is_refused(project: Path, outside: Path) -> None:
    sender = DiffCopySender(project, walk_directory(project))
    (project / "app.py").unlink()
    os.symlink(outside / "app.py", project / "app.py")
    run = SenderRun(sender)
    stats = run.stats()
    run.peer.send(Packet(type=REQ, ID=id_of(stats, "app.py")))
    packets = run.drain()
    assert b"OUTSIDE" not in sent_bytes(packets)
    assert packets[-1].type == ERR


def test_root_given_through_a_symlink_is_fine(project: Path, tmp_path: Path) -> None:
    os.symlink(project, tmp_path / "via-link")
    run = SenderRun(DiffCopySender(tmp_path / "via-link", walk_directory(project)))
    stats = run.stats()
    run.peer.send(Packet(type=REQ, ID=id_of(stats, "app.py")))
    run.peer.send(Packet(type=FIN))
    packets = run.drain()
    assert sent_bytes(packets) == b"print('hi')\n"
    assert packets[-1].type == FIN
    assert run.finish() is None


def test_file_changed_after_planning_is_refused(project: Path) -> None:
    sender = DiffCopySender(project, walk_directory(project))
    (project / "app.py").write_text("print('a different size')\n")
    run = SenderRun(sender)
    stats = run.stats()
    run.peer.send(Packet(type=REQ, ID=id_of(stats, "app.py")))
    packets = run.drain()
    assert packets[-1].type == ERR
    assert b"changed after the plan" in packets[-1].data


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a//b", "./a", "a/../b", ""])
def test_manifest_with_an_unsafe_path_is_rejected(project: Path, path: str) -> None:
    with pytest.raises(UnsafePathError):
        DiffCopySender(project, [FileEntry(path)])


def test_manifest_entry_under_a_file_is_rejected(project: Path) -> None:
    with pytest.raises(UnsafePathError):
        DiffCopySender(project, [FileEntry("app.py"), FileEntry("app.py/x")])


def test_receiver_error_and_early_close_stop_the_sender(project: Path) -> None:
    run = SenderRun(DiffCopySender(project, walk_directory(project)))
    run.stats()
    run.peer.send(Packet(type=ERR, data=b"disk full"))
    error = run.finish()
    assert isinstance(error, TransferError)
    assert "disk full" in str(error)

    run = SenderRun(DiffCopySender(project, walk_directory(project)))
    run.stats()
    run.peer.close()
    assert "before the FIN" in str(run.finish())


# --- the receiver, fed crafted packets -----------------------------------------------------------


def receive(dest: Path, packets: list[Packet]) -> tuple[BaseException | None, list[Packet]]:
    ours, peer = memory_pipe()
    for pkt in packets:
        peer.send(pkt)
    peer.close()
    try:
        DiffCopyReceiver(dest).run(ours)
    except TransferError as exc:
        return exc, ours.sent
    return None, ours.sent


def stat_pkt(path: str, mode: int = 0o644, **kw: object) -> Packet:
    return Packet(type=STAT, stat=fsutil_pb2.Stat(path=path, mode=mode, **kw))  # type: ignore[arg-type]


END = Packet(type=STAT)


def test_receiver_rejects_out_of_order_stats(tmp_path: Path) -> None:
    error, sent = receive(tmp_path / "out", [stat_pkt("b"), stat_pkt("a")])
    assert error is not None and "out of order" in str(error)
    assert sent[-1].type == ERR


def test_receiver_rejects_child_before_parent(tmp_path: Path) -> None:
    error, _ = receive(tmp_path / "out", [stat_pkt("a/b")])
    assert isinstance(error, UnsafePathError)


@pytest.mark.parametrize("path", ["../escape", "/abs", "a/../../b", "a//b"])
def test_receiver_rejects_unsafe_paths(tmp_path: Path, path: str) -> None:
    error, _ = receive(tmp_path / "out", [stat_pkt(path)])
    assert isinstance(error, UnsafePathError)
    assert not (tmp_path / "escape").exists()


def test_receiver_never_writes_through_a_received_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    packets = [stat_pkt("a", GO_SYMLINK | 0o777, linkname=str(outside)), stat_pkt("a/x")]
    error, _ = receive(tmp_path / "out", packets)
    assert isinstance(error, UnsafePathError)
    assert list(outside.iterdir()) == []


def test_receiver_rejects_data_it_did_not_request(tmp_path: Path) -> None:
    packets = [stat_pkt("d", GO_DIR | 0o755), END, Packet(type=DATA, ID=0, data=b"x")]
    error, _ = receive(tmp_path / "out", packets)
    assert error is not None and "not requested" in str(error)


def test_receiver_rejects_fin_before_files_arrive(tmp_path: Path) -> None:
    error, sent = receive(tmp_path / "out", [stat_pkt("f"), END, Packet(type=FIN)])
    assert [p.type for p in sent] == [REQ, ERR]
    assert error is not None and "before every requested file" in str(error)


def test_receiver_rejects_a_stream_that_ends_early(tmp_path: Path) -> None:
    error, _ = receive(tmp_path / "out", [stat_pkt("f")])
    assert error is not None and "closed the stream" in str(error)


def test_receiver_reports_sender_errors(tmp_path: Path) -> None:
    error, _ = receive(tmp_path / "out", [Packet(type=ERR, data=b"boom")])
    assert error is not None and "boom" in str(error)


def test_receiver_refuses_devices(tmp_path: Path) -> None:
    error, _ = receive(tmp_path / "out", [stat_pkt("dev", GO_DEVICE | 0o600)])
    assert error is not None and "devices" in str(error)


def test_receiver_links_hardlinks_without_requesting_them(tmp_path: Path) -> None:
    packets = [
        stat_pkt("a", 0o644, size=2),
        stat_pkt("b", 0o644, linkname="a"),
        END,
        Packet(type=DATA, ID=0, data=b"hi"),
        Packet(type=DATA, ID=0),
        Packet(type=FIN),
    ]
    error, sent = receive(tmp_path / "out", packets)
    assert error is None
    assert [(p.type, p.ID) for p in sent] == [(REQ, 0), (FIN, 0)]
    assert (tmp_path / "out" / "b").read_bytes() == b"hi"
    assert (tmp_path / "out" / "a").stat().st_ino == (tmp_path / "out" / "b").stat().st_ino


def test_receiver_rejects_hardlink_to_something_not_sent(tmp_path: Path) -> None:
    error, _ = receive(tmp_path / "out", [stat_pkt("b", 0o644, linkname="../../etc/passwd")])
    assert isinstance(error, UnsafePathError)
