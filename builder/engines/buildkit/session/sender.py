"""The sending side of fsutil's DiffCopy protocol: serve selected project files to the daemon.

Flow (our side is the sender for ``local://`` sources)::

    sender                                   receiver (daemon)
    STAT a/, STAT a/f (ID 1), ..., STAT {}   ->
                                         <-  REQ 1
    DATA 1 <32 KiB>, ..., DATA 1 <empty>     ->
                                         <-  FIN
    FIN                                      ->   (call ends OK)

Only manifest entries are ever described, and a file's bytes are read only
when its ID is requested: the path is re-opened component by component
without following symlinks, must still be a regular file inside the root, and
must still have the planned size (and mtime when known).  Any failure is sent
as ``ERR`` and raised as :class:`TransferError`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session.errors import TransferError
from builder.engines.buildkit.session.fsmode import go_mode
from builder.engines.buildkit.session.manifest import ManifestEntry, PatternSelector, validate_entries, walk_directory
from builder.engines.buildkit.session.paths import DirCache, lstat_under, sort_key
from builder.engines.buildkit.session.stream import MessageStream

Packet = fsutil_pb2.Packet
CHUNK_SIZE = 32 * 1024
STAT_BATCH = 512  # STAT packets per send_many: one transport write each, while the receiver starts early
DATA_BATCH = 256 * 1024  # file bytes per send_many (a small file's DATA and its EOF go together)


@dataclass(slots=True)
class TransferReport:
    """What one DiffCopy call moved, updated live while it runs.

    ``requested`` lists the files whose data the receiver asked for, in order,
    and grows before their data is sent, so it is complete by the time the
    engine has everything (the engine may end its Solve before our FIN).
    ``complete`` turns True when the receiver's FIN arrives.
    """

    dir_name: str = ""
    entries: int = 0
    requested: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    complete: bool = False


def _fill_stat(out: fsutil_pb2.Stat, entry: ManifestEntry | None, path: str, fallback: os.stat_result | None) -> None:
    """Write the wire Stat of one entry into ``out``; ``entry`` None means a synthesized parent directory.

    Fields are set in place on the packet's own Stat (building a Stat and
    copying it into a Packet costs nearly twice as much, once per project file).
    """
    out.path = path
    if entry is None:
        if fallback is not None and stat.S_ISDIR(fallback.st_mode):
            out.mode = _go_mode(stat.S_IFDIR | stat.S_IMODE(fallback.st_mode))
            out.modTime = fallback.st_mtime_ns
        else:
            out.mode = _go_mode(stat.S_IFDIR | 0o755)
        return
    out.modTime = entry.mtime_ns
    if entry.is_dir:
        out.mode = _go_mode(stat.S_IFDIR | stat.S_IMODE(entry.mode))
    elif entry.is_symlink:
        target = entry.link_target
        out.mode = _go_mode(stat.S_IFLNK | 0o777)
        out.size = len(target.encode("utf-8"))
        out.linkname = target
    else:
        out.mode = _go_mode(stat.S_IFREG | stat.S_IMODE(entry.mode))
        out.size = entry.size


_GO_MODES: dict[int, int] = {}


def _go_mode(st_mode: int) -> int:
    """:func:`go_mode`, remembered (a project has a handful of distinct modes)."""
    mode = _GO_MODES.get(st_mode)
    if mode is None:
        mode = _GO_MODES[st_mode] = go_mode(st_mode)
    return mode


class DiffCopySender:
    """Serve ``entries`` (rooted at ``root``) as one fsutil DiffCopy transfer.

    >>> sender = DiffCopySender("/proj", walk_directory("/proj"))   # doctest: +SKIP
    >>> report = sender.run(stream)                                  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        entries: Iterable[ManifestEntry],
        *,
        selector: PatternSelector | None = None,
        chunk_size: int = CHUNK_SIZE,
        dir_name: str = "",
        validated: Mapping[str, ManifestEntry] | None = None,
    ) -> None:
        if not 0 < chunk_size <= 1 << 20:
            raise ValueError("chunk_size must be between 1 byte and 1 MiB")
        self._root = os.path.realpath(root)
        self._chunk = chunk_size
        self._dir_name = dir_name
        by_path = validated if validated is not None else validate_entries(entries)  # the provider checked them
        if selector is None or not (selector.include or selector.exclude):
            chosen = set(by_path)
        else:
            chosen = set(selector.select(sorted(by_path)))
        for parent in {path.rpartition("/")[0] for path in chosen}:  # parents of every selected entry too
            while parent and parent not in chosen:
                chosen.add(parent)
                parent = parent.rpartition("/")[0]
        self._order = sorted(chosen, key=sort_key)
        self._entries = {p: by_path.get(p) for p in self._order}
        self._ids: dict[int, ManifestEntry] = {}

    def wire_stats(self) -> list[fsutil_pb2.Stat]:
        """The STAT records this sender describes, in wire order (IDs are their positions)."""
        root_fd = self._open_root()
        try:
            return [pkt.stat for batch in self._stat_batches(root_fd) for pkt in batch if pkt.HasField("stat")]
        finally:
            os.close(root_fd)

    def _stat_batches(self, root_fd: int) -> Iterator[list[Packet]]:
        """STAT packets in wire order, ``STAT_BATCH`` at a time; the last batch ends with the empty STAT.

        Made batch by batch, so the receiver works on the first ones while later ones are built.
        """
        items = list(self._entries.items())
        for start in range(0, len(items) + 1, STAT_BATCH):
            batch = []
            for path, entry in items[start : start + STAT_BATCH]:
                pkt = Packet()  # type 0: PACKET_STAT
                _fill_stat(pkt.stat, entry, path, lstat_under(root_fd, path) if entry is None else None)
                batch.append(pkt)
            if start + STAT_BATCH > len(items):
                batch.append(Packet(type=fsutil_pb2.PACKET_STAT))  # the empty STAT ends the listing
            yield batch

    def _open_root(self) -> int:
        try:
            return os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise TransferError(f"cannot open the project directory {self._root}: {exc.strerror}") from exc

    def run(self, stream: MessageStream[Packet], *, report: TransferReport | None = None) -> TransferReport:
        """Describe every entry, serve requested files until the FIN handshake; raise on failure.

        Progress goes into ``report`` (a new one when not given) as it happens.
        """
        self._ids = {
            i: entry
            for i, entry in enumerate(self._entries.values())
            if entry is not None and not entry.is_dir and not entry.is_symlink
        }
        stat_fd = self._open_root()
        try:
            root_fd = self._open_root()  # the reader's own (it closes it when it ends)
        except TransferError:
            os.close(stat_fd)
            raise
        state = _SendState(report or TransferReport(self._dir_name))
        state.report.entries = len(self._entries)
        reader = threading.Thread(target=self._serve_requests, args=(stream, root_fd, state), daemon=True)
        reader.start()
        try:
            for batch in self._stat_batches(stat_fd):
                if state.failed.is_set():
                    break
                stream.send_many(batch)
        finally:
            os.close(stat_fd)
        reader.join()
        if state.error is not None:
            raise state.error
        return state.report

    def _serve_requests(self, stream: MessageStream[Packet], root_fd: int, state: _SendState) -> None:
        dirs = DirCache(root_fd)
        try:
            while True:
                pkt = stream.recv()
                if pkt is None:
                    raise TransferError("the receiver closed the stream before the FIN handshake")
                if pkt.type == fsutil_pb2.PACKET_REQ:
                    self._send_file(stream, dirs, pkt.ID, state)
                elif pkt.type == fsutil_pb2.PACKET_FIN:
                    state.report.complete = True
                    stream.send(Packet(type=fsutil_pb2.PACKET_FIN))
                    return
                elif pkt.type == fsutil_pb2.PACKET_ERR:
                    state.fail(TransferError(f"the receiver failed: {pkt.data.decode('utf-8', 'replace')}"))
                    return
                else:
                    raise TransferError(f"unexpected packet type {pkt.type} from the receiver")
        except OSError as exc:
            self._fail(stream, state, TransferError(f"reading a project file failed: {exc}"))
        except TransferError as exc:
            self._fail(stream, state, exc)
        finally:
            dirs.close()
            os.close(root_fd)

    @staticmethod
    def _fail(stream: MessageStream[Packet], state: _SendState, exc: TransferError) -> None:
        state.fail(exc)
        with contextlib.suppress(TransferError):  # the call may be gone; run() still raises
            stream.send(Packet(type=fsutil_pb2.PACKET_ERR, data=str(exc).encode("utf-8")))

    def _send_file(self, stream: MessageStream[Packet], dirs: DirCache, file_id: int, state: _SendState) -> None:
        entry = self._ids.get(file_id)
        if entry is None:
            raise TransferError(f"the receiver requested unknown file ID {file_id}")
        path = entry.relpath
        state.report.requested.append(path)
        fd = dirs.open_regular_file(path)
        try:
            st = os.fstat(fd)
            if st.st_size != entry.size or (entry.mtime_ns and st.st_mtime_ns != entry.mtime_ns):
                raise TransferError(f"{path} changed after the plan was made; run the build again")
            left = entry.size
            batch: list[Packet] = []
            queued = 0
            while left > 0:
                chunk = os.read(fd, min(self._chunk, left))
                if not chunk:
                    raise TransferError(f"{path} shrank while it was being sent; run the build again")
                left -= len(chunk)
                state.report.bytes_sent += len(chunk)
                batch.append(Packet(type=fsutil_pb2.PACKET_DATA, ID=file_id, data=chunk))
                queued += len(chunk)
                if queued >= DATA_BATCH:
                    stream.send_many(batch)
                    batch, queued = [], 0
        finally:
            os.close(fd)
        batch.append(Packet(type=fsutil_pb2.PACKET_DATA, ID=file_id))  # empty DATA: end of this file
        stream.send_many(batch)


class _SendState:
    def __init__(self, report: TransferReport) -> None:
        self.report = report
        self.failed = threading.Event()
        self.error: TransferError | None = None

    def fail(self, exc: TransferError) -> None:
        if self.error is None:
            self.error = exc
        self.failed.set()


def sender_for_directory(root: str | os.PathLike[str], *, chunk_size: int = CHUNK_SIZE) -> DiffCopySender:
    """A sender for everything under ``root`` (tests and ad-hoc transfers)."""
    return DiffCopySender(root, walk_directory(root), chunk_size=chunk_size)
