"""BuildLog: one JSON line per finished build, appended cheaply and read back fast.

``builder report`` aggregates thousands of builds at once, so builds are not
diskcache entries (one SQLite lookup each) but lines of one append-only file
beside the store, ``ROOT/builds.v1.jsonl``.  A record is a JSON object with
``"schema": BUILD_SCHEMA``, ``"app"`` and ``"at"`` (seconds since the epoch);
the rest is the caller's (builder writes the fields its report reads, see
``builder.reports.record``).

Appending takes an ``flock`` and writes the line with one ``write`` on an
``O_APPEND`` descriptor, so concurrent builds never interleave lines.  When
the file passes :data:`MAX_BYTES` the oldest half is dropped.  Unreadable lines
(a torn write after a crash, another schema) are skipped when reading.

Example::

    log = BuildLog(root)
    log.append({"app": "my-app", "at": time.time(), "steps": []})
    [r["app"] for r in log.read(app="my-app")]
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cache.records import dumps

BUILD_SCHEMA = 1
FILE_NAME = f"builds.v{BUILD_SCHEMA}.jsonl"
MAX_BYTES = 256 * 1024 * 1024
"""Bound on the log; at ~1.5 kB a build this keeps well over 100,000 builds."""


class BuildLog:
    """The build records of one cache directory."""

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> None:
        self.path = Path(root) / FILE_NAME
        self._max_bytes = max_bytes

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one build (``app`` and ``at`` required); OSError when the file cannot be written."""
        if not isinstance(record.get("app"), str) or not isinstance(record.get("at"), (int, float)):
            raise ValueError("a build record needs a string 'app' and a numeric 'at'")
        line = dumps({**record, "schema": BUILD_SCHEMA}) + b"\n"
        fd = self._locked()
        try:
            os.write(fd, line)
            if os.fstat(fd).st_size > self._max_bytes:
                self._drop_oldest_half()
        finally:
            os.close(fd)  # closing releases the lock

    def _locked(self) -> int:
        """An O_APPEND descriptor of the current file, flock'ed (the file may be replaced while we wait)."""
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def read(self, *, app: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Every readable build (of ``app``, at or after ``since``), oldest first."""
        return list(self.iter(app=app, since=since))

    def iter(self, *, app: str | None = None, since: float | None = None) -> Iterator[dict[str, Any]]:
        """:meth:`read` as an iterator."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        # A cheap substring test skips other apps' lines without parsing them.
        needle = dumps({"app": app})[1:-1] if app is not None else None
        loads = json.loads
        for line in data.splitlines():
            if needle is not None and needle not in line:
                continue
            try:
                record = loads(line)
            except ValueError:
                continue
            if not _valid(record):
                continue
            if (app is not None and record["app"] != app) or (since is not None and record["at"] < since):
                continue
            yield record

    def last(
        self, app: str, *, engine: str | None = None, having: str | None = None, scan_bytes: int = 1024 * 1024
    ) -> dict[str, Any] | None:
        """The newest readable build of ``app`` (on ``engine``, with field ``having`` set) in the log's last
        ``scan_bytes`` (a tail read)."""
        needle = dumps({"app": app})[1:-1]
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - scan_bytes))
                tail = f.read()
        except FileNotFoundError:
            return None
        for line in reversed(tail.splitlines()):
            if needle not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if (
                _valid(record)
                and record["app"] == app
                and (engine is None or record.get("engine") == engine)
                and (having is None or record.get(having) is not None)
            ):
                return dict(record)
        return None

    def clear(self) -> int:
        """Forget every build; the number of lines removed."""
        try:
            count = self.path.read_bytes().count(b"\n")
            self.path.unlink()
        except FileNotFoundError:
            return 0
        return count

    def _drop_oldest_half(self) -> None:
        data = self.path.read_bytes()
        cut = data.find(b"\n", len(data) // 2)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(data[cut + 1 :] if cut >= 0 else b"")
        with contextlib.suppress(OSError):
            os.replace(tmp, self.path)


def _valid(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("schema") == BUILD_SCHEMA
        and isinstance(record.get("app"), str)
        and isinstance(record.get("at"), (int, float))
        and isinstance(record.get("steps", []), list)
    )
