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
* units are packed in path order into layers of about ``max_files`` files,
  at most ``max_layers`` of them (the budget grows for very large projects);
* the project's top-level files (``main.py``, ``app.py``: the code people edit
  most) form the last layer, data and library directories come first.

>>> # layers = split_layers(manifest)  → tuple of FileLayer, bottom first
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from builder.plan.model import FileEntry, FileManifest

#: A layer holds about this many files (the per-layer cost is ~a copy of 2,000 small files).
MAX_FILES = 2048
#: A directory with more direct files than this is never split into single-file copies.
MAX_DIRECT = 256
#: Never more layers than this (images have at most 127 layers; the base image brings its own).
MAX_LAYERS = 24


@dataclass(frozen=True, slots=True)
class FileLayer:
    """One layer of the files step.

    ``sources``: project-relative paths copied into the destination, each a
    directory (its selected subtree) or a single file; ``("",)`` copies the
    whole project.  ``manifest``: the entries this layer holds (its digest
    says whether the layer changed).
    """

    sources: tuple[str, ...]
    manifest: FileManifest
    label: str = ""

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "sources": list(self.sources), "digest": self.manifest.digest,
                "count": len(self.manifest)}


def _label(sources: list[str], files_only: bool) -> str:
    """``all files``, ``data/a``, ``data/a … data/k``, ``top-level files``, ``files in data/``."""
    if sources == [""]:
        return "all files"
    if files_only:
        parent = sources[0].rpartition("/")[0]
        return f"files in {parent}/" if parent else "top-level files"
    return sources[0] if len(sources) == 1 else f"{sources[0]} … {sources[-1]}"


def split_layers(manifest: FileManifest, *, max_files: int = MAX_FILES, max_direct: int = MAX_DIRECT,
                 max_layers: int = MAX_LAYERS) -> tuple[FileLayer, ...]:
    """The layers of ``manifest``, bottom first; they partition its entries (see module docstring)."""
    entries = manifest.entries
    if len(entries) <= max_files:
        return (FileLayer(("",), manifest, "all files"),)
    budget = max(max_files, math.ceil(len(entries) / max(1, max_layers - 1)))
    units: list[tuple[str, list[FileEntry], bool]] = []
    top_files: list[FileEntry] = []
    _cut(list(entries), "", budget, max_direct, units, top_files)
    layers: list[tuple[list[str], list[FileEntry], list[bool]]] = []
    for source, held, is_file in units:
        if not layers or len(layers[-1][1]) + len(held) > budget:
            layers.append(([], [], []))
        layers[-1][0].append(source)
        layers[-1][1].extend(held)
        layers[-1][2].append(is_file)
    if top_files:
        layers.append(([e.path for e in top_files], top_files, [True] * len(top_files)))
    return tuple(FileLayer(tuple(sources), FileManifest.of(held), _label(sources, all(kinds)))
                 for sources, held, kinds in layers)


def _cut(entries: list[FileEntry], prefix: str, budget: int, max_direct: int,
         units: list[tuple[str, list[FileEntry], bool]], top_files: list[FileEntry]) -> None:
    """Append the units of the directory ``prefix`` (``""``: the project) holding ``entries`` (sorted)."""
    start = len(prefix)
    direct: list[FileEntry] = []
    children: dict[str, list[FileEntry]] = {}
    for entry in entries:
        name, sep, _rest = entry.path[start:].partition("/")
        if sep:
            children.setdefault(name, []).append(entry)
        else:
            direct.append(entry)
    if prefix and len(direct) > max_direct:
        units.append((prefix.rstrip("/"), entries, False))
        return
    for name in sorted(children, key=lambda n: n.encode("utf-8", "surrogateescape")):
        held = children[name]
        path = prefix + name
        if len(held) <= budget:
            units.append((path, held, False))
        else:
            _cut(held, path + "/", budget, max_direct, units, top_files)
    if not prefix:
        top_files.extend(direct)
    else:
        units.extend((e.path, [e], True) for e in direct)
