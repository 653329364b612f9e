"""The fsutil DiffCopy sender and receiver paired over an in-memory pipe."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.engines.buildkit._pb import fsutil_pb2
from builder.engines.buildkit.session.manifest import FileEntry, ManifestEntry, PatternSelector, walk_directory
from builder.engines.buildkit.session.receiver import DiffCopyReceiver, ReceiveReport
from builder.engines.buildkit.session.sender import CHUNK_SIZE, DiffCopySender, TransferReport
from builder.engines.buildkit.session.stream import memory_pipe

Packet = fsutil_pb2.Packet


def transfer(
    root: Path, dest: Path, entries: Sequence[ManifestEntry] | None = None, **kwargs: object
) -> tuple[TransferReport, ReceiveReport, list[Packet], list[Packet]]:
    """Run a sender (thread) against a receiver; return both reports and what each side sent."""
    sender = DiffCopySender(root, walk_directory(root) if entries is None else entries, **kwargs)  # type: ignore[arg-type]
    send_end, recv_end = memory_pipe()
    result: list[TransferReport] = []

    def run() -> None:
        result.append(sender.run(send_end))
        send_end.close()

    thread = threading.Thread(target=run)
    thread.start()
    received = DiffCopyReceiver(dest).run(recv_end)
    recv_end.close()
    thread.join(timeout=30)
    assert result, "sender did not finish"
    return result[0], received, send_end.sent, recv_end.sent


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything a transfer must preserve, per relative path."""
    out: dict[str, tuple[object, ...]] = {}
    for entry in walk_directory(root):
        full = root / entry.relpath
        st_ = full.lstat()
        if entry.is_dir:
            out[entry.relpath] = ("dir", stat.S_IMODE(st_.st_mode), st_.st_mtime_ns)
        elif entry.is_symlink:
            out[entry.relpath] = ("link", os.readlink(full), st_.st_mtime_ns)
        else:
            out[entry.relpath] = ("file", stat.S_IMODE(st_.st_mode), st_.st_mtime_ns, full.read_bytes())
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "deep.txt").write_text("deep\n")
    (root / "a-b").write_text("sorts after a/ by bytes\n")
    (root / "empty.txt").write_bytes(b"")
    (root / "empty-dir").mkdir()
    (root / "big.bin").write_bytes(os.urandom(5 * CHUNK_SIZE + 123))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "ünïcødé ✓.txt").write_text("names are UTF-8\n")
    os.symlink("a/b/deep.txt", root / "link-rel")
    os.symlink("/etc/hostname", root / "link-abs")
    (root / "a" / "b").chmod(0o750)
    os.utime(root / "a", ns=(1_000_000_007, 1_000_000_007))
    return root


def test_tree_arrives_identical(tree: Path, tmp_path: Path) -> None:
    sent, received, _, _ = transfer(tree, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)
    files = {"a-b", "a/b/deep.txt", "big.bin", "empty.txt", "run.sh", "ünïcødé ✓.txt"}
    assert set(sent.requested) == files
    assert received.requested == len(files)
    assert sent.bytes_sent == received.bytes_written == sum((tree / f).stat().st_size for f in files)


def test_stats_are_depth_first_byte_sorted_with_go_modes(tree: Path, tmp_path: Path) -> None:
    _, _, sender_packets, _ = transfer(tree, tmp_path / "out")
    stats = [p.stat for p in sender_packets if p.type == fsutil_pb2.PACKET_STAT and p.HasField("stat")]
    paths = [s.path for s in stats]
    assert paths == [
        "a", "a/b", "a/b/deep.txt", "a-b", "big.bin", "empty-dir", "empty.txt",
        "link-abs", "link-rel", "run.sh", "ünïcødé ✓.txt",
    ]  # fmt: skip
    by_path = {s.path: s for s in stats}
    assert by_path["a"].mode == 0o20000000755
    assert by_path["a/b"].mode == 0o20000000750
    assert by_path["a"].modTime == 1_000_000_007
    assert by_path["link-rel"].mode == 0o1000000777
    assert by_path["link-rel"].linkname == "a/b/deep.txt"
    assert by_path["link-rel"].size == len("a/b/deep.txt")
    assert by_path["run.sh"].mode == 0o755
    assert by_path["big.bin"].size == 5 * CHUNK_SIZE + 123
    assert all(s.uid == 0 and s.gid == 0 for s in stats)
    end_markers = [p for p in sender_packets if p.type == fsutil_pb2.PACKET_STAT and not p.HasField("stat")]
    assert len(end_markers) == 1
    assert end_markers[0].SerializeToString() == b""


def test_ids_count_every_stat_and_data_is_chunked(tree: Path, tmp_path: Path) -> None:
    _, _, sender_packets, receiver_packets = transfer(tree, tmp_path / "out")
    stats = [p.stat for p in sender_packets if p.type == fsutil_pb2.PACKET_STAT and p.HasField("stat")]
    requested = {p.ID for p in receiver_packets if p.type == fsutil_pb2.PACKET_REQ}
    regular = {i for i, s in enumerate(stats) if not s.mode >> 19}
    assert requested == regular
    big_id = next(i for i, s in enumerate(stats) if s.path == "big.bin")
    chunks = [p.data for p in sender_packets if p.type == fsutil_pb2.PACKET_DATA and big_id == p.ID]
    assert [len(c) for c in chunks] == [CHUNK_SIZE] * 5 + [123, 0]
    empty_id = next(i for i, s in enumerate(stats) if s.path == "empty.txt")
    assert [p.data for p in sender_packets if p.type == fsutil_pb2.PACKET_DATA and empty_id == p.ID] == [b""]
    assert receiver_packets[-1].type == fsutil_pb2.PACKET_FIN
    assert sender_packets[-1].type == fsutil_pb2.PACKET_FIN


def test_only_manifest_entries_are_sent_and_parents_are_synthesized(tree: Path, tmp_path: Path) -> None:
    deep = tree / "a" / "b" / "deep.txt"
    st_ = deep.stat()
    manifest = [FileEntry("a/b/deep.txt", mode=0o644, size=st_.st_size, mtime_ns=st_.st_mtime_ns)]
    sent, received, sender_packets, _ = transfer(tree, tmp_path / "out", manifest)
    assert received.paths == ["a", "a/b", "a/b/deep.txt"]
    assert sent.requested == ["a/b/deep.txt"]
    modes = {p.stat.path: p.stat.mode for p in sender_packets if p.HasField("stat")}
    assert modes["a/b"] == 0o20000000750  # the real directory's mode
    assert (tmp_path / "out" / "a" / "b" / "deep.txt").read_text() == "deep\n"
    assert not (tmp_path / "out" / "big.bin").exists()


def test_patterns_select_entries(tree: Path, tmp_path: Path) -> None:
    selector = PatternSelector(include=("a", "*.sh", "big.bin"), exclude=("**/deep.txt", "big.*", "!big.bin"))
    _, received, _, _ = transfer(tree, tmp_path / "out", selector=selector)
    assert received.paths == ["a", "a/b", "big.bin", "run.sh"]


@pytest.mark.parametrize(
    ("include", "exclude", "path", "selected"),
    [
        ((), ("*.pyc",), "x.pyc", False),
        ((), ("*.pyc",), "pkg/x.pyc", True),  # '*' stays within one component
        ((), ("**/*.pyc",), "pkg/x.pyc", False),
        ((), ("build",), "build/out/x", False),  # excluding a directory excludes its contents
        ((), ("build", "!build/keep"), "build/keep", True),
        (("src",), (), "src/deep/x.py", True),
        (("src",), (), "srcx/x.py", False),
        (("src/*.py",), (), "src/x.py", True),
        ((), ("fil?.txt",), "file.txt", False),
        ((), ("file[0-9].txt",), "file5.txt", False),
        ((), ("./docs/",), "docs/x", False),
    ],
)
def test_pattern_rules(include: tuple[str, ...], exclude: tuple[str, ...], path: str, selected: bool) -> None:
    assert PatternSelector(include, exclude).selects(path) is selected


def test_receiver_replaces_what_is_in_the_way_without_following_links(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    os.symlink(outside, dest / "a")  # a link where a directory will arrive
    os.symlink(outside / "victim", dest / "run.sh")  # a link where a file will arrive
    (dest / "empty-dir").write_text("a file where a directory will arrive")
    (dest / "big.bin").mkdir()  # a directory where a file will arrive
    (dest / "big.bin" / "x").write_text("x")
    transfer(tree, dest)
    assert list(outside.iterdir()) == []
    assert snapshot(dest) == snapshot(tree)


def test_second_transfer_into_same_dest_merges(tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    transfer(tree, dest)
    (tree / "big.bin").write_bytes(b"smaller now")
    transfer(tree, dest)
    assert (dest / "big.bin").read_bytes() == b"smaller now"


# --- hypothesis: any tree arrives identical ------------------------------------------------------

NAMES = st.text(alphabet="abAB-_.é✓ 0", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    names = draw(st.lists(NAMES, max_size=4, unique=True))
    out: dict[str, object] = {}
    for name in names:
        kind = draw(st.sampled_from(["file", "file", "dir", "link"] if depth < 3 else ["file", "link"]))
        if kind == "dir":
            out[name] = draw(trees(depth + 1))
        elif kind == "link":
            out[name] = ("link", draw(st.sampled_from(["x", "../y", "/abs/z", "ü"])))
        else:
            size = draw(st.sampled_from([0, 1, 100, CHUNK_SIZE, CHUNK_SIZE + 1]))
            out[name] = (draw(st.sampled_from([0o644, 0o755, 0o600, 0o444])), size)
    return out


def materialize(root: Path, spec: dict[str, object], seed: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        path = root / name
        if isinstance(value, dict):
            materialize(path, value, seed + 1)
        elif value[0] == "link":  # type: ignore[index]
            os.symlink(value[1], path)  # type: ignore[index]
        else:
            mode, size = value  # type: ignore[misc]
            path.write_bytes(bytes((seed + i) % 251 for i in range(size)))
            path.chmod(mode)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=trees(), seed=st.integers(0, 250))
def test_any_tree_arrives_identical(
    tmp_path_factory: pytest.TempPathFactory, spec: dict[str, object], seed: int
) -> None:
    base = tmp_path_factory.mktemp("h")
    materialize(base / "src", spec, seed)
    transfer(base / "src", base / "out")
    assert snapshot(base / "out") == snapshot(base / "src")
