"""``moby.filesync.v1.FileSync/DiffCopy``: serve ``local://<name>`` sources from the plan's manifest.

The daemon names the source in metadata ``dir-name``; we answer with the
fsutil sender over exactly the manifest entries for that name (filtered by the
call's include/exclude patterns, which our own LLB normally leaves empty).
``followpaths`` is not needed: entries are sent as they are and symlinks are
never followed.  An unknown name gets ``NOT_FOUND``.

    >>> provider = FileSyncProvider({"context": SyncedDir(root, manifest_entries)})  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session.attachable import first_value, metadata_values
from builder.engines.buildkit.session.manifest import ManifestEntry, PatternSelector, validate_entries, walk_directory
from builder.engines.buildkit.session.sender import DiffCopySender, TransferReport
from builder.engines.buildkit.session.stream import ServerCallStream, serve_stream

DIFF_COPY = "/moby.filesync.v1.FileSync/DiffCopy"


@dataclass(frozen=True, slots=True)
class SyncedDir:
    """A directory offered as ``local://<name>``: its root and the entries to send."""

    root: Path
    entries: Sequence[ManifestEntry]

    @classmethod
    def whole(cls, root: str | os.PathLike[str]) -> SyncedDir:
        """Everything under ``root`` (tests and ad-hoc builds; real builds pass the plan's manifest)."""
        return cls(Path(root), tuple(walk_directory(root)))


class FileSyncProvider:
    """Serve named directories to the daemon; ``transfers`` records every DiffCopy call (live)."""

    def __init__(self, dirs: Mapping[str, SyncedDir]) -> None:
        self._validated: dict[str, Mapping[str, ManifestEntry]] = {}
        for name, synced in dirs.items():
            # Fail in the caller, not inside a gRPC thread; every DiffCopy of this dir reuses the result.
            self._validated[name] = validate_entries(synced.entries)
            if not name:
                raise ValueError("a synced directory needs a non-empty name")
        self._dirs = dict(dirs)
        self._lock = threading.Lock()
        self.transfers: list[TransferReport] = []

    def fingerprint(self) -> str:
        """A stable digest of the served roots: the default session shared key (incremental transfers)."""
        text = "\n".join(f"{name}={os.path.realpath(d.root)}" for name, d in sorted(self._dirs.items()))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """The DiffCopy handler (raw bytes in and out; packets are decoded here)."""
        return {DIFF_COPY: grpc.stream_stream_rpc_method_handler(self._diff_copy)}

    def _diff_copy(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        name = first_value(context, "dir-name")
        synced = self._dirs.get(name or "")
        if synced is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no local directory named {name!r} in this session")
            return iter(())  # not reached: abort raises
        selector = PatternSelector(
            include=tuple(metadata_values(context, "include-patterns")),
            exclude=tuple(metadata_values(context, "exclude-patterns")),
        )
        sender = DiffCopySender(
            synced.root,
            synced.entries,
            selector=selector,
            dir_name=name or "",
            validated=self._validated.get(name or ""),
        )

        report = TransferReport(name or "")
        with self._lock:
            self.transfers.append(report)

        def work(stream: ServerCallStream[fsutil_pb2.Packet]) -> None:
            sender.run(stream, report=report)

        return serve_stream(requests, context, fsutil_pb2.Packet.FromString, work, _encode, name=f"filesync-{name}")


def _encode(message: object) -> bytes:
    return message.SerializeToString()  # type: ignore[attr-defined,no-any-return]
