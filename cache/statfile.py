"""The on-disk format of a stat snapshot: fast to load for 100,000 files.

A snapshot is the (relative path → size, mtime_ns, inode, digest) table of
one root.  Loading it is on the path of every warm ``builder plan``, so it
is stored column by column and parsed without a JSON array of 100,000
strings (that alone would cost more than the rest of the lookup)::

    b"builder-stat-snapshot/2\\n"
    {"byteorder", "count", "digests_bytes", "paths_bytes", "saved_at"}\\n   (canonical JSON, one line)
    paths, UTF-8 (surrogateescape), NUL-separated, sorted       (paths_bytes)
    digests, UTF-8, NUL-separated, in path order                 (digests_bytes)
    sizes   int64 × count, mtimes int64 × count, inodes uint64 × count   (native order, named in the header)

NUL never occurs in a POSIX path, so it is a safe separator.  Anything that
does not parse exactly (truncation, garbage, another format) decodes to an
empty table: a damaged snapshot is a cache miss, never an error.
"""

from __future__ import annotations

import gc
import sys
from array import array
from collections.abc import Mapping

from cache.errors import RecordError
from cache.records import dumps, loads

MAGIC = b"builder-stat-snapshot/2\n"
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)

StatEntry = tuple[int, int, int, str]
"""(size, mtime_ns, inode, digest)."""


class Columns:
    """A decoded snapshot, column by column, sorted by path.

    The paths stay one NUL-separated string until a list is asked for: the
    warm-walk check compares whole strings (see ``full_paths``).
    """

    __slots__ = ("_paths", "_text", "count", "digests", "inodes", "mtimes", "saved_at", "sizes")

    def __init__(
        self,
        text: str,
        count: int,
        sizes: list[int],
        mtimes: list[int],
        inodes: list[int],
        digests: list[str],
        saved_at: float,
    ) -> None:
        self._text = text
        self._paths: list[str] | None = None
        self.count = count
        self.sizes = sizes
        self.mtimes = mtimes
        self.inodes = inodes
        self.digests = digests
        self.saved_at = saved_at

    @property
    def paths(self) -> list[str]:
        """The relative paths, sorted."""
        if self._paths is None:
            self._paths = self._text.split("\0") if self.count else []
        return self._paths

    def full_paths(self, prefix: str) -> str:
        """NUL-joined ``prefix + path`` of every entry, built with one C-level replace."""
        if not self.count:
            return ""
        return prefix + self._text.replace("\0", "\0" + prefix) if prefix else self._text

    def as_dict(self) -> dict[str, StatEntry]:
        """{path: (size, mtime_ns, inode, digest)}."""
        with gc_paused():
            return dict(
                zip(self.paths, zip(self.sizes, self.mtimes, self.inodes, self.digests, strict=True), strict=True)
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Columns):
            return NotImplemented
        return (self._text, self.count, self.sizes, self.mtimes, self.inodes, self.digests, self.saved_at) == (
            other._text,
            other.count,
            other.sizes,
            other.mtimes,
            other.inodes,
            other.digests,
            other.saved_at,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable lists inside

    def __repr__(self) -> str:
        return f"Columns(count={self.count}, saved_at={self.saved_at})"


EMPTY = Columns("", 0, [], [], [], [], 0.0)


class gc_paused:
    """Building 100,000 tuples would trigger many useless cyclic-GC passes (none of this is cyclic)."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


def _storable(path: str, entry: StatEntry) -> bool:
    size, mtime, inode, digest = entry
    return (
        "\0" not in path
        and isinstance(digest, str)
        and "\0" not in digest
        and all(isinstance(v, int) for v in (size, mtime, inode))
        and _INT64[0] <= size <= _INT64[1]
        and _INT64[0] <= mtime <= _INT64[1]
        and _UINT64[0] <= inode <= _UINT64[1]
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return False
    return True


def encode(entries: Mapping[str, StatEntry], saved_at: float) -> bytes:
    """The snapshot bytes of ``entries`` (sorted by path; unstorable entries are left out)."""
    paths = sorted(p for p, e in entries.items() if _storable(p, e))
    rows = [entries[p] for p in paths]
    try:
        path_bytes = "\0".join(paths).encode("utf-8", "surrogateescape")
        digest_bytes = "\0".join(r[3] for r in rows).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return encode({p: e for p, e in zip(paths, rows, strict=True) if _encodable(p) and _encodable(e[3])}, saved_at)
    header = dumps(
        {
            "byteorder": sys.byteorder,
            "count": len(paths),
            "digests_bytes": len(digest_bytes),
            "paths_bytes": len(path_bytes),
            "saved_at": saved_at,
        }
    )
    numbers = (
        array("q", [r[0] for r in rows]).tobytes()
        + array("q", [r[1] for r in rows]).tobytes()
        + array("Q", [r[2] for r in rows]).tobytes()
    )
    return MAGIC + header + b"\n" + path_bytes + digest_bytes + numbers


def decode(raw: bytes | None) -> Columns:
    """The columns of snapshot bytes; ``EMPTY`` when missing or not exactly well-formed."""
    if raw is None or not raw.startswith(MAGIC):
        return EMPTY
    end = raw.find(b"\n", len(MAGIC))
    if end < 0:
        return EMPTY
    try:
        header = loads(raw[len(MAGIC) : end])
    except RecordError:
        return EMPTY
    layout = _layout(header, len(raw) - end - 1)
    if layout is None:
        return EMPTY
    count, paths_len, digests_len, saved_at, swap = layout
    body = memoryview(raw)[end + 1 :]
    with gc_paused():
        text = _text(bytes(body[:paths_len]), count)
        digests = _split(bytes(body[paths_len : paths_len + digests_len]), count)
        if text is None or digests is None:
            return EMPTY
        at = paths_len + digests_len
        columns = []
        for code in ("q", "q", "Q"):
            column = array(code)
            column.frombytes(body[at : at + 8 * count])
            if swap:
                column.byteswap()
            columns.append(column.tolist())
            at += 8 * count
    return Columns(text, count, columns[0], columns[1], columns[2], digests, saved_at)


def _layout(header: object, body_len: int) -> tuple[int, int, int, float, bool] | None:
    if not isinstance(header, dict):
        return None
    count, paths_len, digests_len = header.get("count"), header.get("paths_bytes"), header.get("digests_bytes")
    saved_at, order = header.get("saved_at"), header.get("byteorder")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (count, paths_len, digests_len)):
        return None
    if not isinstance(saved_at, int | float) or isinstance(saved_at, bool) or order not in ("little", "big"):
        return None
    assert isinstance(count, int) and isinstance(paths_len, int) and isinstance(digests_len, int)
    if array("q").itemsize != 8 or body_len != paths_len + digests_len + 24 * count:
        return None
    return count, paths_len, digests_len, float(saved_at), order != sys.byteorder


def _text(data: bytes, count: int) -> str | None:
    """The NUL-joined paths, when they are exactly ``count``."""
    text = data.decode("utf-8", "surrogateescape")
    if count == 0:
        return "" if not text else None
    return text if text.count("\0") == count - 1 else None


def _split(data: bytes, count: int) -> list[str] | None:
    if count == 0:
        return [] if not data else None
    items = data.decode("utf-8", "surrogateescape").split("\0")
    return items if len(items) == count else None
