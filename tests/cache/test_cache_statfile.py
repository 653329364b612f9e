"""The stat snapshot file format: exact round trips, and damage reads as empty."""

from __future__ import annotations

import json
import os
import sys
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache import statfile

_path = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=20)
_entry = st.tuples(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(0, 2**64 - 1),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=71),
)


def _sample() -> dict[str, statfile.StatEntry]:
    return {"a.py": (1, 2, 3, "blake3:aa"), "pkg/b.py": (40, -5, 2**64 - 1, "blake3:bb"), "ü/ñ.py": (0, 0, 0, "")}


@given(st.dictionaries(_path, _entry, max_size=25), st.floats(0, 4e9, allow_nan=False))
def test_round_trip_is_exact_and_canonical(entries: dict[str, statfile.StatEntry], saved_at: float) -> None:
    blob = statfile.encode(entries, saved_at)
    columns = statfile.decode(blob)
    assert columns.as_dict() == entries
    assert columns.paths == sorted(entries)
    assert columns.saved_at == saved_at
    assert statfile.encode(dict(reversed(list(entries.items()))), saved_at) == blob


def test_non_utf8_file_names_round_trip() -> None:
    name = os.fsdecode(b"caf\xe9.py")  # a Latin-1 name on a UTF-8 system: a surrogate escape
    columns = statfile.decode(statfile.encode({name: (1, 1, 1, "d")}, 0.0))
    assert columns.as_dict() == {name: (1, 1, 1, "d")}


def test_unstorable_entries_are_left_out_not_fatal() -> None:
    entries = {
        "ok": (1, 1, 1, "d"),
        "nul\x00name": (1, 1, 1, "d"),
        "big": (2**64, 1, 1, "d"),
        "neg-inode": (1, 1, -1, "d"),
        "nul-digest": (1, 1, 1, "d\x00"),
    }
    assert statfile.decode(statfile.encode(entries, 0.0)).as_dict() == {"ok": (1, 1, 1, "d")}


def test_empty_table_round_trips() -> None:
    assert statfile.decode(statfile.encode({}, 5.0)) == statfile.Columns("", 0, [], [], [], [], 5.0)


def test_other_byte_order_is_read_correctly() -> None:
    blob = statfile.encode(_sample(), 1.0)
    end = blob.index(b"\n", len(statfile.MAGIC))
    header = json.loads(blob[len(statfile.MAGIC) : end])
    numbers_at = end + 1 + header["paths_bytes"] + header["digests_bytes"]
    n = header["count"]
    swapped = b""
    for i, code in enumerate("qqQ"):
        column = array(code)
        column.frombytes(blob[numbers_at + 8 * n * i : numbers_at + 8 * n * (i + 1)])
        column.byteswap()
        swapped += column.tobytes()
    header["byteorder"] = "big" if sys.byteorder == "little" else "little"
    foreign = (
        statfile.MAGIC
        + json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        + b"\n"
        + blob[end + 1 : numbers_at]
        + swapped
    )
    assert statfile.decode(foreign).as_dict() == _sample()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b + b"x",  # trailing bytes
        lambda b: b[: len(statfile.MAGIC) + 5],  # cut inside the header
        lambda b: b"builder-stat-snapshot/1\n" + b[len(statfile.MAGIC) :],  # another format
        lambda b: b.replace(b'"count":3', b'"count":4'),  # header disagrees with the body
        lambda b: b.replace(b'"count":3', b'"count":-1'),
        lambda b: b.replace(b'"byteorder":"', b'"byteorder":"x'),
        lambda b: b.replace(b"pkg/b.py\x00", b"pkg/b.py\x00\x00"[:9]),  # a separator lost
        lambda b: b[:30] + os.urandom(40) + b[70:],  # garbage inside
        lambda b: os.urandom(len(b)),
        lambda b: b"",
    ],
)
def test_damaged_blobs_decode_as_empty(damage) -> None:  # type: ignore[no-untyped-def]
    blob = statfile.encode(_sample(), 1.0)
    columns = statfile.decode(damage(blob))
    # Either rejected outright, or (garbage that happens to keep the layout) still well-typed.
    assert columns == statfile.EMPTY or (len(columns.paths) == len(columns.digests) == len(columns.sizes) == 3)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    statfile.decode(data)
    statfile.decode(statfile.MAGIC + data)


def test_lone_surrogates_are_left_out() -> None:
    entries = {"ok": (1, 1, 1, "d"), "\ud800": (1, 1, 1, "d"), "x": (1, 1, 1, "\udfff")}
    assert statfile.decode(statfile.encode(entries, 0.0)).as_dict() == {"ok": (1, 1, 1, "d")}
