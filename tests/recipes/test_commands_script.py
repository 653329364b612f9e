"""pre_build / shell commands: one bash script with set -e, as the Cerebrium CLI runs them (run here with host bash)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.recipes.commands import command_script
from builder.recipes.script_text import script_text


def run(tmp_path: Path, commands: tuple[str, ...], *, text: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    script = tmp_path / "commands.bash"
    script.write_bytes(command_script(commands).encode("utf-8"))
    runner = tmp_path / "commands.sh"
    runner.write_text(script_text("commands.sh"), encoding="utf-8")
    return subprocess.run(
        ["/bin/sh", str(runner), str(tmp_path / "work"), str(script)],
        capture_output=True,
        text=text,
        timeout=60,
        check=False,
    )


def test_export_cd_and_source_carry_over(tmp_path: Path) -> None:
    (tmp_path / "env.sh").write_text("FROM_SOURCE=sourced\n")
    done = run(
        tmp_path,
        (
            "export GREETING=hi",
            "mkdir -p sub && cd sub",
            f"source {tmp_path}/env.sh",
            'echo "$GREETING $FROM_SOURCE $(basename "$PWD")" > out.txt',
        ),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "work" / "sub" / "out.txt").read_text() == "hi sourced sub\n"
    assert done.stdout.splitlines()[0] == "+ export GREETING=hi"


def test_a_failing_command_stops_the_list_and_is_named_with_its_position(tmp_path: Path) -> None:
    done = run(tmp_path, ("echo one", "sh -c 'exit 3'", "touch never"))
    assert done.returncode == 3
    assert "builder: command 2 of 3 failed (exit 3): sh -c 'exit 3'" in done.stderr
    assert not (tmp_path / "work" / "never").exists()
    assert "+ touch never" not in done.stdout


def test_success_reports_nothing(tmp_path: Path) -> None:
    done = run(tmp_path, ("true", "exit 0"))
    assert done.returncode == 0 and "builder:" not in done.stderr


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
        min_size=1,
        max_size=4,
    )
)
def test_every_command_is_echoed_verbatim(tmp_path_factory: pytest.TempPathFactory, words: list[str]) -> None:
    tmp_path = tmp_path_factory.mktemp("echo")
    commands = tuple(f": {shlex.quote(w)}" for w in words)
    done = run(tmp_path, commands, text=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"+ {c}\n" for c in commands).encode("utf-8")
