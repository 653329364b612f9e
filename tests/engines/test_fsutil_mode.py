"""Go os.FileMode bits in fsutil Stat.mode, as the daemon sends and expects them."""

from __future__ import annotations

import stat

from hypothesis import given
from hypothesis import strategies as st

from builder.engines.buildkit.session.fsmode import go_mode, is_regular, permissions, posix_mode


def test_examples_from_the_daemon() -> None:
    assert go_mode(stat.S_IFDIR | 0o755) == 0o20000000755
    assert go_mode(stat.S_IFLNK | 0o777) == 0o1000000777
    assert go_mode(stat.S_IFREG | 0o644) == 0o644


def test_special_bits_move_to_go_positions() -> None:
    mode = go_mode(stat.S_IFREG | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | 0o755)
    assert mode == (1 << 23) | (1 << 22) | (1 << 20) | 0o755
    assert is_regular(mode)
    assert permissions(mode) == stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | 0o755


def test_devices_pipes_and_sockets() -> None:
    assert go_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert go_mode(stat.S_IFBLK | 0o600) == (1 << 26) | 0o600
    assert go_mode(stat.S_IFIFO | 0o600) == (1 << 25) | 0o600
    assert go_mode(stat.S_IFSOCK | 0o600) == 0o600  # fsutil drops the socket bit
    assert not is_regular(go_mode(stat.S_IFDIR | 0o755))
    assert not is_regular(go_mode(stat.S_IFLNK | 0o777))


KINDS = (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFBLK, stat.S_IFCHR, stat.S_IFIFO)


@given(kind=st.sampled_from(KINDS), bits=st.integers(min_value=0, max_value=0o7777))
def test_round_trip(kind: int, bits: int) -> None:
    st_mode = kind | bits
    assert posix_mode(go_mode(st_mode)) == st_mode
