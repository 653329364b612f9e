"""The files base: the changes layer turns the base's files into exactly the new files (simulated file system)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.plan.files_base import FilesBase, FilesChanges, base_image, changes_onto
from builder.plan.model import FileEntry, FileManifest

_PARTS = st.sampled_from(["a", "b", "a-b", "a.txt", "ü", "lib", "x"])
_PATHS = st.lists(_PARTS, min_size=1, max_size=3).map("/".join)
_ENTRY = st.tuples(_PATHS, st.sampled_from(["file", "exec", "symlink"]), st.sampled_from(["1", "2", "3"]))


def _manifest(raw: list[tuple[str, str, str]]) -> FileManifest:
    """A manifest of ``raw`` with no path below another (a file cannot also be a directory)."""
    kept: dict[str, FileEntry] = {}
    for path, kind, content in raw:
        if any(path.startswith(p + "/") or p.startswith(path + "/") for p in kept) or path in kept:
            continue
        kept[path] = FileEntry(path, kind, len(content), f"blake3:{content}")
    return FileManifest.of(kept.values())


def _dirs(paths: object) -> set[str]:
    out = set()
    for path in paths:  # type: ignore[attr-defined]
        parts = path.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _apply(base: FileManifest, changes: FilesChanges) -> tuple[dict[str, FileEntry], set[str]]:
    """What the engine does: remove each path (recursively, absent is fine), then copy, creating parents."""
    files = {e.path: e for e in base.entries}
    dirs = _dirs(files)
    for path in changes.remove:
        files = {p: e for p, e in files.items() if p != path and not p.startswith(path + "/")}
        dirs = {d for d in dirs if d != path and not d.startswith(path + "/")}
    for entry in changes.copy.entries:
        assert entry.path not in dirs, f"{entry.path} would be copied into a directory"
        parents = _dirs([entry.path])
        assert not parents & set(files), f"{entry.path} would be copied below a file"
        files[entry.path] = entry
        dirs |= parents
    return files, dirs


@settings(max_examples=300)
@given(st.lists(_ENTRY, max_size=25), st.lists(_ENTRY, max_size=25))
def test_the_changes_layer_gives_the_new_files_exactly(old_raw: list, new_raw: list) -> None:
    old, new = _manifest(old_raw), _manifest(new_raw)
    base = FilesBase("img", "parent", "/app", old)
    changes = changes_onto(base, new, "parent", "/app", max_changed=10**6, max_share=100.0)
    if old.digest == new.digest:
        assert changes is None
        return
    assert changes is not None
    files, dirs = _apply(old, changes)
    assert files == {e.path: e for e in new.entries}
    assert dirs == _dirs(files)  # no directory left empty by deletions
    assert changes.count == len(changes.copy) + changes.deleted
    assert set(changes.copy.entries) == set(new.entries) - set(old.entries)


def _big(n: int, tag: str = "") -> FileManifest:
    return FileManifest.of(FileEntry(f"d/f{i:05d}", "file", 1, f"blake3:{tag}{i}") for i in range(n))


def test_a_base_of_other_dependencies_or_dest_or_the_same_files_is_not_built_on() -> None:
    files = _big(100)
    edited = FileManifest.of([*files.entries[1:], FileEntry("d/f00000", "file", 1, "blake3:new")])
    base = FilesBase("img", "deps-1", "/app", files)
    assert changes_onto(base, edited, "deps-2", "/app") is None
    assert changes_onto(base, edited, "deps-1", "/cortex") is None
    assert changes_onto(base, files, "deps-1", "/app") is None
    one = changes_onto(base, edited, "deps-1", "/app")
    assert one is not None and one.count == 1 and one.remove == ("d/f00000",)
    assert one.phrase() == "1 changed file copied onto the files as last built whole (100 files)"


def test_large_changes_mean_a_whole_copy() -> None:
    base = FilesBase("img", "p", "/app", _big(1000))
    assert changes_onto(base, _big(1000, "x"), "p", "/app") is None  # every file changed
    over = FileManifest.of([*_big(1000).entries[:899], *_big(1000, "x").entries[899:]])
    assert changes_onto(base, over, "p", "/app") is None  # 101 changed: above 10% of 1,000
    tenth = FileManifest.of([*_big(1000).entries[:900], *_big(1000, "x").entries[900:]])
    found = changes_onto(base, tenth, "p", "/app")
    assert found is not None and found.count == 100
    assert changes_onto(base, tenth, "p", "/app", max_changed=50) is None


def test_the_base_record_round_trips_and_bad_records_are_none() -> None:
    base = FilesBase(base_image("app", "p", "/app", "sha256:x"), "p", "/app", _big(3))
    again = FilesBase.from_json(base.to_json())
    assert again == base
    assert again is not None and again.manifest.digest == base.manifest.digest
    for bad in (None, [], {"image": 1}, {**base.to_json(), "files": [["a", "file"]]}, {**base.to_json(), "files": 3}):
        assert FilesBase.from_json(bad) is None


def test_the_base_image_name_is_a_stable_digest_of_its_inputs() -> None:
    name = base_image("app", "p", "/app", "sha256:x")
    assert name == base_image("app", "p", "/app", "sha256:x")
    assert name.startswith("docker.io/library/builder-files-base:") and len(name.rpartition(":")[2]) == 40
    assert len({name, base_image("app2", "p", "/app", "sha256:x"), base_image("app", "p", "/app", "sha256:y")}) == 3
