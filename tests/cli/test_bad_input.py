"""Bad input never reaches the user as a traceback: one clean error, the right exit code, nothing changed.

Each row builds a broken project (or argument) under ``tmp_path`` and names the
exit code and a pattern the error must contain.  Every row also checks that no
"internal error" and no traceback was printed.  Rows that used to hang (a FIFO
read as a config) run under an alarm so a regression fails instead of hanging.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.cli import main

MINIMAL = '[cerebrium.deployment]\nname = "bad-input"\n'
NO_ENGINE = "unix:///nonexistent/buildkitd.sock"  # a regression past validation shows up as exit 4


def _project(root: Path, toml: str = MINIMAL, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cerebrium.toml").write_text(toml, encoding="utf-8")
    (root / "main.py").write_text("print('x')\n", encoding="utf-8")  # the default runtime runs it
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def _paths_pip(root: Path) -> Path:
    return _project(root, MINIMAL + '[cerebrium.dependencies.paths]\npip = "requirements.txt"\n')


# Each setup returns the argv (after ``builder``) for a fresh tmp_path.
Setup = Callable[[Path], list[str]]


def _fifo_config(t: Path) -> list[str]:
    os.mkfifo(t / "cerebrium.toml")
    return ["validate", str(t)]


def _fifo_config_file(t: Path) -> list[str]:
    os.mkfifo(t / "c.toml")
    return ["plan", str(t / "c.toml"), "--no-record"]


def _dangling_config(t: Path) -> list[str]:
    (t / "cerebrium.toml").symlink_to(t / "missing.toml")
    return ["validate", str(t)]


def _dir_named_config(t: Path) -> list[str]:
    (t / "cerebrium.toml").mkdir()
    return ["plan", str(t), "--no-record"]


def _huge_config(t: Path) -> list[str]:
    (t / "cerebrium.toml").write_bytes(b"#" * (2 * 1024 * 1024))
    return ["validate", str(t)]


def _binary_config(t: Path) -> list[str]:
    (t / "cerebrium.toml").write_bytes(b"\x00\x01\x02binary")
    return ["lock", str(t)]


def _fifo_requirements(t: Path) -> list[str]:
    os.mkfifo(_paths_pip(t) / "requirements.txt")
    return ["plan", str(t), "--no-record"]


def _dir_requirements(t: Path) -> list[str]:
    (_paths_pip(t) / "requirements.txt").mkdir()
    return ["plan", str(t), "--no-record"]


def _escaping_symlink_requirements(t: Path) -> list[str]:
    outside = t.parent / f"{t.name}-outside.txt"
    outside.write_text("six\n", encoding="utf-8")
    (_paths_pip(t / "app") / "requirements.txt").symlink_to(outside)
    return ["plan", str(t / "app"), "--no-record"]


def _escaping_include(t: Path) -> list[str]:
    _paths_pip(t).joinpath("requirements.txt").write_text("six\n-r ../../etc/passwd\n", encoding="utf-8")
    return ["lock", str(t)]


def _injected_requirement(t: Path) -> list[str]:
    _paths_pip(t).joinpath("requirements.txt").write_text("six\nx; rm -rf /\n", encoding="utf-8")
    return ["plan", str(t), "--no-record"]


def _newline_file_name(t: Path) -> list[str]:
    _project(t, files={"main.py": "", "bad\nname.py": ""})
    return ["dockerfile", str(t)]


def _build_with(*extra: str) -> Setup:
    def setup(t: Path) -> list[str]:
        return ["build", str(_project(t)), "--engine", NO_ENGINE, *extra]

    return setup


def _plan_file(text: str) -> Setup:
    def setup(t: Path) -> list[str]:
        (t / "plan.json").write_text(text, encoding="utf-8")
        return ["build", str(_project(t / "app")), "--engine", NO_ENGINE, "--plan", str(t / "plan.json")]

    return setup


def _escaping_plan(t: Path) -> list[str]:
    plan = {
        "app": "bad-input",
        "steps": [
            {
                "id": "base",
                "kind": "base",
                "key": "sha256:" + "0" * 64,
                "parents": [],
                "inputs": {"image": "docker.io/library/debian:bookworm-slim", "platform": "linux/amd64"},
            },
            {
                "id": "files",
                "kind": "files",
                "key": "sha256:" + "1" * 64,
                "parents": ["base"],
                "inputs": {"manifest": {"files": [["../../etc/passwd", "file", 1, "blake3:00"]]}, "dest": "/app"},
            },
        ],
    }
    return _plan_file(json.dumps(plan))(t)


def _plan_of_files_since_edited(t: Path) -> list[str]:
    """A summary plan (no file list) whose project had a file edited after planning."""
    from builder.api import plan_project
    from builder.plan.render.json import plan_document

    project = _project(t / "app", files={"main.py": "print(1)\n"})
    plan, analysis, _ = plan_project(project, record=False)
    (t / "plan.json").write_text(json.dumps(plan_document(plan, analysis)), encoding="utf-8")
    (project / "main.py").write_text("print(2)\n", encoding="utf-8")
    return ["build", str(project), "--engine", NO_ENGINE, "--plan", str(t / "plan.json")]


def _git_repo(t: Path) -> Path:
    _project(t)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for argv in (["init", "-q"], ["add", "cerebrium.toml"], ["commit", "-q", "-m", "init"]):
        subprocess.run(["git", *argv], cwd=t, check=True, env=env, capture_output=True)
    return t


def _diff_unknown_revision(t: Path) -> list[str]:
    return ["diff", "--git", "HEAD", "no-such-revision", str(_git_repo(t))]


def _diff_outside_git(t: Path) -> list[str]:
    return ["diff", "--git", "HEAD", "HEAD", str(_project(t))]


CASES: list[tuple[str, Setup, int, str]] = [
    ("missing-path", lambda t: ["validate", str(t / "nope")], 2, r"file not found"),
    ("dir-without-config", lambda t: ["plan", str(t), "--no-record"], 2, r"no cerebrium\.toml in this directory"),
    ("config-is-a-directory", _dir_named_config, 2, r"is a directory"),
    ("config-is-a-fifo", _fifo_config, 2, r"not a regular file"),
    ("config-file-is-a-fifo", _fifo_config_file, 2, r"not a regular file"),
    ("config-dangling-symlink", _dangling_config, 2, r"symlink to .* which does not exist"),
    ("config-huge", _huge_config, 2, r"too large"),
    ("config-binary", _binary_config, 2, r"binary"),
    ("requirements-fifo", _fifo_requirements, 2, r"paths\.pip: 'requirements\.txt' is not a regular file"),
    ("requirements-directory", _dir_requirements, 2, r"is not a regular file"),
    ("requirements-symlink-escape", _escaping_symlink_requirements, 2, r"leaves the project directory"),
    ("requirements-include-escape", _escaping_include, 2, r"requirements\.txt:2: .*leaves the project directory"),
    ("requirements-injection", _injected_requirement, 2, r"requirements\.txt:2: .*invalid requirement"),
    ("dockerignore-newline-name", _newline_file_name, 2, r"line break cannot be listed in a \.dockerignore"),
    ("format-xml", lambda t: ["validate", str(_project(t)), "--format", "xml"], 2, r"invalid choice: 'xml'"),
    ("output-type-bogus", _build_with("--output", "type=bogus"), 2, r"--output type must be"),
    ("timeout-negative", _build_with("--timeout=-1"), 2, r"--timeout: -1 is not a positive number"),
    ("timeout-zero", _build_with("--timeout=0"), 2, r"--timeout: 0 is not a positive number"),
    ("timeout-nan", _build_with("--timeout=nan"), 2, r"--timeout: nan is not a positive number"),
    ("timeout-inf", _build_with("--timeout=inf"), 2, r"--timeout: inf is not a positive number"),
    ("engine-bad-scheme", lambda t: ["engine", "info", "--engine", "garbage://"], 2, r"unknown scheme 'garbage'"),
    ("engine-bad-port", lambda t: ["engine", "info", "--engine", "tcp://host:99999"], 2, r"out of range"),
    ("plan-file-corrupt", _plan_file("{bad"), 2, r"not a plan written by `builder plan"),
    (
        "plan-file-missing",
        lambda t: ["build", str(_project(t)), "--engine", NO_ENGINE, "--plan", str(t / "no.json")],
        2,
        r"no\.json: cannot read the plan file \(No such file or directory\)",
    ),
    (
        "plan-file-other-app",
        _plan_file(json.dumps({"app": "someone-else", "steps": []})),
        2,
        r"the plan is for app 'someone-else', but this project is 'bad-input'",
    ),
    ("plan-file-not-an-object", _plan_file("[1, 2]"), 2, r"not a plan written by `builder plan"),
    (
        "plan-file-files-changed",
        _plan_of_files_since_edited,
        2,
        r"plan\.json: the project's files changed since the plan was written: the plan's files step has 1 files",
    ),
    ("plan-file-escaping-path", _escaping_plan, 2, r"'\.\./\.\./etc/passwd' is not a plain path inside the project"),
    ("diff-unknown-revision", _diff_unknown_revision, 2, r"no-such-revision"),
    ("cache-dir-typo", lambda t: ["cache", "ls", "--cache-dir", str(t / "no" / "cache")], 2, r"no cache at .*no/cache"),
    ("diff-outside-git", _diff_outside_git, 2, r"not a git repository"),
]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BUILDKIT_HOST", raising=False)
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _hung(signum: int, frame: object) -> None:
    raise AssertionError("the command hung (a blocking read of bad input?)")


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


@pytest.mark.parametrize(("setup", "code", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_error(
    setup: Setup, code: int, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    argv = setup(work)
    before = sorted(p.relative_to(work).as_posix() for p in work.rglob("*"))
    assert _run(argv) == code
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert "Traceback" not in err
    assert re.search(pattern, err), err
    after = sorted(p.relative_to(work).as_posix() for p in work.rglob("*"))
    assert after == before  # bad input changes nothing in the project


def test_cache_dir_that_is_a_file_degrades_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    assert _run(["plan", str(_project(tmp_path / "app")), "--cache-dir", str(blocker)]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and str(blocker) in err
    assert blocker.read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize("name", ["Dockerfile", ".dockerignore"])
def test_dockerfile_export_never_overwrites_the_users_files(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "app", files={name: "FROM scratch\n"})
    assert _run(["dockerfile", str(project), "-o", str(project)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (project / name).read_text(encoding="utf-8") == "FROM scratch\n"
    assert sorted(p.name for p in project.iterdir()) == sorted(
        ["cerebrium.toml", "main.py", name]
    )  # nothing half-written


def test_dockerfile_export_rewrites_its_own_output(tmp_path: Path) -> None:
    project = _project(tmp_path / "app")
    assert _run(["dockerfile", str(project), "-o", str(project)]) == 0
    assert _run(["dockerfile", str(project), "-o", str(project)]) == 0
