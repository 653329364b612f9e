"""``builder validate``: exit codes, text and JSON output, invalid fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.cli import main

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
INVALID = sorted(p.name for p in (FIXTURES / "invalid").iterdir() if p.is_dir())
APPS = sorted(p.name for p in (FIXTURES / "apps").iterdir() if (p / "cerebrium.toml").is_file())


@pytest.mark.parametrize("name", APPS)
def test_apps_are_valid(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "apps" / name)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.strip().endswith("cerebrium.toml: valid")


def test_at_least_fifteen_invalid_fixtures() -> None:
    assert len(INVALID) >= 15


@pytest.mark.golden
@pytest.mark.parametrize("name", INVALID)
def test_invalid_fixture_prints_expected_lines(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run in the fixture's directory so the printed path is ``cerebrium.toml``.

    ``make golden`` (UPDATE_GOLDEN=1) rewrites expected.txt; review the diff.
    """
    case = FIXTURES / "invalid" / name
    monkeypatch.chdir(case)
    code = main(["validate", "."])
    captured = capsys.readouterr()
    if os.environ.get("UPDATE_GOLDEN"):
        (case / "expected.txt").write_text(captured.err, encoding="utf-8")
    assert code == 2
    assert captured.out == ""
    assert captured.err == (case / "expected.txt").read_text(encoding="utf-8")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("name", INVALID)
def test_invalid_fixture_json(name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES / "invalid" / name)
    assert main(["validate", "--format", "json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False
    assert document["errors"]
    for item in document["errors"] + document["warnings"]:
        assert set(item) == {"path", "line", "message"}
    expected = (FIXTURES / "invalid" / name / "expected.txt").read_text().splitlines()
    assert len([line for line in expected if line.startswith("error: ")]) == len(document["errors"])


def test_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FIXTURES / "apps" / "complete"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "errors": [], "warnings": []}


def test_warnings_go_to_stderr_and_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "x"\nusee_uv = true\n')
    (tmp_path / "main.py").write_text("print('x')\n")
    assert main(["validate", str(tmp_path / "cerebrium.toml")]) == 0
    captured = capsys.readouterr()
    assert (
        captured.err
        == f"warning: {tmp_path}/cerebrium.toml:3: cerebrium.deployment.usee_uv: unknown key; ignored (did you mean use_uv?)\n"
    )
    assert captured.out == f"{tmp_path}/cerebrium.toml: valid (1 warning)\n"


def test_warnings_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "x"\nusee_uv = true\n')
    (tmp_path / "main.py").write_text("print('x')\n")
    assert main(["validate", str(tmp_path), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["warnings"] == [
        {"path": "cerebrium.deployment.usee_uv", "line": 3, "message": "unknown key; ignored (did you mean use_uv?)"}
    ]


def test_default_path_is_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert (
        capsys.readouterr().err
        == "error: .: no cerebrium.toml in this directory (create cerebrium.toml with a [cerebrium.deployment] name, or pass the file's path)\n"
    )


@pytest.mark.parametrize("argv", [["--help"], ["validate", "--help"], ["schema", "--help"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage: builder" in capsys.readouterr().out


def test_bad_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate", "--format", "yaml"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
