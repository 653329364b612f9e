"""Split the files step into several chained layers, decided from the manifest alone.

One layer for the whole project means BuildKit copies (and the exporter diffs)
every project file again after any edit.  With several layers chained on top
of each other, an edit re-copies only the layer holding the changed file and
the layers above it.  Without MergeOp (dockerd 20.10 and 26 have none) the
layers cannot be independent, so their order matters: whatever lands last is
cheapest to change.

The split depends only on the manifest's paths (never on history, mtimes or
the machine), so the same project state gives the same layers, keys and LLB
everywhere:

* a project of at most ``max_files`` files stays one layer copying ``/``;
* otherwise the tree is cut into *units*: a directory whose subtree holds at
  most ``max_files`` files is one unit; a bigger one is split into its
  subdirectories plus one unit of its own direct files (a directory with more
  than ``max_direct`` direct files stays whole: copying them one by one would
  bloat the LLB);
* units are packed in path order into layers of at most ``max_files`` files
  (a bigger budget for very large projects, so there are about ``max_layers``
  layers and never more than twice that);
* the project's top-level files (``main.py``, ``app.py``: the code people edit
  most) form the last layer, data and library directories come first.

>>> # layers = split_layers(manifest)  → tuple of FileLayer, bottom first
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from builder.plan.model import FileEntry, FileManifest

#: A layer holds about this many files (the per-layer cost is ~a copy of 2,000 small files).
MAX_FILES = 2048
#: A directory with more direct files than this is never split into single-file copies.
MAX_DIRECT = 256
#: About this many layers at most: each costs the engine a snapshot and an export of its own, so an edit in the
#: bottom layer of 25 cost more than one big layer (measured at 50k files: 31 s vs 22 s for docker build).
MAX_LAYERS = 8


@dataclass(frozen=True, slots=True)
class FileLayer:
    """One layer of the files step.

    ``sources``: project-relative paths copied into the destination, each a
    directory (its selected subtree) or a single file; ``("",)`` copies the
    whole project.  ``entries``: the manifest entries the layer holds, in path
    order; :meth:`manifest` digests them (whether the layer changed).
    """

    sources: tuple[str, ...]
    entries: tuple[FileEntry, ...]
    label: str

    def __len__(self) -> int:
        return len(self.entries)

    def manifest(self) -> FileManifest:
        """The layer's entries as a manifest (its digest changes exactly when the layer's content does)."""
        return FileManifest.from_sorted(self.entries)

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "count": len(self.entries)}


def _label(sources: list[str], files_only: bool) -> str:
    """``all files``, ``data/a``, ``data/a … data/k``, ``top-level files``, ``files in data/``."""
    if sources == [""]:
        return "all files"
    if files_only:
        parent = sources[0].rpartition("/")[0]
        return f"files in {parent}/" if parent else "top-level files"
    return sources[0] if len(sources) == 1 else f"{sources[0]} … {sources[-1]}"


def split_layers(
    manifest: FileManifest, *, max_files: int = MAX_FILES, max_direct: int = MAX_DIRECT, max_layers: int = MAX_LAYERS
) -> tuple[FileLayer, ...]:
    """The layers of ``manifest``, bottom first; they partition its entries (see module docstring)."""
    entries = manifest.entries
    if len(entries) <= max_files:
        return (FileLayer(("",), entries, "all files"),)
    budget = max(max_files, math.ceil(len(entries) / max(1, max_layers - 1)))
    paths = [e.path for e in entries]
    units: list[tuple[str, int, int, bool]] = []  # (source, start, end, is a single file) over ``entries``
    top_files: list[int] = []
    _cut(paths, "", 0, len(paths), budget, max_direct, units, top_files)
    layers: list[tuple[list[str], list[tuple[int, int]], int, bool]] = []
    for source, start, end, is_file in units:
        if not layers or layers[-1][2] + (end - start) > budget:
            layers.append(([], [], 0, True))
        sources, spans, count, files_only = layers[-1]
        sources.append(source)
        spans.append((start, end))
        layers[-1] = (sources, spans, count + end - start, files_only and is_file)
    if top_files:
        layers.append(([paths[i] for i in top_files], [(i, i + 1) for i in top_files], len(top_files), True))
    out = []
    for sources, spans, _count, files_only in layers:
        held = [entries[i] for start, end in spans for i in range(start, end)]
        held.sort()  # spans of sibling subtrees ("a", "a-b") interleave in path order
        out.append(FileLayer(tuple(sources), tuple(held), _label(sources, files_only)))
    return tuple(out)


def _cut(
    paths: list[str],
    prefix: str,
    start: int,
    end: int,
    budget: int,
    max_direct: int,
    units: list[tuple[str, int, int, bool]],
    top_files: list[int],
) -> None:
    """Append the units of directory ``prefix`` (``""``: the project), whose subtree is ``paths[start:end]``.

    A subtree is contiguous in path order (every path in it starts with ``prefix``), so each child
    directory's range is found by bisection instead of looking at every path below it.
    """
    cut = len(prefix)
    direct: list[int] = []
    children: list[tuple[str, int, int]] = []
    i = start
    while i < end:
        rest = paths[i][cut:]
        slash = rest.find("/")
        if slash < 0:
            direct.append(i)
            i += 1
            continue
        child = prefix + rest[:slash]
        stop = bisect.bisect_left(paths, child + "0", i, end)  # "0" sorts right after "/"
        children.append((child, i, stop))
        i = stop
    if prefix and len(direct) > max_direct:
        units.append((prefix.rstrip("/"), start, end, False))
        return
    children.sort(key=lambda c: c[0].encode("utf-8", "surrogateescape"))
    for child, lo, hi in children:
        if hi - lo <= budget:
            units.append((child, lo, hi, False))
        else:
            _cut(paths, child + "/", lo, hi, budget, max_direct, units, top_files)
    if not prefix:
        top_files.extend(direct)
    else:
        units.extend((paths[i], i, i + 1, True) for i in direct)


def first_changed(old: tuple[FileLayer, ...], new: tuple[FileLayer, ...]) -> int | None:
    """Index of the lowest layer of ``new`` that is not ``old``'s layer at the same place (None: all kept).

    With chained layers that layer and every one above it are copied again; those below are reused.
    """
    for i, layer in enumerate(new):
        if i >= len(old) or old[i].sources != layer.sources or old[i].entries != layer.entries:
            return i
    return None


def rebuild_phrase(old: FileManifest, new: FileManifest) -> str | None:
    """``layer 12 of 25 (data/d231 … data/d251) changed: layers 12-25 copied again, 11 reused``.

    None when the files are one layer (nothing to tell) or no layer changed.
    """
    before, after = split_layers(old), split_layers(new)
    return _phrase(after, first_changed(before, after))


def rebuild_phrase_same_paths(new: FileManifest, changed: set[str]) -> str | None:
    """:func:`rebuild_phrase` when the old manifest had the same paths and ``changed`` lists those whose
    content or type differ (same paths: same layers, so the old split need not be made)."""
    after = split_layers(new)
    if len(after) == 1 or not changed:
        return None
    first = next((i for i, layer in enumerate(after) if any(e.path in changed for e in layer.entries)), None)
    return _phrase(after, first)


def _phrase(after: tuple[FileLayer, ...], first: int | None) -> str | None:
    if first is None or len(after) == 1:
        return None
    n = len(after)
    where = f"layer {first + 1} of {n} ({after[first].label}) changed"
    if first == n - 1:
        return f"{where}: only it is copied again, {first} reused"
    return f"{where}: layers {first + 1}-{n} copied again, {first} reused"
