"""File-level problems: each one clear error line, never an exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.config import load, load_config
from builder.config.read import MAX_BYTES
from builder.errors import ConfigError
from tests.privileges import run_python, traversable_tmp_dir


def only_error(path: str | Path) -> str:
    result = load(path)
    assert result.config is None
    assert len(result.diagnostics) == 1
    diag = result.diagnostics[0]
    assert diag.level == "error"
    return diag.format()


def test_missing_file(tmp_path: Path) -> None:
    assert only_error(tmp_path / "nope.toml").endswith(
        "nope.toml: file not found (pass the path of cerebrium.toml or of its directory)"
    )


def test_directory_without_config(tmp_path: Path) -> None:
    assert (
        only_error(tmp_path)
        == f"{tmp_path}: no cerebrium.toml in this directory (create cerebrium.toml with a [cerebrium.deployment] name, or pass the file's path)"
    )


def test_directory_named_cerebrium_toml(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "cerebrium.toml").mkdir()
    assert "is a directory, not a file" in only_error(tmp_path / "x")


@pytest.mark.parametrize("content", [b"", b"   \n\n\t", b"\n"])
def test_empty(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "cerebrium.toml").write_bytes(content)
    assert only_error(tmp_path).endswith(
        'cerebrium.toml: file is empty (add [cerebrium.deployment] with name = "my-app")'
    )


def test_binary(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_bytes(b"\x7fELF\x00\x01\x02")
    assert "file is binary (it contains NUL bytes)" in only_error(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_bytes(b'[cerebrium.deployment]\nname = "caf\xe9"\n')
    message = only_error(tmp_path)
    assert "cerebrium.toml:2: file is not UTF-8 text (invalid byte 0xe9 at line 2)" in message


def test_too_large(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    assert "file is too large" in only_error(tmp_path)


def test_exactly_one_mebibyte_is_read(tmp_path: Path) -> None:
    head = b'[cerebrium.deployment]\nname = "big"\n'
    (tmp_path / "cerebrium.toml").write_bytes(head + b"#" * (MAX_BYTES - len(head) - 1) + b"\n")
    assert load(tmp_path).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[cerebrium.deployment]\nname "x"\n',
            ":2: TOML syntax error at line 2, column 6: expected '=' after a key in a key/value pair",
        ),
        (
            "[cerebrium.deployment\n",
            ":1: TOML syntax error at line 1, column 22: expected ']' at the end of a table declaration",
        ),
        (
            '[cerebrium.deployment]\nname = "x"\nname = "y"\n',
            ":3: TOML syntax error at line 3, column 11: cannot overwrite a value",
        ),
        ('[a]\nb = """open', "TOML syntax error at the end of the file: unterminated string"),
    ],
)
def test_toml_syntax_error_has_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "cerebrium.toml").write_text(text, encoding="utf-8")
    assert expected in only_error(tmp_path)


_LOAD_AS_USER = """
import json, sys
from builder.config import load
result = load(sys.argv[1])
print(json.dumps({"config": result.config is not None,
                  "diagnostics": [[d.level, d.format()] for d in result.diagnostics]}))
"""


def test_unreadable() -> None:
    # Root reads every file whatever its mode, so load() runs as an unprivileged user (see tests/privileges.py).
    with traversable_tmp_dir() as root:
        target = root / "cerebrium.toml"
        target.write_text('[cerebrium.deployment]\nname = "x"\n')
        target.chmod(0)
        done = run_python(_LOAD_AS_USER, str(root))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["config"] is False
    [(level, message)] = result["diagnostics"]
    assert level == "error"
    assert "cannot read the file" in message and "cerebrium.toml" in message


def test_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_bytes(b'\xef\xbb\xbf[cerebrium.deployment]\nname = "bom"\n')
    assert load(tmp_path).ok


def test_display_path_is_as_given_and_config_path_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "x"\nbad = 1\n')
    monkeypatch.chdir(tmp_path)
    result = load(".")
    assert result.config is not None
    assert result.config.path == (tmp_path / "cerebrium.toml").resolve()
    assert result.config.path.is_absolute()
    assert result.config.raw_text == (tmp_path / "cerebrium.toml").read_text()
    assert result.diagnostics[0].format().startswith("cerebrium.toml:3: cerebrium.deployment.bad: unknown key")


def test_load_config_raises_with_all_errors(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_text("[cerebrium.deployment]\nname = 1\nuse_uv = 2\nzzz = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    err = info.value
    assert [d.key_path for d in err.diagnostics] == ["cerebrium.deployment.name", "cerebrium.deployment.use_uv"]
    assert err.line == 2
    assert "2 errors" in err.message


def test_load_config_returns_config_and_drops_warnings(tmp_path: Path) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "x"\nzzz = 1\n')
    assert load_config(tmp_path / "cerebrium.toml").deployment.name == "x"


def test_load_config_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")
