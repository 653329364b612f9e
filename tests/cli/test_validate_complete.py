"""``builder validate`` checks everything ``builder plan`` checks without an engine, all at once.

Each test writes a small project and runs the CLI as a user would (through
``builder.cli.main``), from the project's parent directory so the paths in the
messages are the ones the user typed (``app/cerebrium.toml:12``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from builder.cli import main

BASE = '[cerebrium.deployment]\nname = "app"\n'


def project(root: Path, toml: str, files: dict[str, str] | None = None, *, main_py: bool = True) -> Path:
    app = root / "app"
    app.mkdir()
    (app / "cerebrium.toml").write_text(toml)
    if main_py:
        (app / "main.py").write_text("print('hi')\n")
    for rel, text in (files or {}).items():
        (app / rel).parent.mkdir(parents=True, exist_ok=True)
        (app / rel).write_text(text)
    return app


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


def validate(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code, err, _ = run(["validate", "app"], capsys)
    return code, err


def plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, list[str]]:
    code, err, _ = run(["plan", "app", "--cache-dir", str(tmp_path / "cache")], capsys)
    return code, err


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_every_dependency_problem_in_one_run_with_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        tmp_path,
        BASE + '[cerebrium.dependencies.pip]\nnumpy = "not a version"\ntorch = ">>2"\nok = "1.0"\n'
        '[cerebrium.dependencies.apt]\n"bad name!" = "latest"\n'
        '[cerebrium.dependencies.paths]\nconda = "missing.txt"\n',
    )
    code, err = validate(capsys)
    assert code == 2
    assert err == [
        "error: app/cerebrium.toml:4: cerebrium.dependencies.pip.numpy: version 'not a version' of 'numpy' is not a "
        'valid version (use "latest", a version like "2.0.0", or a specifier like ">=1.5,<2")',
        "error: app/cerebrium.toml:5: cerebrium.dependencies.pip.torch: version '>>2' of 'torch' is not a valid "
        'version specifier (use "latest", a version like "2.0.0", or a specifier like ">=1.5,<2")',
        "error: app/cerebrium.toml:8: cerebrium.dependencies.apt.\"bad name!\": 'bad name!' is not a valid Debian "
        "package name (names are lowercase letters, digits, '+', '-' and '.', at least two characters)",
        "error: app/cerebrium.toml:10: cerebrium.dependencies.paths.conda: file 'missing.txt' does not exist "
        "(check the path (it is relative to the project directory))",
    ]
    assert plan(capsys, tmp_path) == (code, err)


def test_problems_inside_a_requirements_file_name_that_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(
        tmp_path,
        BASE + '[cerebrium.dependencies.paths]\npip = "reqs/main.txt"\n',
        {"reqs/main.txt": "six==1.16.0\nnot valid ===\n-r more.txt\n", "reqs/more.txt": "ok\n--frobnicate\n"},
    )
    code, err = validate(capsys)
    assert code == 2
    assert [line.split(": ")[1] for line in err] == ["app/reqs/main.txt:2", "app/reqs/more.txt:2"]
    assert all(": cerebrium.dependencies.paths.pip: " in line for line in err)
    assert plan(capsys, tmp_path) == (code, err)


@pytest.mark.parametrize(
    ("toml", "files", "expected"),
    [
        (
            '[cerebrium.dependencies.pip]\nsix = "1"\n[cerebrium.dependencies.paths]\npip = "r.txt"\n',
            {"r.txt": "x\n"},
            "app/cerebrium.toml:3: cerebrium.dependencies.pip: both cerebrium.dependencies.pip (inline table)",
        ),
        (
            '[cerebrium.runtime.custom]\nport = 8000\ndockerfile_path = "Dockerfile"\n',
            {},
            "app/cerebrium.toml:5: cerebrium.runtime.custom.dockerfile_path: file 'Dockerfile' does not exist",
        ),
        ("[cerebrium.deployment.x]\n", {}, None),
        ('[cerebrium.dependencies.conda]\n"--allow-unauthenticated" = "latest"\n', {}, "is not a conda package name"),
        ('[cerebrium.dependencies.conda]\n"numpy\\u2028x" = "latest"\n', {}, "a Unicode line separator"),
        ('[cerebrium.dependencies.pip]\n"numpy\\u2029" = "latest"\n', {}, "a Unicode paragraph separator"),
    ],
)
def test_checks_plan_makes_are_validate_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, files: dict[str, str], expected: str | None
) -> None:
    project(tmp_path, BASE + toml, files)
    code, err = validate(capsys)
    plan_code, plan_err = plan(capsys, tmp_path)
    if expected is None:
        assert code == plan_code
        return
    assert code == 2
    assert any(expected in line for line in err), err
    assert (plan_code, [e for e in plan_err if e.startswith("error")]) == (
        code,
        [e for e in err if e.startswith("error")],
    )


def test_inline_direct_references_are_kept_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(
        tmp_path,
        BASE + '[cerebrium.dependencies.pip]\n"git+https://github.com/huggingface/peft.git" = "latest"\n'
        '"mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl" = ""\n'
        '"https://example.com/other-2.0-py3-none-any.whl" = "*"\n',
    )
    assert validate(capsys)[0] == 0
    code, _, out = run(["plan", "app", "--cache-dir", str(tmp_path / "c"), "--format", "json"], capsys)
    assert code == 0
    pip = next(s for s in json.loads(out)["steps"] if s["id"] == "pip")
    lines = pip["inputs"]["requirements_txt"].splitlines()
    assert "git+https://github.com/huggingface/peft.git" in lines
    assert "mypkg @ https://example.com/mypkg-1.0-py3-none-any.whl" in lines
    assert "other @ https://example.com/other-2.0-py3-none-any.whl" in lines


def test_case_duplicates_merge_with_a_warning_or_fail_naming_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(tmp_path, BASE + '[cerebrium.dependencies.pip]\nPillow = "latest"\npillow = "latest"\n')
    code, err = validate(capsys)
    assert code == 0
    assert err == [
        "warning: app/cerebrium.toml:5: cerebrium.dependencies.pip.pillow: keys 'Pillow' (line 4) and "
        "'pillow' name the same package 'pillow'; they are merged into one requirement (remove one of them "
        "(names are case- and separator-insensitive))"
    ]
    (tmp_path / "app" / "cerebrium.toml").write_text(
        BASE + '[cerebrium.dependencies.pip]\nPillow = "10.0"\npillow = "latest"\n'
    )
    code, err = validate(capsys)
    assert code == 2
    assert "line 4" in err[0] and err[0].startswith("error: app/cerebrium.toml:5:")


def test_requirements_file_duplicates_merge_or_name_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(tmp_path, BASE + '[cerebrium.dependencies.paths]\npip = "r.txt"\n', {"r.txt": "Six==1.16.0\nsix==1.16.0\n"})
    code, err = validate(capsys)
    assert code == 0 and err[0].startswith("warning: app/r.txt:2:") and "r.txt:1" in err[0]
    (tmp_path / "app" / "r.txt").write_text("Six==1.16.0\nsix==1.15.0\n")
    code, err = validate(capsys)
    assert code == 2 and err[0].startswith("error: app/r.txt:2:") and "r.txt:1" in err[0]


@pytest.mark.parametrize("use_uv", [False, True])
def test_requirements_file_options_pass_through_or_fail_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], use_uv: bool
) -> None:
    toml = BASE + f"use_uv = {'true' if use_uv else 'false'}\n" + '[cerebrium.dependencies.paths]\npip = "r.txt"\n'
    project(
        tmp_path,
        toml,
        {
            "r.txt": "--only-binary :all:\n--require-hashes\n--pre\n--trusted-host h.example\n"
            "six==1.16.0 --hash=sha256:" + "a" * 64 + "\n"
        },
    )
    code, err, out = run(["plan", "app", "--cache-dir", str(tmp_path / "c"), "--format", "json"], capsys)
    if use_uv:  # uv ignores --pre and --trusted-host in a file: refused, with the line
        assert code == 2
        assert [line.split(": ")[1] for line in err if line.startswith("error")] == ["app/r.txt:3", "app/r.txt:4"]
        return
    assert code == 0
    pip = next(s for s in json.loads(out)["steps"] if s["id"] == "pip")
    lines = pip["inputs"]["requirements_txt"].splitlines()
    assert {"--only-binary :all:", "--require-hashes", "--pre", "--trusted-host h.example"} <= set(lines)


def test_upgrade_option_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(tmp_path, BASE + '[cerebrium.dependencies.paths]\npip = "r.txt"\n', {"r.txt": "six\n-U\n"})
    code, err = validate(capsys)
    assert code == 2
    assert err[0].startswith("error: app/r.txt:2: cerebrium.dependencies.paths.pip: -U cannot be used")


def test_empty_include_means_the_default_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(tmp_path, BASE + "include = []\n")
    code, err, out = run(["plan", "app", "--cache-dir", str(tmp_path / "c"), "--format", "json", "--files"], capsys)
    assert code == 0
    files = next(s for s in json.loads(out)["steps"] if s["id"] == "files")
    assert [f[0] for f in files["inputs"]["manifest"]["files"]] == ["main.py"]
    assert any("include: is empty; the default include list is used" in line for line in err)


def test_missing_or_excluded_main_py_for_the_default_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project(tmp_path, BASE, main_py=False)
    code, err = validate(capsys)
    assert code == 2 and "main.py does not exist" in err[0]
    (tmp_path / "app" / "main.py").write_text("x = 1\n")
    (tmp_path / "app" / "cerebrium.toml").write_text(BASE + 'exclude = ["main.py"]\n')
    code, err = validate(capsys)
    assert code == 2 and "cerebrium.deployment.include: main.py is excluded" in err[0]


def test_dockerfile_export_into_the_project_is_not_shipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(tmp_path, BASE + "exclude = []\n" + '[cerebrium.dependencies.pip]\nsix = "1.16.0"\n')

    def files() -> list[str]:
        code, _, out = run(["plan", "app", "--cache-dir", str(tmp_path / "c"), "--format", "json", "--files"], capsys)
        assert code == 0
        step = next(s for s in json.loads(out)["steps"] if s["id"] == "files")
        return [f[0] for f in step["inputs"]["manifest"]["files"]]

    before = files()
    assert run(["dockerfile", "app", "-o", "app"], capsys)[0] == 0
    assert (tmp_path / "app" / "Dockerfile").is_file() and (tmp_path / "app" / ".dockerignore").is_file()
    assert files() == before == ["main.py"]
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")  # the user's own Dockerfile ships as before
    assert "Dockerfile" in files()


def test_deep_nesting_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for opening, closing in (("[", "]"), ("{a=", "}")):
        (tmp_path / "app").mkdir(exist_ok=True)
        (tmp_path / "app" / "cerebrium.toml").write_text(BASE + "x = " + opening * 500 + closing * 500 + "\n")
        code, err = validate(capsys)
        assert code == 2
        assert err == [
            "error: app/cerebrium.toml:3: a value is nested more than 64 levels deep (flatten the value: "
            "cerebrium.toml needs at most a few levels of arrays and tables)"
        ]


@pytest.mark.parametrize("key", ["paths_pip", "dockerfile"])
def test_symlink_loops_are_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str) -> None:
    toml = (
        BASE + '[cerebrium.dependencies.paths]\npip = "loop"\n'
        if key == "paths_pip"
        else BASE + '[cerebrium.runtime.custom]\nport = 8000\ndockerfile_path = "loop"\n'
    )
    app = project(tmp_path, toml)
    os.symlink("loop2", app / "loop")
    os.symlink("loop", app / "loop2")
    for command in (validate(capsys), plan(capsys, tmp_path)):
        code, err = command
        assert code == 2
        assert len(err) == 1 and "symlink loop" in err[0] and err[0].startswith("error: app/cerebrium.toml:")


def test_index_credentials_never_reach_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(
        tmp_path,
        BASE + '[cerebrium.dependencies.paths]\npip = "r.txt"\n',
        {
            "r.txt": "--index-url https://alice:T0KEN-idx@pypi.example.com/simple\n"
            "--extra-index-url https://bob:T0KEN-extra@x.example.com/simple\n"
            "pkg @ https://carol:T0KEN-url@x.example.com/pkg-1.0-py3-none-any.whl\nsix==1.16.0\n"
        },
    )
    outputs = []
    for args in (
        ["plan", "app", "--cache-dir", str(tmp_path / "c"), "--format", "json"],
        ["plan", "app", "--cache-dir", str(tmp_path / "c")],
        ["dockerfile", "app"],
        ["validate", "app"],
    ):
        code, err, out = run(args, capsys)
        assert code == 0, err
        outputs.append(out + "\n".join(err))
    blob = "\n".join(outputs)
    assert "https://pypi.example.com/simple" in blob
    assert "T0KEN" not in blob
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file():
            assert b"T0KEN" not in path.read_bytes(), path


def test_credentials_in_a_bad_url_are_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project(
        tmp_path,
        BASE + '[cerebrium.dependencies.paths]\npip = "r.txt"\n',
        {"r.txt": "--index-url ftp://alice:T0KEN@pypi.example.com/simple\n"},
    )
    code, err = validate(capsys)
    assert code == 2 and "not an acceptable URL" in err[0] and "T0KEN" not in err[0]
