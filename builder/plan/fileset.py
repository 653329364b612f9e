"""Select the project files (include/exclude) and digest them into a FileManifest.

Rules, matching what real ``cerebrium.toml`` files rely on:

* ``"*"``, ``"./*"``, ``"."`` and ``"./"`` mean *everything, recursively*.
* ``"dir/"`` (trailing slash) means that directory, recursively.
* Any other pattern is an ``fnmatch`` pattern (``*`` also crosses ``/``)
  matched against both the project-relative path and the base name of every
  file *and directory*; a leading ``./`` is ignored.  A directory that an
  include pattern matches brings everything below it; a directory that an
  exclude pattern matches is pruned (never walked).  So ``".*"`` drops dotfiles
  and dot-directories **at any depth** (``.git/``, ``src/.cache/``, ``.env``).
* Exclude wins over include.  The config file itself (``cerebrium.toml``) is
  never part of the files (it has its own layer in the ``config`` step).

Deliberate difference from the official CLI: its Go matching drops only
top-level dotfiles and ships the contents of ``.git/`` and nested dot
directories.  We match base names at every depth because shipping ``.git``
(often the largest directory of a project, and full of secrets-by-history)
into an image layer is never what ``exclude = [".*"]`` meant.

Each selected entry records its relative path, type (``file``, ``exec`` for
an executable bit, ``symlink``), size and content digest (``blake3:<hex>``; a
symlink's digest is its target text: links are stored as links, never
followed).  Symlinked directories are not entered, so the walk never leaves
the project directory.  A :class:`~builder.plan.protocols.StatSource`
remembers digests by (path, size, mtime_ns, inode) so an unchanged file is
never read twice.

>>> # select_files(Path("app"), FileRules(("*",), (".*",))).manifest.digest
"""

from __future__ import annotations

import fnmatch
import gc
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import cast

import blake3

from builder.diagnostics import Diagnostic
from builder.errors import PlanError
from builder.plan.model import FileEntry, FileManifest
from builder.plan.protocols import StatSource, Walker

_ALL = frozenset({"*", "./*", ".", "./", "**", "./**", "**/*"})
_SMALL = 1 << 20  # read files up to 1 MiB in one call; larger ones are mmap-hashed
_RACY_NS = 2_000_000_000  # files modified this recently are hashed but not remembered
_STAT_KEY = tuple[str, int, int, int]


@dataclass(frozen=True, slots=True)
class FileRules:
    """The include/exclude patterns plus the project-relative paths always left out."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = (".*",)
    always_exclude: tuple[str, ...] = ("cerebrium.toml",)


@dataclass(frozen=True, slots=True)
class FileSelection:
    """The result of a walk: the manifest, notes, and how many files were read."""

    manifest: FileManifest
    notes: tuple[Diagnostic, ...] = ()
    hashed: int = 0
    remembered: int = 0
    skipped: tuple[str, ...] = field(default=())


class _Patterns:
    """A compiled pattern list: ``matches(rel, name, is_dir)``.

    Patterns of the form ``prefix*`` or ``*suffix`` without ``/`` or other
    wildcards (``.*``, ``*.pyc``) are checked on the base name with
    ``str.startswith``/``endswith``: since every directory on the way was
    checked the same way (and pruned when matched), testing the relative path
    too could not add a match.  Patterns without any wildcard or ``/``
    (``Dockerfile``, ``build/``) are base names compared with a set lookup, for
    the same reason.  ``pre``/``suf``/``names`` hold those that apply to files
    and directories alike (the walk inlines them); ``rest`` is None when no
    other pattern exists.
    """

    __slots__ = ("all", "dir_names", "dir_pre", "dir_re", "dir_suf", "file_re", "names", "pre", "rest", "suf")

    def __init__(self, patterns: Iterable[str]) -> None:
        regex: dict[bool, list[str]] = {True: [], False: []}
        pre: list[str] = []
        suf: list[str] = []
        dir_pre: list[str] = []
        dir_suf: list[str] = []
        names: set[str] = set()
        dir_names: set[str] = set()
        self.all = False
        for raw in patterns:
            pat = _normalise(raw)
            if pat is None:
                continue
            if pat in _ALL:
                self.all = True
                continue
            dir_only = pat.endswith("/")
            body = pat.rstrip("/")
            if _literal(body):
                (dir_names if dir_only else names).add(body)
            elif _literal(body[:-1]) and body.endswith("*"):
                (dir_pre if dir_only else pre).append(body[:-1])
            elif _literal(body[1:]) and body.startswith("*"):
                (dir_suf if dir_only else suf).append(body[1:])
            else:
                regex[True].append(fnmatch.translate(body))
                if not dir_only:
                    regex[False].append(fnmatch.translate(body))
        self.pre, self.suf = tuple(pre), tuple(suf)
        self.dir_pre, self.dir_suf = tuple(dir_pre), tuple(dir_suf)
        self.names, self.dir_names = frozenset(names), frozenset(dir_names)
        self.dir_re = re.compile("|".join(regex[True])).match if regex[True] else None
        self.file_re = re.compile("|".join(regex[False])).match if regex[False] else None
        other = self.all or self.dir_pre or self.dir_suf or self.dir_names or self.dir_re or self.file_re
        self.rest = self._rest if other else None

    def matches(self, rel: str, name: str, is_dir: bool) -> bool:
        if (self.pre and name.startswith(self.pre)) or (self.suf and name.endswith(self.suf)) or name in self.names:
            return True
        return self._rest(rel, name, is_dir)

    def _rest(self, rel: str, name: str, is_dir: bool) -> bool:
        if self.all:
            return True
        if is_dir:
            if (self.dir_pre and name.startswith(self.dir_pre)) or (self.dir_suf and name.endswith(self.dir_suf)):
                return True
            if name in self.dir_names:
                return True
            m = self.dir_re
        else:
            m = self.file_re
        return m is not None and (m(name) is not None or m(rel) is not None)


def _literal(text: str) -> bool:
    return bool(text) and not any(c in text for c in "*?[]/\\")


def _normalise(pattern: str) -> str | None:
    pat = pattern.strip()
    while pat.startswith("./") and pat not in _ALL:
        pat = pat[2:]
    if pat in _ALL:
        return pat
    pat = pat.lstrip("/")
    return pat or None


def select_files(
    root: Path, rules: FileRules, *, stat_source: StatSource | None = None, walker: Walker | None = None
) -> FileSelection:
    """Walk ``root`` with ``rules`` and return the digested selection.

    ``walker`` lists the files instead of :func:`walk` (see :class:`~builder.plan.protocols.Walker`).
    Raises PlanError when the project directory (or a selected file) cannot
    be read, or a selected name is not valid UTF-8.
    """
    base = _root(root)
    with _gc_paused():
        found, executable, notes, skipped = walker.walk(base, rules) if walker is not None else walk(base, rules)
        entries, hashed, remembered = _digest(base, found, executable, stat_source)
        manifest = FileManifest.from_sorted(tuple(entries), tuple(found))  # found's tuples live on there
        del found
        del entries
    return FileSelection(manifest, tuple(notes), hashed, remembered, tuple(skipped))


def selected_paths(root: Path, rules: FileRules) -> list[str]:
    """The project-relative paths ``rules`` select, sorted, without reading any file (for checks on names).

    Raises PlanError like :func:`select_files`.
    """
    return [found[0] for found in walk(_root(root), rules)[0]]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a walk allocates ~500,000 acyclic tuples and strings, and every automatic
    collection would re-traverse everything the process holds (measured: up to 40% of a warm plan)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _root(root: Path) -> str:
    try:
        resolved = root.resolve(strict=True)
    except OSError as exc:
        raise PlanError(f"project directory {str(root)!r} cannot be read: {exc.strerror}") from exc
    if not resolved.is_dir():
        raise PlanError(f"project path {str(root)!r} is not a directory")
    return str(resolved)


#: A found file: (rel, size, mtime_ns, inode, permission bits); size -1 marks a symlink.  The first four
#: are the StatSource key shape (bulk lookups read those columns; single ones and new digests use four).
Found = tuple[str, int, int, int, int]
#: What a walk returns: sorted found files, the executable ones, notes and skipped special files.
Walked = tuple[list[Found], set[str], list[Diagnostic], list[str]]


def walk(
    base: str,
    rules: FileRules,
    scan: Callable[[str, str], list[os.DirEntry[str]]] | None = None,
    links: list[Found] | None = None,
    only: Iterable[str] | None = None,
) -> Walked:
    """Sorted found files (with their permission bits), the set of executable ones, notes and
    skipped special files.

    ``scan`` replaces the directory listing (a watcher adds its watch first); ``links`` collects
    the regular files with more than one hard link (they can change through a path outside the walk).
    ``only``: list just these project-relative directories ("" is the project), not below them: the
    files directly in them, as a whole walk would find them (each must be one a whole walk enters).
    """
    scan = scan or scan_directory
    include = _Patterns(rules.include)
    exclude = _Patterns(rules.exclude)
    ex_pre, ex_suf, ex_names, ex_rest = exclude.pre, exclude.suf, exclude.names, exclude.rest
    included = include.matches
    always = frozenset(p.strip("/") for p in rules.always_exclude)
    always_names = tuple({p.rpartition("/")[2] for p in always})
    found: list[Found] = []
    append = found.append
    executable: set[str] = set()
    skipped: list[str] = []
    stack: list[tuple[str, str, bool]] = [(base, "", include.all)]
    descend = only is None
    if only is not None:
        stack = [(os.path.join(base, d) if d else base, d + "/" if d else "", _inherits(d, include)) for d in only]
    while stack:
        directory, prefix, inherited = stack.pop()
        for entry in scan(directory, prefix):
            name = entry.name
            if (ex_pre and name.startswith(ex_pre)) or (ex_suf and name.endswith(ex_suf)) or name in ex_names:
                continue
            rel = prefix + name
            if not name.isascii():
                _check_name(rel)
            is_dir = entry.is_dir(follow_symlinks=False)
            if (ex_rest is not None and ex_rest(rel, name, is_dir)) or (name in always_names and rel in always):
                continue
            if is_dir:
                if descend:
                    stack.append((entry.path, rel + "/", inherited or included(rel, name, True)))
                continue
            if not (inherited or included(rel, name, False)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished during the walk
            except OSError as exc:
                raise PlanError(f"cannot stat project file {rel!r}: {exc.strerror}") from exc
            mode = st.st_mode
            if mode & 0o170000 == _S_IFREG:
                append((rel, st.st_size, st.st_mtime_ns, st.st_ino, mode & 0o7777))
                if links is not None and st.st_nlink > 1:
                    links.append(found[-1])
                if mode & 0o111:
                    executable.add(rel)
            elif stat.S_ISLNK(mode):
                append((rel, -1, 0, 0, 0))
            else:
                skipped.append(rel)
    found.sort(key=_PATH)  # paths are unique, so this is tuple order, with str-specialised compares
    return found, executable, skipped_notes(skipped), skipped


def skipped_notes(skipped: list[str]) -> list[Diagnostic]:
    """The warning naming the special files a walk skipped (none: no warning)."""
    if not skipped:
        return []
    return [
        Diagnostic(
            "warning",
            "cerebrium.deployment.include",
            f"{len(skipped)} special file(s) skipped (sockets, fifos, devices): {_few(skipped)}",
        )
    ]


_S_IFREG = stat.S_IFREG


def _inherits(directory: str, include: _Patterns) -> bool:
    """Whether the files in ``directory`` are included by a directory pattern, as a whole walk decides it."""
    if include.all:
        return True
    parts = directory.split("/") if directory else []
    return any(include.matches("/".join(parts[: i + 1]), parts[i], True) for i in range(len(parts)))


def scan_directory(directory: str, prefix: str) -> list[os.DirEntry[str]]:
    """The entries of ``directory`` (``prefix`` is its project-relative path, for the error); [] when it
    vanished; PlanError when it cannot be read."""
    try:
        with os.scandir(directory) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        where = prefix.rstrip("/") or "."
        raise PlanError(
            f"cannot read project directory {where!r}: {exc.strerror}",
            hint="fix its permissions or add it to cerebrium.deployment.exclude",
        ) from exc


def _check_name(rel: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PlanError(
            f"project file name {rel.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8",
            hint="rename it or add it to cerebrium.deployment.exclude",
        ) from exc


def _few(items: list[str], n: int = 3) -> str:
    shown = ", ".join(sorted(items)[:n])
    return shown + (", …" if len(items) > n else "")


def _digest(
    base: str, found: list[Found], executable: set[str], source: StatSource | None
) -> tuple[list[FileEntry], int, int]:
    """Entries for ``found`` (sorted), reading only files the StatSource does not know."""
    prefix = base + os.sep
    # A StatSource bound to one project root (it has a ``root``, like cache.RootStatSource) is keyed
    # by project-relative paths; any other StatSource by absolute paths.
    # Root-bound sources read only the first four fields of a found entry: no copy of 100k tuples.
    keys = (
        cast(list[_STAT_KEY], found)
        if getattr(source, "root", None)
        else [(prefix + k[0], k[1], k[2], k[3]) for k in found]
    )
    digests = _lookup(keys, source)
    remembered = len(keys) - digests.count(None)
    if remembered == len(keys):  # the warm case: every entry built at C level, no per-file Python code
        rels = list(map(_PATH, found))
        types = [_TYPE[r in executable] for r in rels] if executable else repeat("file")
        return list(map(_new_entry, zip(rels, types, map(_SIZE, found), digests))), 0, remembered
    new = tuple.__new__
    if executable:
        entries = [
            new(FileEntry, (f[0], "exec" if f[0] in executable else "file", f[1], d)) if d is not None else None
            for f, d in zip(found, digests, strict=True)
        ]
    else:
        entries = [
            new(FileEntry, (f[0], "file", f[1], d)) if d is not None else None
            for f, d in zip(found, digests, strict=True)
        ]
    fresh: dict[_STAT_KEY, str] = {}
    racy_after = time.time_ns() - _RACY_NS
    fresh_bytes = 0
    hashed = 0
    for i, entry in enumerate(entries):
        if entry is not None:
            continue
        rel, size, mtime = found[i][:3]
        if size < 0:
            entries[i] = _symlink(prefix + rel, rel)
            continue
        digest, actual = _hash_file(prefix + rel, rel, size)
        hashed += 1
        if actual == size and mtime < racy_after:
            fresh[keys[i][:4]] = digest
            fresh_bytes += actual
        entries[i] = FileEntry(rel, "exec" if rel in executable else "file", actual, digest)
    if source is not None and fresh and _worth_remembering(len(keys), len(fresh), fresh_bytes):
        source.put_digests(fresh)
    return entries, hashed, remembered  # type: ignore[return-value]


#: A project of at most this many files always remembers new digests (its stat cache is cheap to rewrite) ...
REMEMBER_ALWAYS = 4096
#: ... a larger one once this many files, or this many bytes, were hashed: remembering one edited file
#: rewrote the whole stat cache (50,000 entries: ~0.7 s), while hashing a few small files again costs
#: microseconds, and the digests are remembered together once enough have changed.
REMEMBER_FILES = 64
REMEMBER_BYTES = 16 << 20


def _worth_remembering(files: int, fresh: int, fresh_bytes: int) -> bool:
    return files <= REMEMBER_ALWAYS or fresh >= REMEMBER_FILES or fresh_bytes >= REMEMBER_BYTES


_PATH = itemgetter(0)
_SIZE = itemgetter(1)
_TYPE = ("file", "exec")
_new_entry = partial(tuple.__new__, FileEntry)


def _lookup(keys: list[_STAT_KEY], source: StatSource | None) -> list[str | None]:
    if source is None:
        return [None] * len(keys)
    bulk = getattr(source, "get_digests", None)
    if bulk is not None:
        got = bulk(keys)
        got = got if type(got) is list else list(got)
        if len(got) != len(keys):
            raise PlanError("the stat cache answered a different number of digests than asked")
    else:
        get = source.get_digest
        got = [get(key[0], key[1], key[2], key[3]) for key in keys]
    if keys and min(map(_SIZE, keys)) < 0:  # symlinks are never remembered (their size is -1)
        for i, key in enumerate(keys):
            if key[1] < 0:
                got[i] = None
    return got


def _symlink(path: str, rel: str) -> FileEntry:
    try:
        target = os.readlink(path)
    except OSError as exc:
        raise PlanError(f"cannot read symlink {rel!r}: {exc.strerror}") from exc
    return FileEntry(rel, "symlink", len(target.encode("utf-8", "surrogateescape")), target)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _hash_file(path: str, rel: str, size: int) -> tuple[str, int]:
    """``(blake3 digest, bytes read)``; small files in one read, big ones through mmap."""
    try:
        if size > _SMALL:
            hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
            hasher.update_mmap(path)
            return "blake3:" + hasher.hexdigest(), os.stat(path, follow_symlinks=False).st_size
        fd = os.open(path, _OPEN_FLAGS)
        try:
            data = os.read(fd, size + 1)
            if len(data) > size:  # grew since lstat: read the rest
                data += _read_rest(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PlanError(
            f"cannot read project file {rel!r}: {exc.strerror}",
            hint="fix its permissions or add it to cerebrium.deployment.exclude",
        ) from exc
    return "blake3:" + blake3.blake3(data).hexdigest(), len(data)


def _read_rest(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def walk_stats(root: Path, rules: FileRules) -> dict[str, tuple[int, int, int]]:
    """The files ``rules`` select under ``root``, without reading them: ``{rel: (size, mtime_ns, inode)}``.

    The same walk as :func:`select_files` (so a watcher sees exactly the files the ``files`` step
    ships); a symlink appears with size -1. Raises PlanError like :func:`select_files`.
    """
    found = walk(_root(root), rules)[0]
    return {rel: (size, mtime_ns, inode) for rel, size, mtime_ns, inode, _mode in found}
