"""Safe reads of dependency files inside the project directory.

A dependency file named in ``cerebrium.toml`` (or reached through ``-r``/``-c``)
is data from the user's project: it must resolve *inside* the project
directory (no ``..`` escape, no absolute path, no symlink leading out), be a
regular file, and stay within size limits.  Anything else is a
:class:`~builder.errors.DependencyError` raised before a byte is read.

>>> # read_project_file(Path("/app"), "requirements.txt", key_path="cerebrium.dependencies.paths.pip")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from builder.deps._text import WhereKw
from builder.errors import DependencyError

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProjectFile:
    """A dependency file that was read: its project-relative path and text."""

    rel: str  # POSIX, project-relative, normalised ("reqs/base.txt")
    path: Path  # absolute, resolved
    text: str


def project_relative(
    project_dir: Path, rel: str, *, key_path: str, file: str | None = None, line: int | None = None
) -> tuple[str, Path]:
    """Resolve ``rel`` inside ``project_dir``; return (normalised rel, absolute path).

    Raises DependencyError for absolute paths, ``..`` escapes, NULs and
    symlinks that leave the project.  The file itself need not exist.
    """
    where: WhereKw = {"key_path": key_path, "file": file, "line": line}
    if not rel or "\x00" in rel or "\n" in rel or "\r" in rel:
        raise DependencyError(f"invalid path {rel!r}", hint="give a path relative to the project directory", **where)
    if rel.startswith(("/", "\\")) or PurePosixPath(rel).is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        raise DependencyError(
            f"path {rel!r} is absolute; dependency files must be inside the project directory",
            hint="give a path relative to the directory of cerebrium.toml",
            **where,
        )
    try:
        root = project_dir.resolve()
        target = (root / rel).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13, OSError after)
        raise DependencyError(
            f"path {rel!r} cannot be resolved: it is part of a symlink loop ({exc})",
            hint="replace the symlink loop with the real file",
            **where,
        ) from exc
    if not target.is_relative_to(root):
        raise DependencyError(
            f"path {rel!r} leaves the project directory {root}",
            hint="dependency files (and symlinks to them) must stay inside the project directory",
            **where,
        )
    return target.relative_to(root).as_posix() or ".", target


def read_project_file(
    project_dir: Path, rel: str, *, key_path: str, file: str | None = None, line: int | None = None
) -> ProjectFile:
    """Read a UTF-8 text file inside the project, enforcing the size and line limits."""
    norm, target = project_relative(project_dir, rel, key_path=key_path, file=file, line=line)
    where: WhereKw = {"key_path": key_path, "file": file, "line": line}
    try:
        st = target.stat()
    except FileNotFoundError as exc:
        raise DependencyError(
            f"file {norm!r} does not exist", hint="check the path (it is relative to the project directory)", **where
        ) from exc
    except OSError as exc:
        raise DependencyError(f"cannot read {norm!r}: {exc.strerror}", **where) from exc
    if not _is_regular(st.st_mode):
        raise DependencyError(f"{norm!r} is not a regular file", **where)
    if st.st_size > MAX_FILE_BYTES:
        raise DependencyError(
            f"{norm!r} is {st.st_size} bytes; the limit is {MAX_FILE_BYTES} (5 MiB)",
            hint="split the file or remove unused entries",
            **where,
        )
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise DependencyError(f"cannot read {norm!r}: {exc.strerror}", **where) from exc
    if len(data) > MAX_FILE_BYTES:  # grew between stat and read
        raise DependencyError(f"{norm!r} is larger than {MAX_FILE_BYTES} bytes (5 MiB)", **where)
    return ProjectFile(norm, target, _decode(data, norm, key_path))


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _decode(data: bytes, rel: str, key_path: str) -> str:
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise DependencyError(
                f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES} (64 KiB)",
                file=rel,
                line=number,
                key_path=key_path,
            )
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise DependencyError("file contains a NUL byte (is it binary?)", file=rel, line=line, key_path=key_path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DependencyError("file is not valid UTF-8", file=rel, line=line, key_path=key_path) from exc
    return text.replace("\r\n", "\n")


def join_rel(base_rel: str, rel: str) -> str:
    """``rel`` taken relative to the directory of project-relative ``base_rel`` (POSIX, may contain ``..``)."""
    if rel.startswith("/"):
        return rel  # stays absolute so project_relative rejects it by name
    return (PurePosixPath(base_rel).parent / rel).as_posix()
