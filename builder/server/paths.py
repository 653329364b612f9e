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


def server_dir(environ: Mapping[str, str], *, create: bool = True) -> str | None:
    """Our private directory for server sockets, or None when it is missing or not safe to use.

    Safe means: a real directory (not a symlink), owned by this user, with no
    group or other permissions, so nobody else can reach or replace the sockets.
    """
    uid = os.getuid()
    base = environ.get(ENV_DIR)
    if not base:
        runtime = environ.get("XDG_RUNTIME_DIR")
        base = os.path.join(runtime, "builder") if runtime else f"/tmp/builder-{uid}"
    base = os.path.abspath(base)  # the server runs from /
    try:
        if create:
            try:
                os.mkdir(base, 0o700)
            except FileExistsError:
                pass
        info = os.lstat(base)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        return None
    return base


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
    parts: list[str] = [sys.executable, sys.version, repr(path),
                        repr((flags.optimize, flags.isolated, flags.no_site, flags.utf8_mode, flags.dev_mode))]
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


def socket_path(directory: str, print_: str) -> str:
    """The socket of the server with fingerprint ``print_``."""
    return os.path.join(directory, f"s-{print_}.sock")


def lock_path(directory: str, print_: str) -> str:
    """The lock file a running server holds (it contains the server's pid)."""
    return os.path.join(directory, f"s-{print_}.lock")


def log_path(directory: str, print_: str) -> str:
    """The server's log (start, requests, exit), for ``builder server status``."""
    return os.path.join(directory, f"s-{print_}.log")


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
