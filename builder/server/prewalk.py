"""Walk the last planned project ahead of the next command, and keep that walk true with inotify.

A warm server's spare waits idle for its command.  Meanwhile it walks the
project directory that the last command planned, with that command's
include/exclude rules (the hint file names both), adding an inotify watch on
every directory *before* listing it, so a change made at any moment after the
listing is reported.  The command gets a :class:`ServedWalker` (a
:class:`builder.plan.protocols.Walker`, passed in through ``builder.cli.main``);
when it plans the same directory with the same rules, the walker returns that
walk instead of listing and stat-ing every file again, but only when all of
this holds:

* no watched directory reported a change: an entry created, deleted, moved,
  written or re-attributed, or the directory itself moved or deleted;
* the kernel dropped no events (a full queue reports an overflow, which counts as a change);
* every file with more than one hard link still has the size, mtime, inode and
  mode the walk saw (a write through a path outside the project reaches no
  watch on the project, so those few files are stat-ed again).

Anything else, and any error on the way, means the normal walk.  The walk is
used once: the next spare walks again.  The walk stops, and its thread is
joined, before the command installs its environment: no thread of ours runs
beside a command.  A project with more directories than a
quarter of the user's inotify watches (at most 8,192) is not walked ahead, so
editors and other watchers of the same user keep theirs.  What inotify does not report are writes
through a shared memory mapping (the kernel updates the file's mtime but sends
no event), and changes on network file systems made by other machines; set
``BUILDER_PREWALK=off`` for projects edited that way.  Linux only (elsewhere,
or without inotify, nothing is walked ahead).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
import threading
from collections.abc import Mapping
from typing import Any

from builder.errors import PlanError
from builder.plan.fileset import FileRules, Walked, scan_directory, skipped_notes, walk
from builder.server import paths

_IN_MODIFY = 0x2
_IN_ATTRIB = 0x4
_IN_CLOSE_WRITE = 0x8
_IN_MOVED_FROM = 0x40
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_IN_DELETE = 0x200
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_IN_UNMOUNT = 0x2000
_IN_ISDIR = 0x40000000
_IN_ONLYDIR = 0x01000000
#: Events after which the walk is done again whole: the kernel dropped events, a watched directory
#: went away or moved, or a subdirectory appeared, vanished, moved or changed attributes.
_WALK_AGAIN = _IN_Q_OVERFLOW | _IN_IGNORED | _IN_UNMOUNT | 0x400 | 0x800 | _IN_ISDIR
#: Above this many changed directories the walk is done again whole.
MAX_RELISTED = 64
_EVENT = struct.Struct("iIII")
_IN_DONT_FOLLOW = 0x02000000
#: Every change to a directory's entries or to the files in it (not reads or opens).
MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
    | _IN_DONT_FOLLOW
)


#: At most this share of the user's inotify watches (``fs.inotify.max_user_watches``) is taken,
#: and never more than MAX_WATCHES: editors and other tools of the same user need theirs.  A
#: project with more directories is simply walked when its command comes.
WATCH_SHARE = 4
MAX_WATCHES = 8192


class _Stopped(Exception):
    """The command arrived (or the watch failed) before the walk was done."""


def watch_budget(limits: str = "/proc/sys/fs/inotify/max_user_watches") -> int:
    """How many directories a walk ahead may watch."""
    try:
        with open(limits, encoding="ascii") as handle:
            allowed = int(handle.read().strip())
    except (OSError, ValueError):
        allowed = 8192  # the kernel's old default
    return max(0, min(MAX_WATCHES, allowed // WATCH_SHARE))


class _Inotify:
    """One inotify instance (non-blocking, close-on-exec)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._add.restype = ctypes.c_int
        init = libc.inotify_init1
        init.argtypes = (ctypes.c_int,)
        init.restype = ctypes.c_int
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd = fd

    def watch(self, directory: str) -> int:
        """Watch ``directory``; its watch descriptor (events name it)."""
        wd = self._add(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        return int(wd)

    def quiet(self) -> bool:
        """True when no event (and no overflow) has been queued since the first watch."""
        try:
            return not os.read(self.fd, 4096)
        except BlockingIOError:
            return True

    def changed(self, limit: int) -> set[int] | None:
        """The watch descriptors of the directories whose files changed since the first watch
        (empty: none); None when the walk must be done again whole (see ``_WALK_AGAIN``) or more
        than ``limit`` directories changed."""
        found: set[int] = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            if not data:
                return found
            at = 0
            while at + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, at)
                at += _EVENT.size + length
                if mask & _WALK_AGAIN or wd < 0:
                    return None
                found.add(wd)
                if len(found) > limit:
                    return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class WalkAhead:
    """One walk of ``base`` with ``rules`` made ahead of a command, usable once while it stays true."""

    def __init__(self, base: str, rules: FileRules) -> None:
        self.base = base
        self.rules = rules
        self._inotify: _Inotify | None = None
        self._walked: Walked | None = None
        self._dirs: dict[int, str] = {}  # watch descriptor → project-relative directory ("" the project)
        self._links: list[tuple[str, int, int, int, int]] = []  # found files with several hard links
        self._lock = threading.Lock()

    def run(self, stop: threading.Event, budget: int | None = None) -> bool:
        """Watch and walk; True when the walk is complete (False: stopped, more directories than
        ``budget`` watches (default :func:`watch_budget`), or it could not watch)."""
        left = [watch_budget() if budget is None else budget]
        try:
            inotify = _Inotify()
        except (OSError, AttributeError):  # no inotify here: nothing ahead
            return False

        def scan(directory: str, prefix: str) -> list[os.DirEntry[str]]:
            if stop.is_set() or left[0] <= 0:
                raise _Stopped
            left[0] -= 1
            # before listing: a change after the listing is reported
            self._dirs[inotify.watch(directory)] = prefix.rstrip("/")
            return scan_directory(directory, prefix)

        try:
            walked = walk(self.base, self.rules, scan=scan, links=self._links)
        except (_Stopped, OSError, ValueError, PlanError):
            inotify.close()
            return False
        with self._lock:
            if stop.is_set():
                inotify.close()
                return False
            self._inotify, self._walked = inotify, walked
        return True

    def take(self, base: str, rules: FileRules) -> Walked | None:
        """The walk, if it is for ``base`` and ``rules`` and nothing has changed since; used once."""
        with self._lock:
            inotify, walked = self._inotify, self._walked
            self._inotify = self._walked = None
        if inotify is None or walked is None:
            return None
        try:
            if not paths.prewalk_enabled(os.environ):
                return None
            if base != self.base or rules != self.rules or not self._links_unchanged():
                return None
            changed = inotify.changed(MAX_RELISTED)
            if changed is None:
                return None
            dirs = {self._dirs[wd] for wd in changed if wd in self._dirs}
            if len(dirs) != len(changed):
                return None
            return relisted(base, rules, walked, dirs) if dirs else walked
        except (OSError, ValueError, PlanError):
            return None
        finally:
            inotify.close()

    def _links_unchanged(self) -> bool:
        prefix = self.base + os.sep
        for rel, size, mtime, inode, perms in self._links:
            try:
                st = os.lstat(prefix + rel)
            except OSError:
                return False
            if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode & 0o7777) != (size, mtime, inode, perms):
                return False
        return True


def relisted(base: str, rules: FileRules, walked: Walked, dirs: set[str]) -> Walked:
    """``walked`` with the files directly in ``dirs`` listed again (their subdirectories are unchanged)."""
    found, executable, _notes, skipped = walked
    fresh, fresh_exec, _fresh_notes, fresh_skipped = walk(base, rules, only=sorted(dirs))
    kept = [f for f in found if f[0].rpartition("/")[0] not in dirs]
    kept.extend(fresh)
    kept.sort()
    executable = {p for p in executable if p.rpartition("/")[0] not in dirs} | fresh_exec
    skipped = [p for p in skipped if p.rpartition("/")[0] not in dirs] + fresh_skipped
    return kept, executable, skipped_notes(skipped), skipped


def rules_from_hint(hint: Mapping[str, Any]) -> tuple[str, FileRules] | None:
    """``(project, rules)`` from a hint written by :class:`ServedWalker` (None when it has none)."""
    project, rules = hint.get("project"), hint.get("rules")
    if not isinstance(project, str) or not isinstance(rules, list) or len(rules) != 3:
        return None
    if not all(isinstance(part, list) and all(isinstance(p, str) for p in part) for part in rules):
        return None
    return project, FileRules(tuple(rules[0]), tuple(rules[1]), tuple(rules[2]))


def read_hint(hint_file: paths.HintFile) -> Mapping[str, Any]:
    """The hint the last planning command left ({} when there is none or it is unreadable)."""
    hint = hint_file.read()
    return hint if isinstance(hint, dict) else {}


def hint_for(base: str, rules: FileRules) -> dict[str, Any]:
    """The hint naming ``base`` and ``rules`` (the inverse of :func:`rules_from_hint`)."""
    return {"project": base, "rules": [list(rules.include), list(rules.exclude), list(rules.always_exclude)]}


class Ahead:
    """A walk ahead running in a thread of the spare; :meth:`finish` stops it and joins the thread."""

    def __init__(self, walk_ahead: WalkAhead, stop: threading.Event, thread: threading.Thread) -> None:
        self.walk_ahead = walk_ahead
        self._stop = stop
        self._thread = thread

    def finish(self) -> WalkAhead:
        """Stop walking (at the next directory) and wait for the thread; the walk, complete or not."""
        self._stop.set()
        self._thread.join()
        return self.walk_ahead


def start(hint: Mapping[str, Any]) -> Ahead | None:
    """Walk the hinted project in a thread (None when the hint names none or walking ahead is off)."""
    found = rules_from_hint(hint)
    if found is None or not paths.prewalk_enabled(os.environ):
        return None
    project, rules = found
    ahead = WalkAhead(project, rules)
    stop = threading.Event()
    thread = threading.Thread(target=ahead.run, args=(stop,), name="builder-prewalk", daemon=True)
    thread.start()
    return Ahead(ahead, stop, thread)


class ServedWalker:
    """The :class:`~builder.plan.protocols.Walker` a served command plans with.

    It returns the spare's walk ahead when that walk is for the same project and
    rules and still true, and :func:`builder.plan.fileset.walk` otherwise; and it
    leaves the project and rules in the hint file, for the next spare to walk.
    """

    def __init__(
        self, hint_file: paths.HintFile, ahead: WalkAhead | None = None, last_hint: Mapping[str, Any] | None = None
    ) -> None:
        self._hint_file = hint_file
        self._ahead = ahead
        self._last_hint = dict(last_hint or {})

    def walk(self, base: str, rules: FileRules) -> Walked:
        """What :func:`builder.plan.fileset.walk` returns for ``base`` and ``rules``."""
        self._remember(base, rules)
        ahead, self._ahead = self._ahead, None
        walked = ahead.take(base, rules) if ahead is not None else None
        return walked if walked is not None else walk(base, rules)

    def _remember(self, base: str, rules: FileRules) -> None:
        hint = hint_for(base, rules)
        if hint == self._last_hint:
            return
        self._last_hint = hint
        with contextlib.suppress(OSError):  # written atomically: another child may be reading it
            self._hint_file.write(hint)
