"""Go ``os.FileMode`` bits, which fsutil puts in ``Stat.mode`` instead of POSIX ``st_mode``.

The low nine bits are the permissions in both worlds; the file type and the
setuid/setgid/sticky bits live in different places::

    >>> oct(go_mode(stat.S_IFDIR | 0o755))
    '0o20000000755'
    >>> stat.S_ISLNK(posix_mode(go_mode(stat.S_IFLNK | 0o777)))
    True
"""

from __future__ import annotations

import stat

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_NAMED_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHAR_DEVICE = 1 << 21
GO_STICKY = 1 << 20
GO_IRREGULAR = 1 << 19

#: Every bit that marks an entry as something other than a regular file.
GO_TYPE_MASK = GO_DIR | GO_SYMLINK | GO_DEVICE | GO_NAMED_PIPE | GO_SOCKET | GO_CHAR_DEVICE | GO_IRREGULAR

_SPECIAL = ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID), (stat.S_ISVTX, GO_STICKY))


def go_mode(st_mode: int) -> int:
    """Convert a POSIX ``st_mode`` into Go FileMode bits (sockets lose their type bit, as in fsutil)."""
    mode = st_mode & 0o777
    for posix_bit, go_bit in _SPECIAL:
        if st_mode & posix_bit:
            mode |= go_bit
    kind = stat.S_IFMT(st_mode)
    if kind == stat.S_IFDIR:
        mode |= GO_DIR
    elif kind == stat.S_IFLNK:
        mode |= GO_SYMLINK
    elif kind == stat.S_IFBLK:
        mode |= GO_DEVICE
    elif kind == stat.S_IFCHR:
        mode |= GO_DEVICE | GO_CHAR_DEVICE
    elif kind == stat.S_IFIFO:
        mode |= GO_NAMED_PIPE
    return mode


def posix_mode(mode: int) -> int:
    """Convert Go FileMode bits back into a POSIX ``st_mode``."""
    result = mode & 0o777
    for posix_bit, go_bit in _SPECIAL:
        if mode & go_bit:
            result |= posix_bit
    if mode & GO_DIR:
        result |= stat.S_IFDIR
    elif mode & GO_SYMLINK:
        result |= stat.S_IFLNK
    elif mode & GO_DEVICE:
        result |= stat.S_IFCHR if mode & GO_CHAR_DEVICE else stat.S_IFBLK
    elif mode & GO_NAMED_PIPE:
        result |= stat.S_IFIFO
    elif mode & GO_SOCKET:
        result |= stat.S_IFSOCK
    else:
        result |= stat.S_IFREG
    return result


def is_regular(mode: int) -> bool:
    """True when Go FileMode bits describe a regular file."""
    return not mode & GO_TYPE_MASK


def permissions(mode: int) -> int:
    """The chmod-able bits (rwx for all, setuid, setgid, sticky) of Go FileMode bits, as POSIX bits."""
    return stat.S_IMODE(posix_mode(mode))
