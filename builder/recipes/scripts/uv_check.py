"""Copy the pinned uv out of the tools mount into a private folder, and keep the copy only if it is the real one.

Run inside the build as ``python -I -S -c <this text> [--keep] TOOLS PRIVATE DIGEST...``.  The tools mount is
a cache mount other steps (and their build backends) could write, so the uv there is never run:
its bytes are copied to ``PRIVATE/uv`` while being hashed, and the copy is kept (mode 0700) when
the digest is one of ``DIGEST...``.  Exit 0: ``PRIVATE/uv`` is a pinned uv.  Exit 1: the tools
folder had no uv (nothing said) or a wrong one (one line on stderr; the folder is removed so the
caller fetches uv again; with ``--keep``, used on the read-only copy a tools run left, nothing is removed).  Standard library only; no single quote in this file (carried in single quotes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys


def copy_hashed(source: str, target: str) -> str:
    """Copy ``source`` (never through a symlink) to a new file ``target``; the sha256 of what was copied."""
    digest = hashlib.sha256()
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o700)
        try:
            while chunk := os.read(src, 1 << 20):
                digest.update(chunk)
                os.write(dst, chunk)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return digest.hexdigest()


def check(tools: str, private: str, digests: set[str], keep: bool = False) -> int:
    source = os.path.join(tools, "bin", "uv")
    target = os.path.join(private, "uv")
    if not os.path.lexists(source):
        return 1
    try:
        found = copy_hashed(source, target)
    except OSError as error:
        found = f"unreadable ({error.strerror})"
    if found in digests:
        return 0
    if os.path.lexists(target):
        os.unlink(target)
    if keep:
        print(f"uv: the checked uv is not the pinned uv (sha256 {found})", file=sys.stderr)
        return 1
    print(f"uv: the uv in the tools cache mount is not the pinned uv (sha256 {found}): removed, fetching it again",
          file=sys.stderr)
    if os.path.islink(tools) or not os.path.isdir(tools):
        os.unlink(tools)
    else:
        shutil.rmtree(tools)
    return 1


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = args[:1] == ["--keep"]
    if keep:
        args = args[1:]
    sys.exit(check(args[0], args[1], set(args[2:]), keep))
