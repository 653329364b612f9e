"""The files step's layering: a deterministic partition whose chained copies give the single-layer /app."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.plan.file_layers import rebuild_phrase, rebuild_phrase_same_paths, split_layers
from builder.plan.model import FileEntry, FileManifest

_NAMES = st.sampled_from(["a", "a-b", "a.txt", "b", "lib", "z", "ü", "x y", "main.py", "0"])


def _entry(path: str, salt: str = "") -> FileEntry:
    return FileEntry(path, "file", len(path), f"blake3:{path}{salt}")


@st.composite
def manifests(draw: st.DrawFn) -> FileManifest:
    paths = draw(st.sets(st.lists(_NAMES, min_size=1, max_size=4).map("/".join), min_size=1, max_size=120))
    # a path cannot be both a file and a directory: drop files that are a prefix directory of another
    clean = {p for p in paths if not any(q.startswith(p + "/") for q in paths)}
    return FileManifest.of(_entry(p) for p in clean)


def copy_chain(manifest: FileManifest, layers) -> dict[str, FileEntry]:  # type: ignore[no-untyped-def]
    """What the chained copies put in /app: each source brings the manifest entries at or below it."""
    app: dict[str, FileEntry] = {}
    for layer in layers:
        for src in layer.sources:
            for entry in manifest.entries:
                if src == "" or entry.path == src or entry.path.startswith(src + "/"):
                    assert entry.path not in app, f"{entry.path} copied by two layers"
                    app[entry.path] = entry
    return app


@settings(max_examples=200, deadline=None)
@given(manifests(), st.integers(1, 12), st.integers(0, 6), st.integers(1, 6))
def test_layers_copy_exactly_the_manifest(
    manifest: FileManifest, max_files: int, max_direct: int, max_layers: int
) -> None:
    layers = split_layers(manifest, max_files=max_files, max_direct=max_direct, max_layers=max_layers)
    assert copy_chain(manifest, layers) == {e.path: e for e in manifest.entries}
    held = [e for layer in layers for e in layer.entries]
    assert sorted(held) == list(manifest.entries)  # a partition: every entry in exactly one layer
    for layer in layers:
        assert list(layer.entries) == sorted(layer.entries)
        assert {e.path for e in layer.entries} == set(copy_chain(manifest, [layer]))
    assert len(layers) <= 2 * max(max_layers, 1) + 1


@settings(max_examples=100, deadline=None)
@given(manifests(), st.randoms(use_true_random=False))
def test_same_files_same_layers_whatever_the_order(manifest: FileManifest, rnd: random.Random) -> None:
    shuffled = list(manifest.entries)
    rnd.shuffle(shuffled)
    again = FileManifest.of(shuffled)
    assert split_layers(again, max_files=5, max_direct=3) == split_layers(manifest, max_files=5, max_direct=3)


@settings(max_examples=150, deadline=None)
@given(manifests(), st.randoms(use_true_random=False))
def test_an_edit_leaves_every_layer_below_its_own_unchanged(manifest: FileManifest, rnd: random.Random) -> None:
    """Changing one file's content keeps the layer split, and every layer below the file's is identical."""
    edited = rnd.choice(manifest.entries).path
    after = FileManifest.of(_entry(e.path, "edited" if e.path == edited else "") for e in manifest.entries)
    old, new = (split_layers(m, max_files=6, max_direct=2) for m in (manifest, after))
    assert [layer.sources for layer in old] == [layer.sources for layer in new]
    hit = next(i for i, layer in enumerate(new) if any(e.path == edited for e in layer.entries))
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        assert (a.manifest().digest == b.manifest().digest) == (i != hit)


def test_a_small_project_is_one_layer_copying_everything() -> None:
    manifest = FileManifest.of(_entry(f"src/m{i}.py") for i in range(30))
    (layer,) = split_layers(manifest)
    assert layer.sources == ("",)
    assert layer.label == "all files"
    assert layer.manifest().digest == manifest.digest


def test_top_level_files_come_last_and_directories_in_path_order() -> None:
    entries = [_entry(f"data/d{i // 100:02d}/f{i:04d}") for i in range(5000)]
    entries += [_entry("main.py"), _entry("app.py"), _entry("lib/x.py")]
    layers = split_layers(FileManifest.of(entries), max_files=1000, max_layers=24)
    assert layers[-1].sources == ("app.py", "main.py")
    assert layers[-1].label == "top-level files"
    assert layers[0].sources[0] == "data/d00"
    assert layers[0].label == "data/d00 … data/d09"
    assert all(len(layer) <= 1000 for layer in layers)
    assert any("lib" in layer.sources for layer in layers)


def test_a_flat_directory_with_many_files_stays_one_copy() -> None:
    entries = [_entry(f"big/f{i:05d}") for i in range(3000)] + [_entry(f"small/f{i}") for i in range(10)]
    layers = split_layers(FileManifest.of(entries), max_files=1000, max_direct=256)
    assert [layer.sources for layer in layers] == [("big",), ("small",)]


def test_a_large_split_directory_copies_its_direct_files_one_by_one() -> None:
    entries = [_entry(f"pkg/sub{i // 500}/f{i}") for i in range(3000)] + [_entry("pkg/__init__.py")]
    layers = split_layers(FileManifest.of(entries), max_files=1000, max_direct=256)
    sources = [s for layer in layers for s in layer.sources]
    assert "pkg/__init__.py" in sources
    assert "pkg" not in sources
    assert layers[-1].label == "files in pkg/"


def test_rebuild_phrase_names_the_lowest_changed_layer() -> None:
    entries = [_entry(f"data/d{i // 100:02d}/f{i:04d}") for i in range(3000)] + [_entry("main.py")]
    old = FileManifest.of(entries)
    mid = FileManifest.of(_entry(e.path, "x" if e.path == "data/d05/f0500" else "") for e in entries)
    top = FileManifest.of(_entry(e.path, "x" if e.path == "main.py" else "") for e in entries)
    assert rebuild_phrase(old, mid) == "layer 1 of 3 (data/d00 … data/d19) changed: layers 1-3 copied again, 0 reused"
    assert rebuild_phrase(old, top) == "layer 3 of 3 (top-level files) changed: only it is copied again, 2 reused"
    assert rebuild_phrase(old, old) is None
    small = FileManifest.of(entries[:10])
    assert rebuild_phrase(small, FileManifest.of(entries[:11])) is None  # one layer: nothing to say


def test_plan_summary_counts_the_layers() -> None:
    from builder.plan.steps.files import Inputs, summary

    many = FileManifest.of(_entry(f"data/d{i // 100:02d}/f{i:04d}") for i in range(3000))
    assert summary(Inputs(many)).endswith("→ /app in 2 layers")
    assert "layers" not in summary(Inputs(FileManifest.of([_entry("main.py")])))


_BIG = FileManifest.of(_entry(f"d{i // 150:02d}/s{i // 30 % 5}/f{i:04d}") for i in range(3000))


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 2999), max_size=4))
def test_the_same_paths_phrase_equals_the_full_comparison(edited: set[int]) -> None:
    """With unchanged paths, naming the changed ones gives the phrase the two full splits give."""
    paths = {_BIG.entries[i].path for i in edited}
    after = FileManifest.of(_entry(e.path, "x" if e.path in paths else "") for e in _BIG.entries)
    assert rebuild_phrase_same_paths(after, paths) == rebuild_phrase(_BIG, after)
    assert (rebuild_phrase(_BIG, after) is None) == (not paths)
