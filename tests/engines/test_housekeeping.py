"""engine du / prune: size and duration parsing, totals the way docker system df counts them, step names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.engines.buildkit.housekeeping import (
    DiskUsage,
    UsageRecord,
    human,
    newest_use,
    parse_duration,
    parse_size,
)


def _r(
    size: int,
    *,
    kind: str = "regular",
    shared: bool = False,
    in_use: bool = False,
    desc: str = "",
    used: float | None = None,
) -> UsageRecord:
    return UsageRecord(
        id=f"r{size}{kind}{shared}",
        size=size,
        record_type=kind,
        description=desc,
        in_use=in_use,
        shared=shared,
        last_used_at=used,
        usage_count=1,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("10GB", 10 * 1000**3), ("512MiB", 512 * 1024**2), ("1.5kb", 1500), ("7 B", 7), ("2g", 2 * 1000**3)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "-1", "5XB", "1e3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", 86400), ("7d", 604800), ("1h30m", 5400), ("90s", 90), ("1w", 604800), ("250ms", 0.25)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "24", "h", "1h 30m", "-1h", "1y"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h", "d"]))
def test_duration_round_trip(n: int, unit: str) -> None:
    assert parse_duration(f"{n}{unit}") == n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def test_totals_leave_shared_records_out_and_in_use_is_not_reclaimable() -> None:
    usage = DiskUsage((_r(100), _r(50, shared=True), _r(30, in_use=True), _r(5, kind="source.local")))
    assert usage.total == 135
    assert usage.reclaimable == 105
    assert usage.by_type() == {"regular": (2, 130), "source.local": (1, 5)}
    assert [r.size for r in usage.largest(2)] == [100, 50]
    assert usage.to_json()["total"] == 135


def test_a_record_names_its_builder_step_only_when_the_description_says_so() -> None:
    assert _r(1, desc="[files] copy 2 project files → /app").step == "files"
    assert _r(1, desc="[pre_build] run").step == "pre_build"
    assert _r(1, desc="mount / from exec /bin/sh -c set -eu").step is None


def test_human_and_newest_use() -> None:
    assert [human(n) for n in (0, 999, 1000, 175155416, 3 * 10**12)] == ["0B", "999B", "1.0kB", "175.2MB", "3.0TB"]
    assert newest_use([_r(1, used=5.0), _r(2), _r(3, used=9.0)]) == 9.0
    assert newest_use([_r(1)]) is None
