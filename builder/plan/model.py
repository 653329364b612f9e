"""The plan as data: frozen, slotted, compared by value, JSON round-trippable.

A :class:`Plan` is what ``builder plan --format json`` prints and what
``builder build --plan plan.json`` consumes: the app name, the key scheme
version, and the steps in build order.  Nothing here does I/O or knows about
engines; engines import this module only.

>>> from builder.plan.model import StepKind
>>> StepKind("pip").position < StepKind("files").position
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from builder.diagnostics import Diagnostic
from builder.errors import PlanError

JSON = dict[str, Any]


class StepKind(StrEnum):
    """The closed set of step kinds; a step's id is its kind (one step per kind)."""

    BASE = "base"
    PYTHON = "python"
    PRE_BUILD = "pre_build"
    APT = "apt"
    CONDA = "conda"
    PIP = "pip"
    RUNTIME = "runtime"
    FILES = "files"
    SHELL = "shell"
    DOCKERFILE = "dockerfile"
    CONFIG = "config"

    @property
    def position(self) -> int:
        """Position in the canonical chain order (used for fixed parent-key order)."""
        return _ORDER.index(self)


_ORDER: tuple[StepKind, ...] = tuple(StepKind)

RefUse = Literal["layer", "source"]


@dataclass(frozen=True, slots=True, order=True)
class StepRef:
    """A typed reference from one step to another.

    ``use="layer"``: the step is built on top of ``step``'s filesystem (a parent;
    its key feeds this step's key).  ``use="source"``: the step reads some of
    ``step``'s *source* files (pip reading the project files of local/``-e``
    requirements); the digest of exactly those files is part of this step's
    own inputs, so the other step's key is not a parent key.
    """

    step: StepKind
    use: RefUse = "layer"

    def to_json(self) -> JSON:
        return {"step": self.step.value, "use": self.use}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepRef:
        use = data.get("use", "layer")
        if use not in ("layer", "source"):
            raise ValueError(f"invalid StepRef use {use!r}")
        return cls(StepKind(data["step"]), use)


@dataclass(frozen=True, slots=True, order=True)
class CacheMount:
    """A persistent build-cache directory mounted while a step runs (not in the image).

    ``sharing`` follows BuildKit: ``shared``, ``private`` or ``locked``.
    """

    target: str
    id: str
    sharing: Literal["shared", "private", "locked"] = "shared"


FileType = Literal["file", "exec", "symlink"]


def check_project_path(path: str, what: str) -> str:
    """``path`` when it is a plain relative path inside the project directory, else ValueError naming it.

    A plan file is input: every path it names must stay inside the project directory it is built from
    (no absolute path, no ``..``, no empty or ``.`` component, no NUL).
    """
    parts = path.split("/")
    if not path or "\x00" in path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{what} {path!r} is not a plain path inside the project directory")
    return path


class FileEntry(NamedTuple):
    """One selected project file (an immutable named tuple: 100,000 of them are made per plan).

    ``type`` is ``file`` (regular), ``exec`` (regular with an executable bit) or
    ``symlink``; ``digest`` is ``blake3:<hex>`` of the content for files and the
    link's target text for symlinks (links are copied as links, never followed).
    JSON form: ``[path, type, size, digest]``.
    """

    path: str
    type: FileType
    size: int
    digest: str

    def to_json(self) -> list[Any]:
        return [self.path, self.type, self.size, self.digest]

    @classmethod
    def from_json(cls, data: Any) -> FileEntry:
        path, ftype, size, digest = data
        if ftype not in ("file", "exec", "symlink"):
            raise ValueError(f"invalid file type {ftype!r} for {path!r}")
        path = check_project_path(str(path), "file path")
        return cls(path, ftype, int(size), str(digest))


_PATH_TYPE_DIGEST = itemgetter(0, 1, 3)
_TYPES = frozenset(("file", "exec", "symlink"))
_new_entry = partial(tuple.__new__, FileEntry)
#: Components that make a path not plain (see check_project_path).
_NOT_PLAIN = frozenset(("", ".", ".."))


def _bulk_entries(files: Any) -> list[FileEntry] | None:
    """``files`` (JSON rows) as entries, checked at C level; None when any row needs a closer look."""
    try:
        if not files:
            return []
        if set(map(len, files)) != {4}:
            return None
    except TypeError:
        return None
    entries: list[FileEntry] = list(map(_new_entry, files))
    paths = list(map(itemgetter(0), entries))
    if set(map(type, paths)) != {str} or set(map(type, map(_SIZE, entries))) != {int}:
        return None
    if not set(map(itemgetter(1), entries)) <= _TYPES or set(map(type, map(itemgetter(3), entries))) != {str}:
        return None
    text = "\x00".join(paths)
    if text.count("\x00") != len(paths) - 1:  # a NUL inside a path
        return None
    # Every component of every path: none may be empty (absolute, "//", trailing "/"), "." or "..".
    if not _NOT_PLAIN.isdisjoint(text.replace("\x00", "/").split("/")):
        return None
    return entries


_SIZE = itemgetter(2)


@dataclass(frozen=True, slots=True)
class FileManifest:
    """The project files a step copies, sorted by path, with a Merkle ``digest``.

    ``digest`` is ``sha256:<hex>`` over the canonical entry lines, so a step key
    hashes the digest instead of re-encoding every entry.  Build it with
    :meth:`of`, which sorts and computes the digest.

    ``observed`` is what the walk saw, aligned with ``entries``: ``(path, size, mtime_ns,
    inode, permission bits)`` per entry (size -1 for a symlink).  It is an observation,
    not part of the manifest's value, its digest or its JSON (None for a manifest read
    from JSON).  The engine describes the files to BuildKit with it instead of stat'ing
    every file again, which also keeps what it describes equal to what the plan hashed.

    >>> m = FileManifest.of([FileEntry("b.py", "file", 1, "blake3:00"), FileEntry("a.py", "exec", 2, "blake3:11")])
    >>> [e.path for e in m.entries]
    ['a.py', 'b.py']
    """

    entries: tuple[FileEntry, ...]
    digest: str
    observed: tuple[tuple[str, int, int, int, int], ...] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, entries: Any) -> FileManifest:
        return cls.from_sorted(tuple(sorted(entries)))  # paths are unique, so this is path order

    @classmethod
    def from_sorted(
        cls, ordered: tuple[FileEntry, ...], observed: tuple[tuple[str, int, int, int, int], ...] | None = None
    ) -> FileManifest:
        """Like :meth:`of` for entries already sorted by path with unique paths (not re-checked)."""
        # Canonical bytes: the entry count, then path, type and digest of every entry, all separated by
        # NUL.  No field can contain NUL (POSIX paths and link targets cannot), so with three fields per
        # entry the split is unambiguous; the size is implied by the content digest (or link target).
        # Joined at C level (no per-entry Python code): the same bytes as joining path, type, digest flat.
        text = "\0".join(map("\0".join, map(_PATH_TYPE_DIGEST, ordered)))
        h = hashlib.sha256(f"builder-manifest-v2\0{len(ordered)}\0".encode())
        h.update(text.encode("utf-8", "surrogateescape"))
        return cls(ordered, "sha256:" + h.hexdigest(), observed)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[FileEntry]:
        return iter(self.entries)

    @property
    def total_size(self) -> int:
        return sum(map(_SIZE, self.entries))  # at C level: a 100,000-file summary adds it up on every plan

    def subset(self, prefixes: tuple[str, ...]) -> FileManifest:
        """The entries equal to or below any of the project-relative ``prefixes``."""
        norm = tuple(p.strip("/") for p in prefixes)
        if "" in norm or "." in norm:
            return self
        keep = [i for i, e in enumerate(self.entries) if any(e.path == p or e.path.startswith(p + "/") for p in norm)]
        seen = self.observed
        return FileManifest.from_sorted(
            tuple(self.entries[i] for i in keep), tuple(seen[i] for i in keep) if seen is not None else None
        )

    def to_json(self) -> JSON:
        # list(entry) is FileEntry.to_json at C level (a 50,000-file manifest is written on every new plan)
        return {"digest": self.digest, "count": len(self.entries), "files": list(map(list, self.entries))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileManifest:
        files = data.get("files", ())
        entries = _bulk_entries(files)
        if entries is None:  # something unusual: entry by entry, for the exact error
            entries = [FileEntry.from_json(item) for item in files]
        manifest = cls.of(entries)
        if data.get("digest") not in (None, manifest.digest):
            raise ValueError("file manifest digest does not match its entries")
        return manifest


@dataclass(frozen=True, slots=True)
class Step:
    """One build step: its id (= kind), key, layer parents and typed inputs.

    ``inputs`` is the kind's inputs dataclass (see ``builder.plan.steps``); it
    carries everything an engine needs to execute the step.  ``refs`` are the
    typed edges: layer parents plus any source references from the inputs.
    """

    id: StepKind
    key: str
    refs: tuple[StepRef, ...]
    inputs: Any

    @property
    def kind(self) -> StepKind:
        return self.id

    @property
    def parents(self) -> tuple[StepKind, ...]:
        """Layer parents, in chain order."""
        return tuple(r.step for r in self.refs if r.use == "layer")

    @property
    def sources(self) -> tuple[StepKind, ...]:
        """Steps whose source files this step reads (pip → files for local requirements)."""
        return tuple(r.step for r in self.refs if r.use == "source")

    def inputs_json(self) -> JSON:
        from builder.plan.codec import to_json

        value = to_json(self.inputs)
        assert isinstance(value, dict)
        return value

    def to_json(self) -> JSON:
        """``{"id", "kind", "key", "parents": [ids], "inputs": {...}}``."""
        return {
            "id": self.id.value,
            "kind": self.id.value,
            "key": self.key,
            "parents": [p.value for p in self.parents],
            "inputs": self.inputs_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], project_files: ProjectFiles | None = None) -> Step:
        """Read :meth:`to_json` output; a files step whose manifest is a summary takes ``project_files()``."""
        from builder.plan.codec import from_json
        from builder.plan.steps import inputs_type

        kind = StepKind(data["id"])
        raw = data["inputs"]
        if kind is StepKind.FILES:
            raw = _complete_manifest(raw, project_files)
        inputs = from_json(inputs_type(kind), raw)
        refs = [StepRef(StepKind(p), "layer") for p in data.get("parents", ())]
        refs.extend(getattr(inputs, "source_refs", tuple)())
        return cls(kind, str(data["key"]), tuple(refs), inputs)


#: The project's current file manifest, computed only when a plan document needs it.
ProjectFiles = Callable[[], FileManifest]


def _complete_manifest(inputs: Mapping[str, Any], project_files: ProjectFiles | None) -> Mapping[str, Any]:
    """The files step's inputs with a summary manifest replaced by the project's, when their digests agree."""
    summary = inputs.get("manifest")
    if not isinstance(summary, Mapping) or "files" in summary:
        return inputs
    if project_files is None:
        raise ValueError("the files step has only a manifest summary and no project to read the files from")
    current = project_files()
    if summary.get("digest") != current.digest:
        raise PlanError(
            f"the project's files changed since the plan was written: the plan's files step has "
            f"{summary.get('count', '?')} files (manifest {summary.get('digest')}), the project now has "
            f"{len(current)} (manifest {current.digest})",
            hint="write the plan again (builder plan --format json > plan.json) and build that; "
            "a plan's summary names the files by their digest only",
        )
    return {**inputs, "manifest": current}


@dataclass(frozen=True, slots=True)
class Plan:
    """A build plan: steps in build (topological) order.

    ``notes`` are diagnostics found while planning (skipped special files,
    ...); they are not part of the plan's value or JSON.

    >>> # plan = make_plan(load_config("fixtures/apps/minimal")); plan.step("base").key
    """

    app: str
    steps: tuple[Step, ...]
    scheme: int
    notes: tuple[Diagnostic, ...] = field(default=(), compare=False)
    _view: PlanJSONView | None = field(default=None, init=False, compare=False, repr=False)

    def step(self, step_id: str | StepKind) -> Step:
        """The step with this id; KeyError when the plan has none."""
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def get(self, step_id: str | StepKind) -> Step | None:
        for s in self.steps:
            if s.id == step_id:
                return s
        return None

    @property
    def ids(self) -> tuple[StepKind, ...]:
        return tuple(s.id for s in self.steps)

    @property
    def keys(self) -> dict[str, str]:
        """``{step id: key}``."""
        return {s.id.value: s.key for s in self.steps}

    def to_json(self) -> JSON:
        """``{"app", "scheme", "steps": [Step.to_json()...]}``."""
        return {"app": self.app, "scheme": self.scheme, "steps": [s.to_json() for s in self.steps]}

    def json_view(self) -> PlanJSONView:
        """:meth:`to_json` as a read-only mapping whose steps' inputs are encoded only when read
        (the plan history looks at ids and keys first and stores the whole JSON only for a new plan).

        One view per plan: inputs that a diff against the last plan encoded are not encoded again
        when the history stores the plan."""
        if self._view is None:
            object.__setattr__(self, "_view", PlanJSONView(self))
        assert self._view is not None
        return self._view

    @classmethod
    def from_json(cls, data: Mapping[str, Any], project_files: ProjectFiles | None = None) -> Plan:
        """Read :meth:`to_json` output (or ``builder plan --format json``; extra fields are ignored).

        A files step whose manifest is only a summary (``digest``, ``count``, no ``files``)
        takes the manifest ``project_files()`` returns, which must have that digest
        (PlanError otherwise; ValueError without ``project_files``).
        """
        from builder.plan.keys import KEY_SCHEME_VERSION

        return cls(
            app=str(data["app"]),
            steps=tuple(Step.from_json(s, project_files) for s in data["steps"]),
            scheme=int(data.get("scheme", KEY_SCHEME_VERSION)),
        )


class _StepJSONView(Mapping[str, Any]):
    """:meth:`Step.to_json` as a mapping that encodes ``inputs`` on first access."""

    __slots__ = ("_data", "_step")

    def __init__(self, step: Step) -> None:
        self._step = step
        self._data: dict[str, Any] = {
            "id": step.id.value,
            "kind": step.id.value,
            "key": step.key,
            "parents": [p.value for p in step.parents],
        }

    def __getitem__(self, name: str) -> Any:
        if name == "inputs" and name not in self._data:
            self._data["inputs"] = self._step.inputs_json()
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(("id", "kind", "key", "parents", "inputs"))

    def __len__(self) -> int:
        return 5


class PlanJSONView(Mapping[str, Any]):
    """A plan's JSON form (see :meth:`Plan.to_json`), built lazily; ``to_json()`` gives the real dict."""

    __slots__ = ("_plan", "_steps")

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self._steps = [_StepJSONView(s) for s in plan.steps]

    def __getitem__(self, name: str) -> Any:
        if name == "app":
            return self._plan.app
        if name == "scheme":
            return self._plan.scheme
        if name == "steps":
            return self._steps
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(("app", "scheme", "steps"))

    def __len__(self) -> int:
        return 3

    def to_json(self) -> JSON:
        """The plain dict :meth:`Plan.to_json` returns, reusing the inputs already encoded."""
        return {"app": self._plan.app, "scheme": self._plan.scheme, "steps": [dict(s) for s in self._steps]}
