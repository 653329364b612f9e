"""Keep in a tools folder only the files whose sha256 is pinned: everything else is removed unopened by Python.

Run inside the build as ``python -I -S -c <this text> FOLDER DIGEST...`` by a tools run.  A file whose
digest is not one of ``DIGEST...``, a symlink, a folder or anything else in FOLDER is removed, with one
line saying so; what stays is only ever pinned bytes.  Standard library only; no single quote in this
file (carried in single quotes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys


def digest_of(path: str) -> str:
    """The sha256 of the regular file ``path`` (never through a symlink)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()


def check(folder: str, digests: set[str]) -> int:
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            found = "a folder"
            shutil.rmtree(path)
        else:
            try:
                found = "sha256 " + digest_of(path) if not os.path.islink(path) else "a symlink"
            except OSError as error:
                found = f"unreadable ({error.strerror})"
            if found.removeprefix("sha256 ") in digests:
                continue
            os.unlink(path)
        print(f"tools: {name} in the tools cache mount is not a pinned file ({found}): removed")
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1], set(sys.argv[2:])))
