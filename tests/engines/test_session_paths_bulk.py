"""The bulk path helpers the sender relies on agree with their plain definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.engines.buildkit.session.errors import TransferError, UnsafePathError
from builder.engines.buildkit.session.manifest import FileEntry, validate_entries
from builder.engines.buildkit.session.paths import check_relpath, check_relpaths, sort_key

components = st.one_of(
    st.sampled_from(
        ["", ".", "..", "a", "a-b", "a.b", "a b", "ab", "é", "\udcff", "x\\y", "\x00", "n\nl", "~", "\U0001f600"]
    ),
    st.text(max_size=3),
)
paths = st.builds(lambda parts: "/".join(parts), st.lists(components, min_size=1, max_size=4))


def bad(path: str) -> bool:
    try:
        check_relpath(path)
    except UnsafePathError:
        return True
    return False


@settings(max_examples=2000)
@given(st.lists(paths, max_size=6))
def test_check_relpaths_rejects_exactly_when_one_path_is_bad(batch: list[str]) -> None:
    try:
        check_relpaths(batch)
        rejected = False
    except UnsafePathError:
        rejected = True
    assert rejected == any(bad(p) for p in batch)


@settings(max_examples=2000)
@given(st.lists(paths, min_size=2, max_size=8))
def test_sort_key_orders_like_the_tuple_of_component_bytes(batch: list[str]) -> None:
    clean = [p for p in batch if not bad(p)]
    by_tuple = sorted(clean, key=lambda p: tuple(part.encode("utf-8") for part in p.split("/")))
    assert sorted(clean, key=sort_key) == by_tuple


def test_sort_key_puts_a_directory_right_before_its_children() -> None:
    assert sorted(["a-b", "a/z", "a", "a.b", "a/b/c", "ab"], key=sort_key) == ["a", "a/b/c", "a/z", "a-b", "a.b", "ab"]


def test_validate_entries_rejects_duplicates_unsafe_paths_and_file_parents() -> None:
    assert list(validate_entries([FileEntry("d", is_dir=True), FileEntry("d/f")])) == ["d", "d/f"]
    with pytest.raises(TransferError, match="twice"):
        validate_entries([FileEntry("a"), FileEntry("b"), FileEntry("a")])
    with pytest.raises(UnsafePathError, match="invalid transfer path 'x/../y'"):
        validate_entries([FileEntry("a"), FileEntry("x/../y")])
    with pytest.raises(UnsafePathError, match="lies under 'f', which is not a directory"):
        validate_entries([FileEntry("f"), FileEntry("f/g/h"), FileEntry("f/g/i")])
    with pytest.raises(UnsafePathError, match="lies under 'top/f'"):
        validate_entries([FileEntry("top", is_dir=True), FileEntry("top/f"), FileEntry("top/f/deep/x")])


def test_dir_cache_opens_each_directory_once_and_never_follows_links(tmp_path: Path) -> None:
    import os

    from builder.engines.buildkit.session.paths import DirCache

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    (tmp_path / "a" / "b" / "g").write_text("y")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_text("secret")
    os.symlink(tmp_path / "outside", tmp_path / "a" / "link")
    os.symlink("b/f", tmp_path / "a" / "flink")
    root_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    cache = DirCache(root_fd)
    try:
        for name in ("f", "g", "f"):
            fd = cache.open_regular_file(f"a/b/{name}")
            assert os.read(fd, 10) == (b"x" if name == "f" else b"y")
            os.close(fd)
        assert len(cache._fds) == 2  # "a" and "a/b"
        with pytest.raises(UnsafePathError, match="not a real directory"):
            cache.open_regular_file("a/link/f")
        with pytest.raises(UnsafePathError, match="cannot be opened as a regular file"):
            cache.open_regular_file("a/flink")
        with pytest.raises(UnsafePathError, match="is not a regular file"):
            cache.open_regular_file("a/b")
    finally:
        cache.close()
    os.fstat(root_fd)  # still open: the cache never closes the root
    os.close(root_fd)
