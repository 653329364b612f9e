"""``builder cache stats|ls|prune|clear``: output, size/age parsing, refusals, degraded stores."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.cli import main
from builder.cli.commands.cache import format_size, parse_age, parse_size
from cache import StepRecord, open_cache
from cache.store import STORE_DIRNAME


def _record(key: str, *, app: str = "app", used: float = 1_800_000_000.0) -> StepRecord:
    return StepRecord(
        key=key,
        kind="pip",
        step_id="pip",
        app=app,
        engine="buildkit",
        inputs_manifest={"k": key},
        result_digest="sha256:ab",
        duration_s=12.25,
        size_bytes=3 * 1024 * 1024,
        created_at=used,
        last_used_at=used,
    )


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    cache_dir = tmp_path / "cache"
    with open_cache(cache_dir) as c:
        c.steps.record_step(_record("a" * 64, used=1_800_000_000.0))
        c.steps.record_step(_record("b" * 64, app="other", used=1_800_000_100.0))
        c.steps.record_plan("app", {"app": "app", "steps": []})
        c.resolutions.put("lock", {"pins": ["torch==2.1.0"]})
    return cache_dir


@pytest.fixture(autouse=True)
def _no_ambient_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real ~/.cache: the default location points into tmp_path."""
    monkeypatch.delenv("BUILDER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_stats_json(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "stats", "--cache-dir", str(filled), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(filled)
    assert (data["steps"], data["plans"], data["apps"], data["resolutions"]) == (2, 1, 1, 1)
    assert data["layer_bytes"] == 6 * 1024 * 1024
    assert data["entry_bytes"] > 0


def test_stats_text(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "stats", "--cache-dir", str(filled)]) == 0
    out = capsys.readouterr().out
    assert f"cache:        {filled}" in out
    assert "steps:        2 (layers 6.0 MiB)" in out
    assert "plans:        1 of 1 app\n" in out


def test_cache_dir_from_environment(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(filled))
    assert main(["cache", "stats", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2


def test_cache_dir_before_the_action(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "--cache-dir", str(filled), "stats", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2


def test_default_location_is_xdg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "stats", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(tmp_path / "xdg" / "builder")


def test_ls_text_and_json(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "ls", "--cache-dir", str(filled)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "STEP", "APP", "ENGINE", "DURATION", "SIZE", "LAST", "USED"]
    assert lines[1].split()[:6] == ["b" * 12, "pip", "other", "buildkit", "12.2s", "3.0"]  # most recent first
    assert lines[2].startswith("a" * 12)
    assert main(["cache", "ls", "--cache-dir", str(filled), "--format", "json", "--app", "app"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["key"] for r in data] == ["a" * 64]
    assert StepRecord.from_json(data[0]) == _record("a" * 64)


def test_prune_by_size_and_age(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--cache-dir", str(filled), "--max-size", "1G", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 0
    # Step records were last used in 2027; the plan and the resolution were just written.
    assert main(["cache", "prune", "--cache-dir", str(filled), "--older-than", "1h"]) == 0
    assert capsys.readouterr().out.startswith("removed 0 entries")
    assert main(["cache", "prune", "--cache-dir", str(filled), "--max-size", "0"]) == 0
    assert capsys.readouterr().out.startswith("removed 4 entries")
    with open_cache(filled) as c:
        assert c.summary().entry_bytes == 0


def test_prune_needs_a_bound(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--cache-dir", str(filled)]) == 2  # a usage error
    err = capsys.readouterr().err
    assert "error: cache prune needs a bound" in err
    assert "hint: pass --max-size" in err


@pytest.mark.parametrize(("flag", "value"), [("--max-size", "lots"), ("--max-size", "5XB"), ("--older-than", "7 days")])
def test_bad_bounds_are_usage_errors(filled: Path, flag: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["cache", "prune", "--cache-dir", str(filled), flag, value])
    assert info.value.code == 2
    assert f"invalid {'size' if flag == '--max-size' else 'age'} '{value}'" in capsys.readouterr().err


def test_clear_refuses_without_yes_when_not_interactive(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a tty: an answer on stdin is not consent
    assert main(["cache", "clear", "--cache-dir", str(filled)]) == 2  # a usage error: --yes is missing
    assert "refusing to delete everything" in capsys.readouterr().err
    with open_cache(filled) as c:
        assert c.summary().steps == 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "steps_left"), [("y\n", 0, 0), ("n\n", 1, 2), ("\n", 1, 2)])
def test_clear_asks_when_interactive(
    filled: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    code: int,
    steps_left: int,
) -> None:
    monkeypatch.setattr("sys.stdin", _Tty(answer))
    assert main(["cache", "clear", "--cache-dir", str(filled)]) == code
    assert "[y/N]" in capsys.readouterr().err
    with open_cache(filled) as c:
        assert c.summary().steps == steps_left


def test_clear_with_yes(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (filled / f"{STORE_DIRNAME}.damaged-1-1").mkdir()  # an old damaged copy goes too
    assert main(["cache", "clear", "--cache-dir", str(filled), "--yes"]) == 0
    assert capsys.readouterr().out.strip() == f"cleared {filled} (4 entries)"
    assert not (filled / f"{STORE_DIRNAME}.damaged-1-1").exists()
    with open_cache(filled) as c:
        assert c.summary().entry_bytes == 0


def test_unusable_cache_dir_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["cache", "stats", "--cache-dir", str(blocker / "c")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cache directory {blocker / 'c'} is unusable")
    assert "Traceback" not in err


def test_damaged_database_warns_once_and_works(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (filled / STORE_DIRNAME / "cache.db").write_bytes(os.urandom(32 * 1024))
    assert main(["cache", "stats", "--cache-dir", str(filled), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["steps"] == 0
    assert captured.err.count("warning:") == 1
    assert "damaged" in captured.err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        ("1K", 1024),
        ("1kb", 1024),
        ("500MB", 500 * 1024**2),
        ("500 MiB", 500 * 1024**2),
        ("1G", 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2T", 2 * 1024**4),
        ("10B", 10),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "-1G", "1.2.3M", "1 G B", "5XB", "iB", "1iB", "1e3"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), ("1d12h", 129600), ("1.5h", 5400)],
)
def test_parse_age(text: str, expected: float) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "7days", "-1d", "1h-", "1y"])
def test_parse_age_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid age"):
        parse_age(text)


@given(
    st.integers(min_value=0, max_value=2**50), st.sampled_from(["", "B", "K", "KB", "KiB", "M", "MB", "MiB", "G", "GB"])
)
def test_parse_size_scales_by_powers_of_1024(n: int, unit: str) -> None:
    power = {"": 0, "B": 0, "K": 1, "KB": 1, "KiB": 1, "M": 2, "MB": 2, "MiB": 2, "G": 3, "GB": 3}[unit]
    assert parse_size(f"{n}{unit}") == n * 1024**power
    assert parse_size(f"{n}{unit.lower()}") == n * 1024**power


@given(st.text(max_size=12))
def test_parse_size_and_age_only_raise_value_error(text: str) -> None:
    for parse in (parse_size, parse_age):
        try:
            parse(text)
        except ValueError:
            pass


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (3 * 1024**2, "3.0 MiB"), (5 * 1024**4, "5120.0 GiB")],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text
