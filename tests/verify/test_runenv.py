"""``--env`` / ``--env-file``: docker's env-file format, and values that never reach a message or a repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.cli import main
from builder.errors import ConfigError
from builder.runenv import RunEnv, parse_env_lines, read_env_file, resolve_run_env
from builder.verify import VerifySettings, container_spec

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


def test_docker_format_comments_blanks_bare_keys_and_equals_in_values() -> None:
    lines = ["# comment", "", "  # indented comment", "A=1", "B=x=y", "C=", "D", "E", "A=2", "F= spaced ", 'G="q"']
    got = parse_env_lines(lines, environ={"D": "from-caller"})
    assert got == {"A": "2", "B": "x=y", "C": "", "D": "from-caller", "F": " spaced ", "G": '"q"'}


@given(st.dictionaries(NAMES, VALUES, max_size=8))
def test_written_pairs_read_back_exactly(values: dict[str, str]) -> None:
    lines = [f"{k}={v}" for k, v in values.items()]
    assert parse_env_lines(lines, environ={}) == values


@given(NAMES, VALUES)
def test_a_bad_line_names_the_file_and_line_but_never_the_value(name: str, value: str) -> None:
    secret = "zz-secret-" + value
    with pytest.raises(ConfigError) as info:
        parse_env_lines(["OK=1", f"=bad{secret}"], environ={}, file="app.env")
    assert info.value.file == "app.env" and info.value.line == 2
    assert secret not in str(info.value) and secret not in (info.value.hint or "")
    with pytest.raises(ConfigError) as info:
        parse_env_lines([f"9{name} x={secret}"], environ={}, file="app.env")
    assert secret not in info.value.message and "app.env:1" in (info.value.key_path or "")


def test_files_then_flags_flags_win_and_bare_flags_pass_the_callers_value(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    first.write_text("A=1\nB=1\n")
    second.write_text("B=2\nC=2\r\n")
    env = resolve_run_env(["C=3", "D", "MISSING"], [first, second], environ={"D": "caller"})
    assert env == {"A": "1", "B": "2", "C": "3", "D": "caller"}
    assert env.container_env() == ["A=1", "B=2", "C=3", "D=caller"]


def test_unreadable_file_and_bad_flag_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the env file"):
        read_env_file(tmp_path / "missing.env")
    (tmp_path / "bin.env").write_bytes(b"A=\xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_env_file(tmp_path / "bin.env")
    with pytest.raises(ConfigError, match="not an environment variable name"):
        resolve_run_env(["1A=2"], environ={})


def test_values_stay_out_of_reprs_but_reach_the_container_spec() -> None:
    env = RunEnv({"TOKEN": "hunter2"})
    assert "hunter2" not in repr(env)
    settings = VerifySettings(port=8000, env=env)
    assert "hunter2" not in repr(settings)
    assert VerifySettings(port=8000) == settings  # the environment is no part of what is probed
    spec = container_spec("img", settings, "none")
    assert spec["Env"] == ["PORT=8000", "TOKEN=hunter2"]


def test_cli_bad_env_file_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("GOOD=topsecretvalue\n=x\n")
    assert main(["verify", "img:latest", "--env-file", str(bad), "--engine", "unix:///nonexistent.sock"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "no variable name" in err and "topsecretvalue" not in err
