"""Copy a spare child's shared heap pages ahead of its command (Linux ``MADV_POPULATE_WRITE``).

A forked child shares the server's memory copy-on-write: the first write to a
page (and CPython writes reference counts on every object it touches) costs a
page fault and a 4 KiB copy.  A cached build touches enough of the warmed heap
for that to be several milliseconds of its run.  The spare, which waits idle
for the next command, asks the kernel to make those copies first.

Only private writable mappings that are mostly resident are populated (the
interpreter's heap and arenas, not untouched thread stacks or reserves), in
1 MiB chunks so that a command arriving meanwhile stops the work at once.
``madvise`` runs without the GIL, beside the command's own thread.  Kernels
without ``MADV_POPULATE_WRITE`` (before 5.14) refuse it and nothing happens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

MADV_POPULATE_WRITE = 23
CHUNK = 1 << 20
#: Mappings larger than this are reserves, not heap worth copying.
LARGEST = 256 << 20


def resident_writable_ranges(smaps: Iterable[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of each private writable mapping whose resident size is at least half its size."""
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps:
        head = line.split(" ", 1)[0]
        if "-" in head and not head.endswith(":"):  # a mapping's header: "start-end perms offset dev inode [path]"
            fields = line.split()
            current = None
            if len(fields) >= 2 and fields[1] == "rw-p":
                start, _, end = head.partition("-")
                try:
                    current = (int(start, 16), int(end, 16))
                except ValueError:
                    current = None
        elif current is not None and line.startswith("Rss:"):
            start, end = current
            current = None
            try:
                resident = int(line.split()[1]) * 1024
            except (IndexError, ValueError):
                continue
            if 0 < end - start <= LARGEST and resident * 2 >= end - start:
                ranges.append((start, end))
    return ranges


def populate(ranges: Iterable[tuple[int, int]], stop: threading.Event) -> int:
    """Populate ``ranges`` chunk by chunk until done or ``stop`` is set; the bytes populated."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    done = 0
    for start, end in ranges:
        for chunk in range(start, end, CHUNK):
            if stop.is_set():
                return done
            size = min(CHUNK, end - chunk)
            if madvise(chunk, size, MADV_POPULATE_WRITE) != 0:
                if ctypes.get_errno() == 22:  # EINVAL: this kernel has no MADV_POPULATE_WRITE
                    return done
                break  # this mapping changed under us (unmapped, protection changed): skip it
            done += size
    return done


def start(stop: threading.Event, after: threading.Thread | None = None) -> threading.Thread:
    """Populate this process's heap in a daemon thread once ``after`` (the engine preparation) is done."""

    def run() -> None:
        if after is not None:
            after.join()
        if stop.is_set():
            return
        try:
            with open("/proc/self/smaps", encoding="ascii", errors="replace") as handle:
                ranges = resident_writable_ranges(handle)
        except OSError:
            return
        populate(ranges, stop)

    thread = threading.Thread(target=run, name="builder-prefault", daemon=True)
    thread.start()
    return thread
