"""``builder validate`` on 60+ real-world style configs.

Each config either validates, or gets one clear line per problem: every
stderr line is ``level: file:line: key.path: message``, the exit code is 0 or
2 (2 iff an error line was printed) and nothing is a traceback.  The exact
output of all of them is kept in ``fixtures/real-world/EXPECTED.txt``
(``make golden`` regenerates it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from builder.cli import main

REAL_WORLD = Path(__file__).resolve().parents[2] / "fixtures" / "real-world"
CONFIGS = sorted(p.name for p in REAL_WORLD.glob("*.toml"))
LINE = re.compile(r"^(error|warning): [\w.-]+\.toml:\d+: (cerebrium|[\w-]+)(\.[\w\"\[\], .-]+)*: \S.*$")


def run(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["validate", name])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_at_least_sixty_configs() -> None:
    assert len(CONFIGS) >= 60


@pytest.mark.parametrize("name", CONFIGS)
def test_one_clear_line_per_problem(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REAL_WORLD)
    code, out, err = run(name, capsys)
    lines = err.splitlines()
    assert "Traceback" not in err
    for line in lines:
        assert LINE.match(line), line
    has_error = any(line.startswith("error: ") for line in lines)
    assert code == (2 if has_error else 0)
    assert out == ("" if has_error else f"{name}: valid" + _warning_suffix(len(lines)) + "\n")
    assert len(lines) == len(set(lines)), "a problem is reported twice"


def _warning_suffix(count: int) -> str:
    return "" if not count else f" ({count} warning{'s' if count != 1 else ''})"


@pytest.mark.golden
def test_outputs_match_snapshot(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REAL_WORLD)
    chunks = []
    for name in CONFIGS:
        code, out, err = run(name, capsys)
        chunks.append(f"## {name} (exit {code})\n{err}{out}")
    snapshot = "\n".join(chunks)
    expected_file = REAL_WORLD / "EXPECTED.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        expected_file.write_text(snapshot, encoding="utf-8")
    assert snapshot == expected_file.read_text(encoding="utf-8")


def test_mix_of_outcomes(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus exercises clean configs, warning-only configs and invalid ones."""
    monkeypatch.chdir(REAL_WORLD)
    outcomes = [run(name, capsys) for name in CONFIGS]
    assert sum(1 for code, _, err in outcomes if code == 0 and not err) >= 15
    assert sum(1 for code, _, err in outcomes if code == 0 and err) >= 15
    assert sum(1 for code, _, _ in outcomes if code == 2) >= 15
