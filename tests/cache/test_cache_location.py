"""Where the cache lives: argument > BUILDER_CACHE_DIR > XDG_CACHE_HOME > ~/.cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache import resolve_cache_dir


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        ("/explicit", {"BUILDER_CACHE_DIR": "/env", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/explicit"),
        (None, {"BUILDER_CACHE_DIR": "/env", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/env"),
        (None, {"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/builder"),
        (None, {"HOME": "/home/u"}, "/home/u/.cache/builder"),
        # Empty values count as unset.
        ("", {"BUILDER_CACHE_DIR": "", "XDG_CACHE_HOME": "", "HOME": "/home/u"}, "/home/u/.cache/builder"),
        # A relative XDG_CACHE_HOME is invalid per the XDG spec and ignored.
        (None, {"XDG_CACHE_HOME": "rel/cache", "HOME": "/home/u"}, "/home/u/.cache/builder"),
        ("~/c", {"HOME": "/home/u"}, "/home/u/c"),
        (None, {"BUILDER_CACHE_DIR": "~/c", "HOME": "/home/u"}, "/home/u/c"),
        ("/a/../b/./c", {}, "/b/c"),
    ],
)
def test_resolution_order(arg: str | None, env: dict[str, str], expected: str) -> None:
    assert resolve_cache_dir(arg, environ=env) == Path(expected)


def test_relative_argument_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_cache_dir("rel", environ={}) == tmp_path / "rel"


def test_default_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILDER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert resolve_cache_dir() == tmp_path / "builder"


def test_no_home_at_all_is_cache_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from cache import CacheUnavailable, open_cache

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    for name in ("BUILDER_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(CacheUnavailable, match="BUILDER_CACHE_DIR"):
        open_cache()
