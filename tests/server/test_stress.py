"""Stress: 2,000 commands through the warm server give exactly the in-process results, even across a SIGKILL.

The commands (validate, plan, diff, cache stats) run over every fixture app, every
invalid fixture and a spread of the real-world configs, one after another and four
at a time; in the second half the server is killed with SIGKILL halfway through
each phase.  Every command's exit code, stdout and stderr must equal those of the
same command run in-process (``BUILDER_SERVER=off``), no exit status may exceed 128,
and no server log may hold a traceback.

Marked ``stress``: ``scripts/test`` runs it after the unit tests (so ``make test`` and
CI do); alone: ``.venv/bin/python -m pytest -q -m stress``.  ``BUILDER_STRESS_COMMANDS``
changes the number of commands (default 2000).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from builder.api import plan_project
from builder.errors import BuilderError

pytestmark = pytest.mark.stress

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
TOTAL = int(os.environ.get("BUILDER_STRESS_COMMANDS", "2000"))
Outcome = tuple[int, bytes, bytes]


def _env(server_dir: Path, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILDER_")}
    env.update(
        {
            "BUILDER_SERVER": "auto",
            "BUILDER_RESOLVE": "off",  # no live index (see tests/conftest.py)
            "BUILDER_SERVER_DIR": str(server_dir),
            "BUILDER_SERVER_IDLE": "600",
            "BUILDER_CACHE_DIR": str(cache),
            **extra,
        }
    )
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> Outcome:
    done = subprocess.run(
        [sys.executable, "-m", "builder", *argv], env=env, cwd=cwd, capture_output=True, timeout=300, check=False
    )
    return done.returncode, done.stdout, done.stderr


def _projects(root: Path) -> tuple[list[Path], list[Path]]:
    """(valid projects, invalid projects) copied under ``root``: every app, every invalid fixture, and
    every fifth real-world config (each in its own directory)."""
    valid, invalid = [], []
    for app in sorted((FIXTURES / "apps").iterdir()):
        valid.append(Path(shutil.copytree(app, root / f"app-{app.name}")))
    for bad in sorted((FIXTURES / "invalid").iterdir()):
        invalid.append(Path(shutil.copytree(bad, root / f"invalid-{bad.name}")))
    for toml in sorted((FIXTURES / "real-world").glob("*.toml"))[::5]:
        directory = root / f"rw-{toml.stem}"
        directory.mkdir()
        shutil.copy2(toml, directory / "cerebrium.toml")
        valid.append(directory)
    return valid, invalid


def _commands(valid: list[Path], invalid: list[Path], cache: Path) -> list[list[str]]:
    """The distinct commands: validate and plan every project (text and json), diff neighbours, cache stats."""
    commands: list[list[str]] = []
    for project in valid + invalid:
        commands.append(["validate", str(project)])
        commands.append(["plan", str(project), "--no-record", "--cache-dir", str(cache)])
    for project in valid[::2]:
        commands.append(["plan", str(project), "--no-record", "--format", "json", "--cache-dir", str(cache)])
        commands.append(["validate", str(project), "--format", "json"])
    for old, new in zip(valid, valid[1:] + valid[:1], strict=True):
        commands.append(["diff", str(old), str(new)])
    commands.append(["cache", "stats", "--cache-dir", str(cache)])
    commands.append(["cache", "stats", "--cache-dir", str(cache), "--format", "json"])
    return commands


def _server_pids(server_dir: Path) -> list[int]:
    pids = []
    for lock in server_dir.glob("s-*.lock"):
        text = lock.read_text().strip()
        if text.isdigit() and Path(f"/proc/{text}").exists():
            pids.append(int(text))
    return pids


def _stop_servers(server_dir: Path, env: dict[str, str], cwd: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _run(["server", "stop"], env, cwd)
        if not _server_pids(server_dir):
            return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[list[str]], dict[str, Outcome]]]:
    """The projects, the distinct commands and each one's in-process outcome (computed once)."""
    root = tmp_path_factory.mktemp("stress")
    cache = root / "cache"
    valid, invalid = _projects(root / "projects")
    for project in valid:  # a history for every app, so plan output does not depend on the order of runs
        with contextlib.suppress(BuilderError):  # some real-world configs name files they do not have
            plan_project(project, cache_dir=cache, record=True)
    commands = _commands(valid, invalid, cache)
    env = _env(root / "unused", cache, BUILDER_SERVER="off")
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda argv: _run(argv, env, root), commands))
    expected = {"\0".join(argv): outcome for argv, outcome in zip(commands, outcomes, strict=True)}
    assert all(0 <= code <= 5 for code, _out, _err in outcomes), "an in-process command failed unexpectedly"
    assert {code for code, _out, _err in outcomes} >= {0, 2}
    yield root, commands, expected


def _phase(
    commands: list[list[str]],
    expected: dict[str, Outcome],
    env: dict[str, str],
    cwd: Path,
    *,
    workers: int,
    kill_at: int | None,
    server_dir: Path,
) -> list[str]:
    """Run ``commands`` (``workers`` at a time); SIGKILL the server once ``kill_at`` commands have started.

    Returns a description of every command whose outcome differs from the in-process one.
    """
    counter = itertools.count(1)

    def one(argv: list[str]) -> str | None:
        if kill_at is not None and next(counter) == kill_at:
            pids = _server_pids(server_dir)
            assert pids, "no server was running to kill"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        got = _run(argv, env, cwd)
        want = expected["\0".join(argv)]
        if got == want and got[0] <= 128:
            return None
        return f"builder {' '.join(argv)}: exit {got[0]} (in-process {want[0]})\n{got[2][-600:]!r}\n{want[2][-600:]!r}"

    if workers == 1:
        results = [one(argv) for argv in commands]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, commands))
    return [r for r in results if r is not None]


def _served(server_dir: Path) -> int:
    return sum(log.read_text().count("] pid ") for log in server_dir.glob("s-*.log"))


def test_served_commands_equal_in_process_ones_even_when_the_server_is_killed(
    corpus: tuple[Path, list[list[str]], dict[str, Outcome]],
) -> None:
    root, commands, expected = corpus
    cache = root / "cache"
    server_dir = root / "srv"
    server_dir.mkdir(mode=0o700)
    env = _env(server_dir, cache)
    rng = random.Random(17)
    quarter = TOTAL // 4
    # `cache stats` reports the store's size on disk, which includes the SQLite write-ahead files of any
    # other process that has the cache open at that instant (in-process just the same): it runs only
    # in the sequential phases, where nothing else has the cache open.
    alone = [argv for argv in commands if argv[0] != "cache"]
    plan = [[rng.choice(commands if phase % 2 == 0 else alone) for _ in range(quarter)] for phase in range(4)]
    started = time.monotonic()
    try:
        assert _run(["server", "start"], env, root)[0] == 0
        mismatches = _phase(plan[0], expected, env, root, workers=1, kill_at=None, server_dir=server_dir)
        mismatches += _phase(plan[1], expected, env, root, workers=4, kill_at=None, server_dir=server_dir)
        served_before_kills = _served(server_dir)
        mismatches += _phase(plan[2], expected, env, root, workers=1, kill_at=quarter // 2, server_dir=server_dir)
        assert _run(["server", "start"], env, root)[0] == 0  # the replacement may still be warming up
        mismatches += _phase(plan[3], expected, env, root, workers=4, kill_at=quarter // 2, server_dir=server_dir)
    finally:
        _stop_servers(server_dir, env, root)
    elapsed = time.monotonic() - started
    logs = "".join(log.read_text() for log in server_dir.glob("s-*.log"))
    print(
        f"\n{TOTAL} commands through the warm server in {elapsed:.1f} s "
        f"({_served(server_dir)} served, {logs.count('] serving ')} servers)"
    )
    assert mismatches == [], f"{len(mismatches)} of {TOTAL} commands differ:\n" + "\n".join(mismatches[:5])
    assert "Traceback" not in logs, logs[-3000:]
    assert served_before_kills >= quarter  # the first half really went through the server
    assert logs.count("] serving ") >= 3  # the first server, and one after each SIGKILL
    assert _served(server_dir) >= TOTAL // 2
