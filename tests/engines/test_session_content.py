"""The session's content store (``type=local`` caches) over real gRPC: writes checked, reads verified."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from builder.engines.buildkit._pb import content_pb2 as pb
from builder.engines.buildkit.session.attachable import MethodTable
from builder.engines.buildkit.session.content import SERVICE, STORE_ID_KEY, ContentStoreProvider, OCILayout

DATA = b"layer bytes " * 10_000


def dg(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    """Calls the content service the way BuildKit's proxy store does (store id in the metadata)."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel

    def md(self, store: str) -> tuple[tuple[str, str], ...]:
        return ((STORE_ID_KEY, store),)

    def info(self, store: str, digest: str) -> pb.Info:
        call = self.channel.unary_unary(SERVICE + "Info", pb.InfoRequest.SerializeToString, pb.InfoResponse.FromString)
        return call(pb.InfoRequest(digest=digest), metadata=self.md(store), timeout=10).info

    def read(self, store: str, digest: str, offset: int = 0, size: int = 0) -> bytes:
        call = self.channel.unary_stream(
            SERVICE + "Read", pb.ReadContentRequest.SerializeToString, pb.ReadContentResponse.FromString
        )
        request = pb.ReadContentRequest(digest=digest, offset=offset, size=size)
        return b"".join(r.data for r in call(request, metadata=self.md(store), timeout=10))

    def write(self, store: str, requests: list[pb.WriteContentRequest]) -> list[pb.WriteContentResponse]:
        call = self.channel.stream_stream(
            SERVICE + "Write", pb.WriteContentRequest.SerializeToString, pb.WriteContentResponse.FromString
        )
        return list(call(iter(requests), metadata=self.md(store), timeout=10))

    def upload(self, store: str, data: bytes, expected: str, chunk: int = 64 * 1024) -> list[pb.WriteContentResponse]:
        """STAT, then WRITE chunks, then COMMIT with the size and digest, as the proxy writer does."""
        requests = [pb.WriteContentRequest(action=pb.STAT, ref="layer-1", total=len(data), expected=expected)]
        for start in range(0, len(data), chunk):
            requests.append(pb.WriteContentRequest(action=pb.WRITE, offset=start, data=data[start : start + chunk]))
        requests.append(pb.WriteContentRequest(action=pb.COMMIT, offset=len(data), total=len(data), expected=expected))
        return self.write(store, requests)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Client, ContentStoreProvider, Path, Path]]:
    out, src = tmp_path / "out", tmp_path / "in"
    provider = ContentStoreProvider({"local:out": OCILayout(out, True), "local:in": OCILayout(src, False)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers([MethodTable([provider])])
    address = f"unix:{tmp_path / 'content.sock'}"
    server.add_insecure_port(address)
    server.start()
    channel = grpc.insecure_channel(address)
    try:
        yield Client(channel), provider, out, src
    finally:
        channel.close()
        server.stop(0)


def test_write_then_read_back_through_the_layout(served) -> None:  # type: ignore[no-untyped-def]
    client, provider, out, _ = served
    responses = client.upload("local:out", DATA, dg(DATA))
    assert len(responses) == 2 + (len(DATA) + 65535) // 65536  # one response per request
    assert responses[0].action == pb.STAT and responses[0].offset == 0
    assert responses[-1].action == pb.COMMIT and responses[-1].digest == dg(DATA)
    assert responses[-1].offset == len(DATA)
    blob = out / "blobs" / "sha256" / dg(DATA).removeprefix("sha256:")
    assert blob.read_bytes() == DATA
    assert (out / "oci-layout").read_text().startswith('{"imageLayoutVersion"')
    assert [p.name for p in (out / "blobs" / "sha256").iterdir()] == [blob.name]  # no ingest left behind
    assert client.info("local:out", dg(DATA)).size == len(DATA)
    assert client.read("local:out", dg(DATA)) == DATA
    assert client.read("local:out", dg(DATA), offset=5, size=7) == DATA[5:12]
    assert provider.written == [dg(DATA)]


def test_a_blob_that_exists_is_not_written_again(served) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = served
    client.upload("local:out", DATA, dg(DATA))
    with pytest.raises(grpc.RpcError) as caught:
        client.upload("local:out", DATA, dg(DATA))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_content_that_does_not_match_its_digest_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    client, _, out, _ = served
    wrong = dg(b"something else")
    with pytest.raises(grpc.RpcError) as caught:
        client.upload("local:out", DATA, wrong)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected " + wrong in (caught.value.details() or "")
    assert list((out / "blobs" / "sha256").iterdir()) == []  # the ingest file is gone too


def test_short_content_is_refused(served) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = served
    requests = [
        pb.WriteContentRequest(action=pb.STAT, ref="r", total=len(DATA) + 1),
        pb.WriteContentRequest(action=pb.COMMIT, offset=0, data=DATA, total=len(DATA) + 1),
    ]
    with pytest.raises(grpc.RpcError) as caught:
        client.write("local:out", requests)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_import_stores_are_read_only_and_verified(served) -> None:  # type: ignore[no-untyped-def]
    client, _, _, src = served
    with pytest.raises(grpc.RpcError) as caught:
        client.upload("local:in", DATA, dg(DATA))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    blobs = src / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (blobs / dg(DATA).removeprefix("sha256:")).write_bytes(DATA)
    assert client.read("local:in", dg(DATA)) == DATA
    tampered = b"tampered"
    (blobs / dg(b"original").removeprefix("sha256:")).write_bytes(tampered)
    with pytest.raises(grpc.RpcError) as caught:
        client.read("local:in", dg(b"original"))
    assert caught.value.code() == grpc.StatusCode.DATA_LOSS


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, ""])
def test_digests_are_checked_before_any_path_is_made(served, digest: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        client.info("local:out", digest)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_store_and_missing_blob(served) -> None:  # type: ignore[no-untyped-def]
    client, _, _, _ = served
    with pytest.raises(grpc.RpcError) as caught:
        client.info("local:elsewhere", dg(DATA))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "unknown content store" in (
        caught.value.details() or ""
    )
    with pytest.raises(grpc.RpcError) as caught:
        client.info("local:out", dg(DATA))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
