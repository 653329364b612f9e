"""The spare's prefault: which mappings it picks, and that it populates and stops as asked."""

from __future__ import annotations

import ctypes
import mmap
import os
import threading

from builder.server.prefault import CHUNK, populate, resident_writable_ranges

SMAPS = """\
00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/python3
00652000-00653000 rw-p 00052000 08:02 173521      /usr/bin/python3
Size:                  4 kB
Rss:                   4 kB
01a3b000-01c5c000 rw-p 00000000 00:00 0           [heap]
Size:               2180 kB
Rss:                2000 kB
7f0000000000-7f0000800000 rw-p 00000000 00:00 0
Size:               8192 kB
Rss:                  16 kB
7f1000000000-7f2000000000 rw-p 00000000 00:00 0
Size:           67108864 kB
Rss:            67108864 kB
7f3000000000-7f3000100000 r--p 00000000 00:00 0
Size:               1024 kB
Rss:                1024 kB
"""


def test_only_mostly_resident_private_writable_mappings_are_picked() -> None:
    ranges = resident_writable_ranges(SMAPS.splitlines(keepends=True))
    # the binary's data page and the heap; not the barely touched 8 MiB stack, the 64 GiB reserve
    # (too large to be heap worth copying) or the read-only mapping
    assert ranges == [(0x00652000, 0x00653000), (0x01A3B000, 0x01C5C000)]


def _kernel_has_populate_write() -> bool:
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (5, 14)


def test_populate_fills_a_mapping_and_keeps_its_content() -> None:
    size = 3 * CHUNK
    area = mmap.mmap(-1, size)
    area[:5] = b"hello"
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    try:
        done = populate([(address, address + size)], threading.Event())
        assert done == (size if _kernel_has_populate_write() else 0)
        assert area[:5] == b"hello" and area[size - 1] == 0
    finally:
        del address
        area.close()


def test_populate_stops_when_the_command_arrives() -> None:
    area = mmap.mmap(-1, 2 * CHUNK)
    address = ctypes.addressof(ctypes.c_char.from_buffer(area))
    stop = threading.Event()
    stop.set()
    try:
        assert populate([(address, address + 2 * CHUNK)], stop) == 0
    finally:
        del address
        area.close()
