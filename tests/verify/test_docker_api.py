"""The Docker API client's framing and engine resolution, without a daemon."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.docker_api import DockerAPI, demultiplex
from builder.errors import EngineUnavailable
from builder.verify import VerifyUnavailable, docker_for_engine


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=8))
def test_demultiplex_concatenates_frames(chunks: list[tuple[int, bytes]]) -> None:
    framed = b"".join(frame(s, d) for s, d in chunks)
    assert demultiplex(framed) == b"".join(d for _, d in chunks)


def test_demultiplex_leaves_tty_output_alone() -> None:
    assert demultiplex(b"hello world, no framing here\n") == b"hello world, no framing here\n"


def test_unreachable_daemon_is_engine_unavailable(tmp_path: os.PathLike[str]) -> None:
    api = DockerAPI.unix(os.path.join(tmp_path, "nope.sock"))
    assert not api.ping()
    with pytest.raises(EngineUnavailable):
        api.list_containers()


def test_tcp_buildkitd_cannot_verify() -> None:
    with pytest.raises(VerifyUnavailable, match="verification unavailable"):
        docker_for_engine("tcp://127.0.0.1:1234", env={})


def test_buildkitd_socket_cannot_verify() -> None:
    # A socket that exists but does not speak the Docker API: a standalone buildkitd.
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "buildkitd.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        try:
            with pytest.raises(VerifyUnavailable, match="standalone buildkitd"):
                docker_for_engine(f"unix://{path}", env={})
        finally:
            server.close()


def test_missing_socket_is_engine_unavailable(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(EngineUnavailable):
        docker_for_engine(f"docker://{os.path.join(tmp_path, 'docker.sock')}", env={})


def test_cli_verify_without_engine_exits_4(tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    from builder.cli import main

    code = main(["verify", "img:tag", "--engine", f"docker://{os.path.join(tmp_path, 'docker.sock')}"])
    assert code == 4
    assert "no engine found to run the image" in capsys.readouterr().err


def test_cli_verify_on_buildkitd_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    from builder.cli import main

    assert main(["verify", "img:tag", "--engine", "tcp://127.0.0.1:1234"]) == 5
    assert "verification unavailable" in capsys.readouterr().err
