"""The receiving side of fsutil's DiffCopy protocol: rebuild a sent tree under a directory.

Used for the ``local`` exporter (the daemon sends, we receive) and in tests
paired with :class:`~builder.engines.buildkit.session.sender.DiffCopySender`.

Every STAT must arrive in depth-first byte order and below a directory that
this transfer created, so nothing can be written outside ``dest`` (a received
symlink is never traversed).  Directories, symlinks and hardlinks are made at
once; each regular file is requested with ``REQ`` and written from its
``DATA`` chunks.  Permissions and mtimes are applied as files complete, and
to directories at the end.  Ownership is left to the receiving user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session.errors import TransferError, UnsafePathError
from builder.engines.buildkit.session.fsmode import GO_DIR, GO_SYMLINK, GO_TYPE_MASK, permissions
from builder.engines.buildkit.session.paths import check_relpath, parent_of, sort_key
from builder.engines.buildkit.session.stream import MessageStream

Packet = fsutil_pb2.Packet


@dataclass(slots=True)
class ReceiveReport:
    """What a receiver wrote: every path in arrival order, and file bytes written."""

    paths: list[str] = field(default_factory=list)
    requested: int = 0
    bytes_written: int = 0


@dataclass(slots=True)
class _Pending:
    path: str
    stat: fsutil_pb2.Stat
    fd: int | None = None


class DiffCopyReceiver:
    """Receive one DiffCopy transfer into ``dest`` (merging with what is there).

    ``on_complete`` runs once every entry is on disk, before our FIN: a daemon
    may finish its Solve as soon as it sees that FIN.

    >>> DiffCopyReceiver(tmp_path / "out").run(stream)   # doctest: +SKIP
    """

    def __init__(
        self, dest: str | os.PathLike[str], *, on_complete: Callable[[ReceiveReport], None] | None = None
    ) -> None:
        self._dest = Path(dest)
        self._on_complete = on_complete
        self._dirs: set[str] = {""}
        self._files: set[str] = set()
        self._dir_stats: list[fsutil_pb2.Stat] = []
        self._pending: dict[int, _Pending] = {}
        self._last: str | None = None
        self._next_id = 0
        self._stats_done = False
        self.report = ReceiveReport()

    def run(self, stream: MessageStream[Packet]) -> ReceiveReport:
        """Receive until the FIN handshake; on failure send ``ERR`` and raise TransferError."""
        try:
            self._dest.mkdir(parents=True, exist_ok=True)
            self._receive(stream)
        except (TransferError, OSError) as exc:
            err = exc if isinstance(exc, TransferError) else TransferError(f"writing the received files failed: {exc}")
            with contextlib.suppress(TransferError):  # the peer may be gone; still raise below
                stream.send(Packet(type=fsutil_pb2.PACKET_ERR, data=str(err).encode("utf-8")))
            raise err from exc
        finally:
            for pending in self._pending.values():
                if pending.fd is not None:
                    os.close(pending.fd)
        return self.report

    def _receive(self, stream: MessageStream[Packet]) -> None:
        self._stats_done = fin_sent = False
        while True:
            pkt = stream.recv()
            if pkt is None:
                if fin_sent:
                    return
                raise TransferError("the sender closed the stream before the transfer was complete")
            if pkt.type == fsutil_pb2.PACKET_FIN:
                if not fin_sent:
                    raise TransferError("the sender finished before every requested file arrived")
                return
            self._on_packet(stream, pkt)
            if self._stats_done and not self._pending and not fin_sent:
                self._finish_dirs()
                if self._on_complete is not None:
                    self._on_complete(self.report)  # everything is on disk; the FIN exchange is a formality
                stream.send(Packet(type=fsutil_pb2.PACKET_FIN))
                fin_sent = True

    def _on_packet(self, stream: MessageStream[Packet], pkt: Packet) -> None:
        kind = pkt.type
        if kind == fsutil_pb2.PACKET_STAT:
            if self._stats_done:
                raise TransferError("STAT after the end-of-entries marker")
            if pkt.HasField("stat"):
                self._on_stat(stream, pkt.stat)
            else:
                self._stats_done = True
        elif kind == fsutil_pb2.PACKET_DATA:
            self._on_data(pkt)
        elif kind == fsutil_pb2.PACKET_ERR:
            raise TransferError(f"the sender failed: {pkt.data.decode('utf-8', 'replace')}")
        else:
            raise TransferError(f"unexpected packet type {kind} from the sender")

    def _target(self, path: str) -> Path:
        return self._dest.joinpath(*path.split("/"))

    def _on_stat(self, stream: MessageStream[Packet], st: fsutil_pb2.Stat) -> None:
        file_id, self._next_id = self._next_id, self._next_id + 1
        path = check_relpath(st.path)
        key = sort_key(path)
        if self._last is not None and key <= self._last:
            raise TransferError(f"changes out of order: {path!r} after {self._last.replace(chr(0), '/')!r}")
        if parent_of(path) not in self._dirs:
            raise UnsafePathError(f"{path!r} arrived before its parent directory (or its parent is not a directory)")
        self._last = key
        self.report.paths.append(path)
        target = self._target(path)
        if st.mode & GO_DIR:
            self._make_dir(target)
            self._dirs.add(path)
            self._dir_stats.append(st)
        elif st.mode & GO_SYMLINK:
            self._clear(target)
            os.symlink(st.linkname, target)
            os.utime(target, ns=(st.modTime, st.modTime), follow_symlinks=False)
        elif st.mode & GO_TYPE_MASK:
            raise TransferError(f"{path!r}: devices, pipes and sockets are not accepted")
        elif st.linkname:
            source = check_relpath(st.linkname)
            if source not in self._files:
                raise UnsafePathError(
                    f"hardlink {path!r} points at {source!r}, which this transfer did not send as a file"
                )
            self._clear(target)
            os.link(self._target(source), target, follow_symlinks=False)
            self._files.add(path)
        else:
            self._clear(target)
            # Create it now (empty) so hardlinks to it work before its data arrives.
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            self._files.add(path)
            self._pending[file_id] = _Pending(path, st)
            self.report.requested += 1
            stream.send(Packet(type=fsutil_pb2.PACKET_REQ, ID=file_id))

    def _on_data(self, pkt: fsutil_pb2.Packet) -> None:
        pending = self._pending.get(pkt.ID)
        if pending is None:
            raise TransferError(f"DATA for file ID {pkt.ID}, which was not requested")
        if pending.fd is None:
            flags = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            pending.fd = os.open(self._target(pending.path), flags)
        if pkt.data:
            view = memoryview(pkt.data)
            while view:
                view = view[os.write(pending.fd, view) :]
            self.report.bytes_written += len(pkt.data)
            return
        os.fchmod(pending.fd, permissions(pending.stat.mode))
        os.utime(pending.fd, ns=(pending.stat.modTime, pending.stat.modTime))
        os.close(pending.fd)
        pending.fd = None
        del self._pending[pkt.ID]

    def _make_dir(self, target: Path) -> None:
        try:
            st = target.lstat()
        except FileNotFoundError:
            target.mkdir(mode=0o700)
            return
        if not stat.S_ISDIR(st.st_mode):
            target.unlink()
            target.mkdir(mode=0o700)
        else:
            target.chmod(0o700)  # writable until _finish_dirs applies the sent mode

    def _clear(self, target: Path) -> None:
        """Remove whatever is at ``target`` (never following a symlink), so the new entry replaces it."""
        try:
            st = target.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(target)
        else:
            target.unlink()

    def _finish_dirs(self) -> None:
        for st in reversed(self._dir_stats):  # children first, so parent mtimes stick
            target = self._target(st.path)
            os.chmod(target, permissions(st.mode), follow_symlinks=False)
            os.utime(target, ns=(st.modTime, st.modTime), follow_symlinks=False)
