"""``containerd.services.content.v1.Content`` over the session: ``type=local`` caches as OCI layouts.

BuildKit's local cache exporter and importer never touch the user's directory:
they call the content service the client serves in the build session, naming the
store in the metadata key ``buildkit-attachable-store-id`` (``local:<dir>``).
Each store here is an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/<hex>``):

* ``Write`` (bidi stream; one response per request) ingests into a temporary
  file beside the blobs and, on ``COMMIT``, checks the size and the sha256
  against the expected values before the blob appears under its digest;
* ``Info`` / ``Read`` serve blobs; a blob whose bytes do not hash to its name
  is refused (``DATA_LOSS``) instead of being handed to the engine;
* a read-only store (``--cache-from``) refuses writes and deletes.

Digests are checked to be ``sha256:<64 hex>`` before any path is made from them.
``index.json`` is the client's business (see ``remote_cache``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from builder.engines.buildkit._pb import content_pb2 as pb
from builder.engines.buildkit.session.attachable import first_value

SERVICE = "/containerd.services.content.v1.Content/"
STORE_ID_KEY = "buildkit-attachable-store-id"
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_CHUNK = 1 << 20  # well under the 4 MiB gRPC message limit
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}\n'


class ContentError(Exception):
    """A request the store refuses: a gRPC status code and a message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class OCILayout:
    """One OCI layout directory; ``writable`` for an export destination."""

    root: Path
    writable: bool
    _verified: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` lives (ContentError INVALID_ARGUMENT for anything but sha256:<hex>)."""
        m = _DIGEST.match(digest)
        if m is None:
            raise ContentError(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported digest {digest[:80]!r}")
        return self.root / "blobs" / "sha256" / m.group(1)

    def info(self, digest: str) -> pb.Info:
        """Size of a committed blob (NOT_FOUND when absent)."""
        try:
            size = self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"content {digest} not found") from None
        return pb.Info(digest=digest, size=size)

    def verified(self, digest: str) -> Path:
        """The blob's path once its bytes are checked to hash to ``digest`` (DATA_LOSS otherwise)."""
        path = self.blob_path(digest)
        with self._lock:
            if digest in self._verified:
                return path
        try:
            actual = _sha256_file(path)
        except FileNotFoundError:
            raise ContentError(grpc.StatusCode.NOT_FOUND, f"content {digest} not found") from None
        if actual != digest:
            raise ContentError(grpc.StatusCode.DATA_LOSS, f"blob {digest} in {self.root} holds {actual}: corrupted")
        with self._lock:
            self._verified.add(digest)
        return path

    def prepare(self) -> None:
        """Create the layout skeleton of a writable store."""
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            marker.write_bytes(_LAYOUT)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class _Ingest:
    """One Write stream's temporary file: sequential writes, then a checked commit."""

    def __init__(self, store: OCILayout, ref: str) -> None:
        if not store.writable:
            raise ContentError(grpc.StatusCode.PERMISSION_DENIED, f"the cache store {store.root} is read-only")
        store.prepare()
        self.store, self.ref = store, ref
        fd, name = tempfile.mkstemp(prefix=".ingest-", dir=store.root / "blobs" / "sha256")
        self.file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.hash = hashlib.sha256()
        self.offset = 0
        self.total = 0
        self.expected = ""

    def write(self, offset: int, data: bytes) -> None:
        if offset != self.offset:
            if offset != 0:
                raise ContentError(grpc.StatusCode.OUT_OF_RANGE, f"write at {offset}, expected {self.offset}")
            self.file.seek(0)
            self.file.truncate()
            self.hash, self.offset = hashlib.sha256(), 0
        self.file.write(data)
        self.hash.update(data)
        self.offset += len(data)

    def commit(self) -> str:
        self.file.close()
        digest = "sha256:" + self.hash.hexdigest()
        if self.total > 0 and self.offset != self.total:
            raise ContentError(
                grpc.StatusCode.FAILED_PRECONDITION, f"{self.ref}: got {self.offset} bytes, expected {self.total}"
            )
        if self.expected and self.expected != digest:
            raise ContentError(
                grpc.StatusCode.FAILED_PRECONDITION, f"{self.ref}: content is {digest}, expected {self.expected}"
            )
        target = self.store.blob_path(digest)
        if target.exists():
            raise ContentError(grpc.StatusCode.ALREADY_EXISTS, f"content {digest} already exists")
        os.chmod(self.path, 0o644)
        os.replace(self.path, target)
        return digest

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


class ContentStoreProvider:
    """Serves the content service for the given stores, keyed by store id (``local:<dir>``)."""

    def __init__(self, stores: Mapping[str, OCILayout]) -> None:
        self._stores = dict(stores)
        self.written: list[str] = []
        self.read: list[str] = []

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """Handlers for Info, Update, List, Delete, Read, Status, ListStatuses, Write and Abort."""
        unary = grpc.unary_unary_rpc_method_handler
        return {
            SERVICE + "Info": unary(self._info, pb.InfoRequest.FromString, pb.InfoResponse.SerializeToString),
            SERVICE + "Update": unary(self._update, pb.UpdateRequest.FromString, pb.UpdateResponse.SerializeToString),
            SERVICE + "List": grpc.unary_stream_rpc_method_handler(
                self._list, pb.ListContentRequest.FromString, pb.ListContentResponse.SerializeToString
            ),
            SERVICE + "Delete": unary(
                self._delete, pb.DeleteContentRequest.FromString, empty_pb2.Empty.SerializeToString
            ),
            SERVICE + "Read": grpc.unary_stream_rpc_method_handler(
                self._read, pb.ReadContentRequest.FromString, pb.ReadContentResponse.SerializeToString
            ),
            SERVICE + "Status": unary(self._status, pb.StatusRequest.FromString, pb.StatusResponse.SerializeToString),
            SERVICE + "ListStatuses": unary(
                self._statuses, pb.ListStatusesRequest.FromString, pb.ListStatusesResponse.SerializeToString
            ),
            SERVICE + "Write": grpc.stream_stream_rpc_method_handler(
                self._write, pb.WriteContentRequest.FromString, pb.WriteContentResponse.SerializeToString
            ),
            SERVICE + "Abort": unary(self._abort, pb.AbortRequest.FromString, empty_pb2.Empty.SerializeToString),
        }

    def _store(self, context: grpc.ServicerContext) -> OCILayout:
        store_id = first_value(context, STORE_ID_KEY)
        store = self._stores.get(store_id or "")
        if store is None:
            _abort(context, ContentError(grpc.StatusCode.NOT_FOUND, f"unknown content store {store_id!r}"))
        return store  # type: ignore[return-value]

    def _info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        store = self._store(context)
        try:
            return pb.InfoResponse(info=store.info(request.digest))
        except ContentError as exc:
            _abort(context, exc)
            raise

    def _update(self, request: pb.UpdateRequest, context: grpc.ServicerContext) -> pb.UpdateResponse:
        store = self._store(context)  # labels are not kept: the layout has no place for them
        try:
            return pb.UpdateResponse(info=store.info(request.info.digest))
        except ContentError as exc:
            _abort(context, exc)
            raise

    def _list(self, request: pb.ListContentRequest, context: grpc.ServicerContext) -> Iterator[pb.ListContentResponse]:
        store = self._store(context)
        blobs = store.root / "blobs" / "sha256"
        infos = [
            pb.Info(digest=f"sha256:{p.name}", size=p.stat().st_size)
            for p in sorted(blobs.iterdir() if blobs.is_dir() else ())
            if _DIGEST.match(f"sha256:{p.name}")
        ]
        for start in range(0, len(infos), 100):
            yield pb.ListContentResponse(info=infos[start : start + 100])

    def _delete(self, request: pb.DeleteContentRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        store = self._store(context)
        try:
            if not store.writable:
                raise ContentError(grpc.StatusCode.PERMISSION_DENIED, f"the cache store {store.root} is read-only")
            store.blob_path(request.digest).unlink()
        except FileNotFoundError:
            _abort(context, ContentError(grpc.StatusCode.NOT_FOUND, f"content {request.digest} not found"))
        except ContentError as exc:
            _abort(context, exc)
        return empty_pb2.Empty()

    def _read(self, request: pb.ReadContentRequest, context: grpc.ServicerContext) -> Iterator[pb.ReadContentResponse]:
        store = self._store(context)
        try:
            path = store.verified(request.digest)
        except ContentError as exc:
            _abort(context, exc)
            return
        self.read.append(request.digest)
        offset = max(request.offset, 0)
        remaining = request.size if request.size > 0 else None
        with path.open("rb") as fh:
            fh.seek(offset)
            while remaining is None or remaining > 0:
                data = fh.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not data:
                    break
                yield pb.ReadContentResponse(offset=offset, data=data)
                offset += len(data)
                if remaining is not None:
                    remaining -= len(data)

    def _status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        _abort(context, ContentError(grpc.StatusCode.NOT_FOUND, f"no ingest {request.ref!r}"))
        return pb.StatusResponse()

    def _statuses(self, request: pb.ListStatusesRequest, context: grpc.ServicerContext) -> pb.ListStatusesResponse:
        return pb.ListStatusesResponse()

    def _abort(self, request: pb.AbortRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def _write(
        self, requests: Iterator[pb.WriteContentRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.WriteContentResponse]:
        store = self._store(context)
        ingest: _Ingest | None = None
        try:
            for request in requests:
                if ingest is None:
                    if request.expected and store.blob_path(request.expected).exists():
                        raise ContentError(grpc.StatusCode.ALREADY_EXISTS, f"content {request.expected} already exists")
                    ingest = _Ingest(store, request.ref)
                ingest.total = request.total or ingest.total
                ingest.expected = request.expected or ingest.expected
                response = pb.WriteContentResponse(action=request.action, total=ingest.total)
                response.started_at.GetCurrentTime()
                response.updated_at.GetCurrentTime()
                if request.action != pb.STAT:
                    ingest.write(request.offset, request.data)
                if request.action == pb.COMMIT:
                    response.digest = ingest.commit()
                    self.written.append(response.digest)
                response.offset = ingest.offset
                yield response
                if request.action == pb.COMMIT:
                    return
        except ContentError as exc:
            _abort(context, exc)
        finally:
            if ingest is not None:
                ingest.discard()


def _abort(context: grpc.ServicerContext, exc: ContentError) -> None:
    context.abort(exc.code, str(exc))
