"""``--secret`` / ``--rerun`` mistakes: exit 2, one message naming the flag, no traceback, no engine contacted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from builder.cli import main

NO_ENGINE = "unix:///nonexistent/buildkitd.sock"  # a regression past validation shows up as exit 4


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "secret-flags"\nshell_commands = ["true"]\n', encoding="utf-8"
    )
    (root / "main.py").write_text("print('x')\n", encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "id=token"], r"--secret: 'id=token': no src=FILE"),
        (["--secret", "src=x"], r"--secret: 'src=x': no id=NAME"),
        (["--secret", "id=a/b,src=x"], r"secret id 'a/b' is not"),
        (["--secret", "id=t,src=MISSING"], r"--secret: id=t: the file .*missing does not exist"),
        (
            ["--secret", "id=t,env=BUILDER_TEST_UNSET_VARIABLE"],
            r"the environment variable BUILDER_TEST_UNSET_VARIABLE is not set",
        ),
        (["--secret", "id=t,env=HOME", "--secret", "id=t,env=PATH"], r"secret id 't' is given twice"),
        (["--rerun", "files"], r"--rerun: 'files' is not a step that runs a command"),
        (["--rerun", "apt"], r"--rerun: this plan has no apt step"),
    ],
)
def test_bad_secret_and_rerun_flags_fail_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    app = _project(tmp_path / "app")
    argv = ["build", str(app), "--no-resolve", "--engine", NO_ENGINE, "--cache-dir", str(tmp_path / "c")]
    argv += [a.replace("MISSING", str(tmp_path / "missing")) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err and "internal error" not in err


def test_plan_takes_the_ids_without_reading_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = _project(tmp_path / "app")
    base = ["plan", str(app), "--no-resolve", "--no-record", "--cache-dir", str(tmp_path / "c"), "--format", "json"]
    assert main([*base, "--secret", f"id=token,src={tmp_path / 'not-there'}"]) == 0
    assert '"token"' in capsys.readouterr().out  # the shell step's inputs name the id
    assert main([*base, "--secret", "id=token,env=UNSET_X", "--rerun", "shell"]) == 0
    assert '"token"' in capsys.readouterr().out
