"""``moby.filesync.v1.FileSend/DiffCopy``: receive what an exporter sends back to the client.

* :class:`TarballOutput` — ``tar`` (and buildkitd's ``oci``/``docker``)
  exporters stream one file as ``BytesMessage`` chunks; we write it to a
  temporary file next to ``path`` and rename it into place when the daemon
  half-closes, so a failed export never leaves a truncated file.
* :class:`DirectoryOutput` — the ``local`` exporter sends fsutil packets; we
  are the receiver and merge the tree into ``path``.

Newer daemons say which output a call is for in metadata
``buildkit-attachable-exporter-id`` (its position in the exporter list);
older ones only ever export once, to output 0.

    >>> provider = FileSendProvider(TarballOutput("image.tar"))   # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import grpc

from builder.engines.buildkit._pb import filesync_pb2, fsutil_pb2
from builder.engines.buildkit.session.attachable import first_value
from builder.engines.buildkit.session.errors import TransferError
from builder.engines.buildkit.session.receiver import DiffCopyReceiver, ReceiveReport
from builder.engines.buildkit.session.stream import ServerCallStream, ended_cleanly, serve_stream

DIFF_COPY = "/moby.filesync.v1.FileSend/DiffCopy"
_EXPORTER_MD = "exporter-md-"


class TarballOutput:
    """Write the exporter's byte stream (tar/OCI/docker tarball) to ``path``.

    After the export, ``done`` is True, ``bytes_written`` is the file size and
    ``metadata`` holds the ``exporter-md-*`` values the daemon sent.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.metadata: dict[str, str] = {}
        self.bytes_written = 0
        self.done = False

    def receive(self, requests: Iterator[bytes], is_active: Callable[[], bool] = lambda: True) -> None:
        """Append every BytesMessage to a temporary file, then move it to ``path``.

        ``is_active`` tells a clean half-close from a cancelled call (grpcio
        ends the request iterator the same way for both).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for raw in requests:
                    chunk = filesync_pb2.BytesMessage.FromString(raw).data
                    out.write(chunk)
                    self.bytes_written += len(chunk)
            if not is_active():
                raise TransferError(f"the export to {self.path} was cancelled by the engine")
            os.replace(tmp, self.path)
            self.done = True
        except BaseException:
            os.unlink(tmp)
            raise


class DirectoryOutput:
    """Receive the ``local`` exporter's tree into ``path`` (merged with what is there).

    After the export, ``done`` is True and ``paths`` lists every received entry.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.metadata: dict[str, str] = {}
        self.paths: list[str] = []
        self.done = False

    def receive(self, stream: ServerCallStream[fsutil_pb2.Packet]) -> None:
        """Run the fsutil receiver over the call."""
        DiffCopyReceiver(self.path, on_complete=self._complete).run(stream)

    def _complete(self, report: ReceiveReport) -> None:
        self.paths = list(report.paths)
        self.done = True


Output = TarballOutput | DirectoryOutput


class FileSendProvider:
    """Serve FileSend for one or more outputs (index = exporter position)."""

    def __init__(self, *outputs: Output) -> None:
        if not outputs:
            raise ValueError("FileSendProvider needs at least one output")
        self.outputs = outputs

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """The FileSend.DiffCopy handler (raw bytes; the output decides how to decode)."""
        return {DIFF_COPY: grpc.stream_stream_rpc_method_handler(self._diff_copy)}

    def _pick(self, context: grpc.ServicerContext) -> Output:
        raw = first_value(context, "buildkit-attachable-exporter-id") or "0"
        index = int(raw) if raw.isdigit() else -1
        if not 0 <= index < len(self.outputs):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no export output number {raw}")
        return self.outputs[index]

    def _diff_copy(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        output = self._pick(context)
        for key, value in context.invocation_metadata() or ():
            if key.lower().startswith(_EXPORTER_MD):
                output.metadata[key[len(_EXPORTER_MD) :]] = str(value)
        if isinstance(output, TarballOutput):
            return _receive_bytes(output, requests, context)
        return serve_stream(requests, context, fsutil_pb2.Packet.FromString, output.receive, _encode, name="filesend")


def _receive_bytes(output: TarballOutput, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    try:
        output.receive(requests, lambda: ended_cleanly(context))
    except (OSError, TransferError) as exc:
        context.abort(grpc.StatusCode.INTERNAL, f"writing the export to {output.path} failed: {exc}")
    except Exception as exc:  # grpcio's error when the daemon cancels the call
        context.abort(grpc.StatusCode.CANCELLED, f"the export to {output.path} was interrupted: {exc}")
    yield from ()


def _encode(message: object) -> bytes:
    assert isinstance(message, fsutil_pb2.Packet)
    return bytes(message.SerializeToString())
