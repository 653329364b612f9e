"""Where a warm server lives and which code it runs; cheap enough to compute on every start.

Only standard-library modules that the interpreter has loaded anyway (plus
``zlib``) are used here: the client runs this before anything heavy is imported.
"""

from __future__ import annotations

import os
import stat
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs ~4 ms here, and the client imports nothing it need not
    from collections.abc import Mapping

#: ``auto`` (default): use a warm server, start one after a cold run; ``off``: always run in-process.
ENV_MODE = "BUILDER_SERVER"
#: Directory for sockets, locks and logs (default ``$XDG_RUNTIME_DIR/builder``, else ``/tmp/builder-<uid>``).
ENV_DIR = "BUILDER_SERVER_DIR"
#: Seconds a server waits for work before it exits (default 600).
ENV_IDLE = "BUILDER_SERVER_IDLE"
DEFAULT_IDLE = 600.0
#: ``off`` stops the spare walking the last project ahead (see :mod:`builder.server.prewalk`).
ENV_PREWALK = "BUILDER_PREWALK"
_OFF = ("0", "off", "no", "false", "never")
# Environment variables that change what imported modules do at import time: part of the fingerprint.
_IMPORT_ENV = ("PYTHON", "GRPC_")


def enabled(environ: Mapping[str, str]) -> bool:
    """True unless ``$BUILDER_SERVER`` turns the warm server off."""
    return environ.get(ENV_MODE, "auto").strip().lower() not in _OFF


def prewalk_enabled(environ: Mapping[str, str]) -> bool:
    """True unless ``$BUILDER_PREWALK`` turns the spare's walk ahead off (see :mod:`builder.server.prewalk`)."""
    return environ.get(ENV_PREWALK, "auto").strip().lower() not in _OFF


def idle_seconds(environ: Mapping[str, str]) -> float:
    """The idle timeout from ``$BUILDER_SERVER_IDLE`` (seconds; bad values fall back to the default)."""
    try:
        value = float(environ.get(ENV_IDLE, DEFAULT_IDLE))
    except ValueError:
        return DEFAULT_IDLE
    return value if value > 0 else DEFAULT_IDLE


class UnsafeDir(Exception):
    """The server directory cannot be trusted (the message says why, in one line)."""


class MissingDir(UnsafeDir):
    """The server directory (or one of its ancestors) does not exist, and was not to be created."""


class ServerDir:
    """The opened, verified server directory: every file in it is reached through this descriptor.

    Names are single path components; files are opened with ``O_NOFOLLOW``, so a
    swapped directory or a planted symlink can never redirect a server's lock,
    log, hint or socket elsewhere.  Unix sockets are addressed through
    ``/proc/self/fd/N/NAME``, which resolves through the descriptor, not the path.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def open(self, name: str, flags: int, mode: int = 0o600) -> int:
        """``openat`` of ``name`` in the directory, never following a symlink (close-on-exec)."""
        return os.open(_component(name), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.fd)

    def read_bytes(self, name: str, limit: int = 1 << 20) -> bytes:
        """The content of the regular file ``name`` (at most ``limit`` bytes); OSError when it is not one."""
        fd = self.open(name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{name} is not a regular file")
            return os.read(fd, limit)
        finally:
            os.close(fd)

    def write_atomic(self, name: str, data: bytes) -> None:
        """Replace ``name`` with ``data`` (a private temporary file, then a rename: readers see old or new)."""
        temporary = f".{_component(name)}.{os.getpid()}.tmp"
        self.unlink(temporary)  # left by a process that died with our pid
        fd = self.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        """Remove ``name`` (a missing file is fine)."""
        try:
            os.unlink(_component(name), dir_fd=self.fd)
        except FileNotFoundError:
            pass

    def mtime(self, name: str) -> float:
        """Modification time of ``name`` without following a symlink (0.0 when missing)."""
        try:
            return os.stat(_component(name), dir_fd=self.fd, follow_symlinks=False).st_mtime
        except OSError:
            return 0.0

    def names(self) -> list[str]:
        """The entries of the directory, sorted."""
        return sorted(os.listdir(self.fd))

    def address(self, name: str) -> str:
        """A Unix socket address for ``name`` that resolves through the directory descriptor."""
        return f"/proc/self/fd/{self.fd}/{_component(name)}"

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HintFile:
    """The JSON hint a served build leaves for the next spare (engine, cache, project), in the server directory."""

    def __init__(self, directory: ServerDir, name: str) -> None:
        self.directory = directory
        self.name = name

    def read(self) -> object:
        """The hint (None when it is missing, not a regular file, or not JSON)."""
        import json

        try:
            return json.loads(self.directory.read_bytes(self.name))
        except (OSError, ValueError):
            return None

    def write(self, hint: object) -> None:
        """Replace the hint atomically (another child may be reading it)."""
        import json

        self.directory.write_atomic(self.name, json.dumps(hint).encode("utf-8"))


def _component(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a file name: {name!r}")
    return name


def default_dir(environ: Mapping[str, str]) -> str:
    """The server directory the environment names (absolute; nothing is checked or created)."""
    base = environ.get(ENV_DIR)
    if not base:
        runtime = environ.get("XDG_RUNTIME_DIR")
        base = os.path.join(runtime, "builder") if runtime else f"/tmp/builder-{os.getuid()}"
    return os.path.abspath(base)  # the server runs from /


def open_dir(path: str, *, create: bool = True) -> ServerDir:
    """Open ``path`` as the server directory, or raise :class:`UnsafeDir` saying why not.

    Every directory above it must be owned by root or this user and writable by
    nobody else unless it is sticky (like ``/tmp``): then no other user can swap
    any of them, so checking them by path is enough.  The directory itself must
    be a real directory owned by this user with no group or other permissions;
    it is opened once (``O_NOFOLLOW``) and everything in it is reached through
    that descriptor.  Symlinks on the way are resolved once, and the resolved
    path is checked the same way.
    """
    uid = os.getuid()
    try:
        return _open_checked(os.path.abspath(path), uid, create)
    except _Symlink:
        try:
            return _open_checked(os.path.realpath(path), uid, create)
        except _Symlink as exc:
            raise UnsafeDir(f"{path} changed while it was checked ({exc})") from None


class _Symlink(Exception):
    pass


def _open_checked(real: str, uid: int, create: bool) -> ServerDir:
    parts = [p for p in real.split("/") if p]
    if not parts:
        raise UnsafeDir(f"{real} is the root directory")
    where = "/"
    for part in parts[:-1]:
        _check_ancestor(where, uid)
        where = os.path.join(where, part)
    _check_ancestor(where, uid)
    if create:
        try:
            os.mkdir(real, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeDir(f"{real} cannot be created ({exc.strerror or exc})") from None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingDir(f"{real} does not exist") from None
    except OSError as exc:
        if os.path.islink(real):
            raise _Symlink(real) from None
        raise UnsafeDir(f"{real} cannot be opened as a private directory ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if info.st_uid != uid or info.st_mode & 0o077:
        os.close(fd)
        raise UnsafeDir(
            f"{real} must be owned by you (uid {uid}) with mode 0700 "
            f"(it is owned by uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})"
        )
    return ServerDir(real, fd)


def _check_ancestor(where: str, uid: int) -> None:
    try:
        info = os.lstat(where)
    except FileNotFoundError:
        raise MissingDir(f"{where} does not exist") from None
    except OSError as exc:
        raise UnsafeDir(f"{where} cannot be checked ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise _Symlink(where)
    if info.st_uid not in (0, uid):
        raise UnsafeDir(f"{where} belongs to uid {info.st_uid}, who could replace the server directory")
    writable = info.st_mode & 0o002 or (info.st_mode & 0o020 and info.st_gid != os.getgid())
    if writable and not info.st_mode & stat.S_ISVTX:
        raise UnsafeDir(
            f"{where} is writable by other users (mode {stat.S_IMODE(info.st_mode):04o}, not sticky), "
            "who could replace the server directory"
        )


def server_dir(environ: Mapping[str, str], *, create: bool = True) -> ServerDir | None:
    """The opened server directory, or None when it is missing (``create=False``) or not safe (see :func:`open_dir`)."""
    try:
        return open_dir(default_dir(environ), create=create)
    except UnsafeDir:
        return None


def check(environ: Mapping[str, str]) -> str | None:
    """Why the server directory the environment names is not safe to use (one line); None when it is
    safe or merely does not exist yet."""
    try:
        open_dir(default_dir(environ), create=False).close()
    except MissingDir:
        return None
    except UnsafeDir as exc:
        return str(exc)
    return None


def fingerprint(environ: Mapping[str, str]) -> str:
    """A digest of everything a server's imported code depends on.

    The interpreter, its flags and module path, the modification times of every
    ``sys.path`` directory (installing or removing a package touches them) and
    of every source file of the ``builder`` and ``cache`` packages, and the
    environment variables that modules read at import time.  A server only
    serves clients with its own fingerprint, so an edited or upgraded builder
    never runs stale code.
    """
    # sys.path[0] is the script's directory or (for ``python -m``) the working directory: the
    # server runs with ``-P`` and never imports from it, so it is not part of the code identity.
    path = sys.path[1:]
    flags = sys.flags
    parts: list[str] = [
        sys.executable,
        sys.version,
        repr(path),
        repr((flags.optimize, flags.isolated, flags.no_site, flags.utf8_mode, flags.dev_mode)),
    ]
    for entry in path:
        try:
            parts.append(f"{entry}:{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}:-")
    for root in _package_dirs():
        parts.extend(_tree_stamps(root))
    parts.extend(f"{k}={v}" for k, v in sorted(environ.items()) if k.startswith(_IMPORT_ENV))
    data = "\0".join(parts).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}{len(data) & 0xFFFF:04x}"


def socket_name(print_: str) -> str:
    """The socket of the server with fingerprint ``print_`` (a name in the server directory)."""
    return f"s-{print_}.sock"


def lock_name(print_: str) -> str:
    """The lock file a running server holds (it contains the server's pid)."""
    return f"s-{print_}.lock"


def log_name(print_: str) -> str:
    """The server's log (start, requests, exit), for ``builder server status``."""
    return f"s-{print_}.log"


def socket_path(directory: str, print_: str) -> str:
    """The socket's path (for messages; connect through :meth:`ServerDir.address`)."""
    return os.path.join(directory, socket_name(print_))


def _package_dirs() -> list[str]:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../builder
    dirs = [here]
    sibling = os.path.join(os.path.dirname(here), "cache")
    if os.path.isfile(os.path.join(sibling, "__init__.py")):
        dirs.append(sibling)
    return dirs


def _tree_stamps(root: str) -> list[str]:
    stamps: list[str] = []
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith((".py", ".so", ".pyd", ".json")):
                try:
                    info = entry.stat(follow_symlinks=True)
                except OSError:
                    continue
                stamps.append(f"{entry.path}:{info.st_mtime_ns}:{info.st_size}")
    stamps.sort()
    return stamps
