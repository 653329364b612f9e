"""StatCache: per-path entries, per-root snapshots, and the StatSource contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_helpers import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.plan.protocols import MemoryStatSource, StatSource
from cache import CacheStore, open_cache
from cache.stat import ROOT_PREFIX, common_root, decode_snapshot, encode_snapshot, normalise_root


@pytest.fixture(params=["disk", "disk-root", "memory"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StatSource]:
    if request.param == "memory":
        yield MemoryStatSource()
        return
    with open_cache(tmp_path / "c") as c:
        yield c.stats if request.param == "disk" else c.stats.for_root(tmp_path / "proj")


@pytest.mark.parametrize("changed", ["path", "size", "mtime_ns", "inode"])
def test_contract_any_stat_change_is_a_miss(source: StatSource, changed: str) -> None:
    entry = {"path": "src/a.py", "size": 10, "mtime_ns": 123, "inode": 77}
    source.put_digests({("src/a.py", 10, 123, 77): "blake3:aa"})
    assert source.get_digest("src/a.py", 10, 123, 77) == "blake3:aa"
    entry[changed] = entry[changed] + ("x" if changed == "path" else 1)  # type: ignore[operator]
    assert source.get_digest(**entry) is None  # type: ignore[arg-type]


def test_contract_later_entries_replace_earlier(source: StatSource) -> None:
    source.put_digests({("a", 1, 1, 1): "d1", ("b/c", 2, 2, 2): "d2"})
    source.put_digests({("a", 1, 5, 1): "d3"})
    assert source.get_digest("a", 1, 5, 1) == "d3"
    assert source.get_digest("b/c", 2, 2, 2) == "d2"


def test_contract_bulk_lookup_agrees_with_single_lookups(source: StatSource) -> None:
    known = {("/p/a.py", 1, 1, 1): "d1", ("/p/sub/b.py", 2, 2, 2): "d2"}
    source.put_digests(known)
    asked = [("/p/a.py", 1, 1, 1), ("/p/sub/b.py", 2, 2, 2), ("/p/sub/b.py", 2, 3, 2), ("/p/new.py", 1, 1, 1)]
    bulk = getattr(source, "get_digests", None)
    if bulk is None:
        pytest.skip("this StatSource has no bulk lookup")
    assert list(bulk(asked)) == [source.get_digest(*k) for k in asked] == ["d1", "d2", None, None]


@pytest.mark.parametrize("prefix", ["/proj/", "proj/", "", "/"])
def test_walk_batches_round_trip_and_forget_deleted_files(cache_dir: Path, prefix: str) -> None:
    files = {f"{prefix}{name}": (i + 1, i * 7, 100 + i) for i, name in enumerate(["a.py", "pkg/b.py", "pkg/c/d.py"])}
    keys = [(p, *st) for p, st in files.items()]
    with open_cache(cache_dir) as c:
        assert c.stats.get_digests(keys) == [None] * 3
        c.stats.put_digests({k: f"d-{k[0]}" for k in keys})
    del files[f"{prefix}pkg/b.py"]  # the next walk no longer finds it
    keys = [(p, *st) for p, st in files.items()]
    with open_cache(cache_dir) as c:
        assert c.stats.get_digests(keys) == [f"d-{k[0]}" for k in keys]
        c.stats.put_digests({(f"{prefix}e.py", 1, 1, 1): "d-e"})
        assert c.stats.get_digest(f"{prefix}e.py", 1, 1, 1) == "d-e"
    with open_cache(cache_dir) as c:
        root = common_root([f"{prefix}a.py", f"{prefix}pkg/c/d.py"])
        assert sorted(c.stats._table(root)) == ["a.py", "e.py", "pkg/c/d.py"]
        assert c.summary().stat_roots == 1


def test_batch_of_one_project_is_one_snapshot(cache_dir: Path) -> None:
    keys = [(f"/w/proj/d{i % 50}/f{i}.py", i, i, i) for i in range(1000)]
    with open_cache(cache_dir) as c:
        c.stats.get_digests(keys)
        c.stats.put_digests({k: "d" for k in keys})
        assert c.stats.roots() == ["/w/proj"]
        assert c.summary().stat_files == 1000


@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "ab", "."]), min_size=1, max_size=4).map("/".join), min_size=1, max_size=6
    ),
    st.sampled_from(["", "/", "/x/"]),
)
def test_common_root_is_a_directory_holding_every_path(parts: list[str], prefix: str) -> None:
    paths = [prefix + p for p in parts]
    root = common_root(paths)
    for p in paths:
        assert root == "" or p.startswith(root if root.endswith("/") else root + "/")
    assert root == "" or not root.endswith("/") or root == "/"


def test_per_path_entries_persist_across_opens(cache_dir: Path) -> None:
    entries = {(f"/p/d{i % 7}/f{i}", i, i * 10, i + 1): f"d{i}" for i in range(200)}
    with open_cache(cache_dir) as c:
        c.stats.put_digests(entries)
    with open_cache(cache_dir) as c:
        assert all(c.stats.get_digest(*k) == v for k, v in entries.items())
        assert c.summary().stat_files == 200


def test_snapshot_round_trip_and_replace(store: CacheStore, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    assert store.stats.load_snapshot(root) == {}
    snap = {"a.py": (1, 2, 3, "d-a"), "pkg/b.py": (4, 5, 6, "d-b")}
    store.stats.save_snapshot(root, snap)
    assert store.stats.load_snapshot(str(root) + "/") == snap  # root is normalised
    store.stats.save_snapshot(root, {"a.py": (1, 2, 3, "d-a")})  # b.py was deleted
    assert store.stats.load_snapshot(root) == {"a.py": (1, 2, 3, "d-a")}
    assert store.stats.roots() == [normalise_root(root)]
    assert store.stats.meta(root)["files"] == 1


def test_saving_an_unchanged_snapshot_writes_nothing(store: CacheStore, clock: FakeClock, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    store.stats.save_snapshot(root, {"a": (1, 1, 1, "d")})
    saved_at = store.stats.meta(root)["saved_at"]
    clock.advance(10)
    loaded = store.stats.load_snapshot(root)
    store.stats.save_snapshot(root, loaded)
    assert store.stats.meta(root)["saved_at"] == saved_at
    loaded["b"] = (2, 2, 2, "e")  # mutating the loaded dict must not fool the comparison
    store.stats.save_snapshot(root, loaded)
    assert store.stats.meta(root)["saved_at"] == clock.now


def test_loading_refreshes_last_use_at_most_hourly(store: CacheStore, clock: FakeClock, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    store.stats.save_snapshot(root, {"a": (1, 1, 1, "d")})
    start = clock.now
    clock.advance(60)
    store.stats.load_snapshot(root)
    assert store.stats.meta(root)["used_at"] == start
    clock.advance(3600)
    store.stats.load_snapshot(root)
    assert store.stats.meta(root)["used_at"] == clock.now


def test_for_root_shares_the_snapshot(store: CacheStore, tmp_path: Path) -> None:
    view = store.stats.for_root(tmp_path / "proj")
    view.put_digests({("a.py", 1, 2, 3): "d"})
    assert store.stats.load_snapshot(tmp_path / "proj") == {"a.py": (1, 2, 3, "d")}
    assert store.stats.for_root(tmp_path / "proj").get_digest("a.py", 1, 2, 3) == "d"


@pytest.mark.parametrize(
    "blob",
    [
        b"\xff\xfe",
        b"[]",
        b'{"format":"other"}',
        b'{"format":"stat-snapshot/1","paths":["a"],"sizes":[],"mtimes":[],"inodes":[],"digests":[]}',
        b'{"format":"stat-snapshot/1","paths":[1],"sizes":[1],"mtimes":[1],"inodes":[1],"digests":["d"]}',
    ],
)
def test_malformed_blobs_read_as_empty(store: CacheStore, tmp_path: Path, blob: bytes) -> None:
    store._store.set(ROOT_PREFIX + normalise_root(tmp_path), blob)
    store._store.set(ROOT_PREFIX + "/x", blob)
    assert store.stats.load_snapshot(tmp_path) == {}
    assert store.stats.get_digest("/x/a", 1, 1, 1) is None


_no_nul = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
_entries = st.dictionaries(
    st.text(_no_nul, min_size=1, max_size=30),
    st.tuples(st.integers(0, 2**40), st.integers(0, 2**62), st.integers(0, 2**40), st.text(_no_nul, max_size=70)),
    max_size=30,
)


@given(_entries, st.floats(min_value=0, max_value=4e9, allow_nan=False))
@settings(max_examples=200)
def test_snapshot_encoding_round_trips_and_is_order_independent(entries: dict, saved_at: float) -> None:  # type: ignore[type-arg]
    blob = encode_snapshot(entries, saved_at)
    assert decode_snapshot(blob) == (entries, saved_at)
    assert encode_snapshot(dict(reversed(list(entries.items()))), saved_at) == blob


def test_root_view_accepts_absolute_and_relative_paths(store: CacheStore, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    view = store.stats.for_root(root)
    view.put_digests({(f"{root}/a.py", 1, 1, 1): "d-a", ("b.py", 2, 2, 2): "d-b"})
    assert view.get_digest("a.py", 1, 1, 1) == "d-a"
    assert view.get_digest(f"{root}/b.py", 2, 2, 2) == "d-b"
    assert store.stats.load_snapshot(root) == {"a.py": (1, 1, 1, "d-a"), "b.py": (2, 2, 2, "d-b")}
    # The unbound cache finds the same entries through the root's snapshot.
    assert store.stats.get_digests([(f"{root}/a.py", 1, 1, 1), (f"{root}/b.py", 2, 2, 2)]) == ["d-a", "d-b"]


def test_root_view_batch_drops_deleted_files(cache_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    with open_cache(cache_dir) as c:
        view = c.stats.for_root(root)
        keys = [(f"{root}/{n}", 1, 1, 1) for n in ("a.py", "b.py", "c.py")]
        assert view.get_digests(keys) == [None] * 3
        view.put_digests(dict.fromkeys(keys, "d"))
    with open_cache(cache_dir) as c:
        view = c.stats.for_root(root)
        keys = [(f"{root}/{n}", 1, 1, 1) for n in ("a.py", "d.py")]  # b and c were deleted, d added
        assert view.get_digests(keys) == ["d", None]
        view.put_digests({keys[1]: "d"})
        assert sorted(c.stats.load_snapshot(root)) == ["a.py", "d.py"]


_paths = st.sampled_from(["/p/a", "/p/b", "/p/sub/c", "/p/sub/d", "/p/sub/deep/e", "/q/f", "rel/g", "h"])
_under_p = st.sampled_from(["/p/a", "/p/b", "/p/sub/c", "/p/sub/deep/e"])
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.lists(st.tuples(_paths, st.integers(0, 3)), min_size=1, max_size=5)),
        st.tuples(st.just("batch"), st.lists(_paths, min_size=1, max_size=6, unique=True)),
        st.tuples(st.just("view-batch"), st.lists(_under_p, min_size=1, max_size=4, unique=True)),
        st.tuples(st.just("view-put"), st.lists(st.tuples(_under_p, st.integers(0, 3)), min_size=1, max_size=3)),
        st.tuples(st.just("reopen"), st.just([])),
    ),
    max_size=12,
)


@given(_ops)
@settings(max_examples=200, deadline=None)
def test_never_a_wrong_digest_and_own_writes_are_read_back(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:  # type: ignore[type-arg]
    """Whatever mix of batches, puts and reopens: a lookup is the latest digest or a miss."""
    cache_dir = tmp_path_factory.mktemp("c")
    truth: dict[str, tuple[int, str]] = {}  # path → (mtime, digest) last written
    c = open_cache(cache_dir)
    try:
        for op, arg in ops:
            if op == "reopen":
                c.close()
                c = open_cache(cache_dir)
            elif op in ("batch", "view-batch"):
                source = c.stats if op == "batch" else c.stats.for_root("/p")
                got = source.get_digests([(p, 1, truth.get(p, (0, ""))[0], 1) for p in arg])
                for p, d in zip(arg, got, strict=True):
                    assert d is None or d == truth[p][1]
            else:
                # One stat tuple has one content: the digest is a function of (path, mtime) here.
                entries = {(p, 1, m, 1): f"d-{p}-{m}" for p, m in arg}
                (c.stats if op == "put" else c.stats.for_root("/p")).put_digests(entries)
                for (p, _, m, _), d in entries.items():
                    truth[p] = (m, d)
                reader = c.stats if op == "put" else c.stats.for_root("/p")
                for p, _, _, _ in entries:  # read back in the same process, the same way
                    assert reader.get_digest(p, 1, truth[p][0], 1) == truth[p][1]
        for p, (m, d) in truth.items():
            assert c.stats.get_digest(p, 1, m, 1) in (None, d)
    finally:
        c.close()


@pytest.mark.parametrize("change", ["none", "edit", "add", "delete", "reorder", "tuple-keys"])
def test_warm_walk_fast_path_agrees_with_lookups(cache_dir: Path, change: str) -> None:
    """The list-compare fast path and the dict path give the same answers."""
    keys = [(f"/r/d{i % 3}/f{i:03d}.py", i, i * 10, i + 7) for i in range(60)]
    keys.sort()
    with open_cache(cache_dir) as c:
        c.stats.get_digests(keys)
        c.stats.put_digests({k: f"d{k[0]}" for k in keys})
    asked = list(keys)
    if change == "edit":
        asked[5] = (asked[5][0], asked[5][1] + 1, asked[5][2], asked[5][3])
    elif change == "add":
        asked.insert(7, ("/r/d0/new.py", 1, 1, 1))
    elif change == "delete":
        del asked[9]
    elif change == "reorder":
        asked.reverse()
    expected = [None if k not in keys else f"d{k[0]}" for k in asked]
    with open_cache(cache_dir) as c:
        got = c.stats.get_digests(tuple(asked) if change == "tuple-keys" else asked)
        assert got == expected
        singles = [c.stats.get_digest(*k) for k in asked]
        assert singles == expected
    with open_cache(cache_dir) as c:
        assert c.stats.for_root("/r").get_digests(asked) == expected


@pytest.mark.parametrize("change", ["none", "size", "mtime", "inode", "add", "delete", "reorder"])
def test_root_view_warm_walk_with_relative_paths(cache_dir: Path, change: str) -> None:
    """A for_root batch of project-relative paths (what planning sends) hits only on an unchanged stat tuple."""
    keys = sorted((f"d{i % 3}/f{i:03d}.py", i, i * 10, i + 7) for i in range(60))
    with open_cache(cache_dir) as c:
        view = c.stats.for_root("/r")
        view.get_digests(keys)
        view.put_digests({k: f"d{k[0]}" for k in keys})
    asked = list(keys)
    if change in ("size", "mtime", "inode"):
        field = ("size", "mtime", "inode").index(change) + 1
        bumped = list(asked[5])
        bumped[field] += 1
        asked[5] = tuple(bumped)  # type: ignore[call-overload]
    elif change == "add":
        asked.insert(7, ("d0/new.py", 1, 1, 1))
    elif change == "delete":
        del asked[9]
    elif change == "reorder":
        asked.reverse()
    expected = [f"d{k[0]}" if k in keys else None for k in asked]
    with open_cache(cache_dir) as c:
        assert c.stats.for_root("/r").get_digests(asked) == expected
    with open_cache(cache_dir) as c:  # the same files asked by absolute path agree
        assert c.stats.for_root("/r").get_digests([("/r/" + k[0], *k[1:]) for k in asked]) == expected
