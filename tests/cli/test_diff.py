"""``builder diff``: two directories, two git revisions, formats and usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.cli import main


def _diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["diff", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def test_pip_change(app_fastapi_cpu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _copy(app_fastapi_cpu, tmp_path / "new")
    toml = new / "cerebrium.toml"
    toml.write_text(toml.read_text().replace('six = "==1.16.0"', 'six = "==1.17.0"'))
    code, out, _ = _diff(capsys, str(app_fastapi_cpu), str(new))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "3 step(s) change (cause: pip)"
    assert "= base    unchanged" in lines
    assert "~ pip     pip: six ==1.16.0 → ==1.17.0" in lines
    assert "~ files   parent changed (pip)" in lines


def test_json_and_fail_on_change(app_fastapi_cpu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _copy(app_fastapi_cpu, tmp_path / "new")
    code, out, _ = _diff(capsys, str(app_fastapi_cpu), str(new), "--format", "json", "--fail-on-change")
    assert code == 0
    assert json.loads(out)["cause"] is None
    toml = new / "cerebrium.toml"
    toml.write_text(toml.read_text().replace("max_replicas = 2", "max_replicas = 7"))
    code, out, _ = _diff(capsys, str(app_fastapi_cpu), str(new), "--format", "json", "--fail-on-change")
    assert code == 3
    document = json.loads(out)
    assert document["config_only"] is True
    assert [c["id"] for c in document["changes"] if c["change"] != "same"] == ["config"]


def test_config_only_headline(app_minimal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = _copy(app_minimal, tmp_path / "new")
    (new / "cerebrium.toml").write_text((new / "cerebrium.toml").read_text() + "# comment\n")
    _, out, _ = _diff(capsys, str(app_minimal), str(new))
    assert out.splitlines()[0] == "only the image config changes: no layer rebuild"


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _diff(capsys, "only-one")
    assert code == 2 and "OLD and NEW" in err
    code, _, err = _diff(capsys, "--git", "a", "b", "x", "y")
    assert code == 2


def test_missing_project_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _diff(capsys, str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 2 and "Traceback" not in err


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revisions(app_fastapi_cpu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.email=t@e", "-c", "user.name=t", *args],
            cwd=app_fastapi_cpu,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "one")
    (app_fastapi_cpu / "main.py").write_text("print('v2')\n")
    (app_fastapi_cpu / "extra.py").write_text("not selected: include lists main.py only\n")
    git("add", "-A")
    git("commit", "-qm", "two")
    code, out, _ = _diff(capsys, "--git", "HEAD~1", "HEAD", str(app_fastapi_cpu))
    assert code == 0
    assert "~ files   files: 1 changed (main.py)" in out.splitlines()
    code, _, err = _diff(capsys, "--git", "nope", "HEAD", str(app_fastapi_cpu))
    assert code == 2 and "nope" in err


def _many_files(root: Path, count: int) -> Path:
    root.mkdir()
    (root / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "many"\ninclude = ["*"]\nexclude = [".*"]\n')
    (root / "main.py").write_text("print('hi')\n")
    for i in range(count):
        sub = root / "data" / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.txt").write_text(f"{i}\n")
    return root


def test_files_diff_names_the_layer_that_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _many_files(tmp_path / "old", 5000)
    new = _copy(old, tmp_path / "new")
    (new / "data" / "d45" / "f4500.txt").write_text("edited\n")
    code, out, _ = _diff(capsys, str(old), str(new))
    assert code == 0
    files = next(line for line in out.splitlines() if line.startswith("~ files"))
    assert "1 changed (data/d45/f4500.txt)" in files
    assert "layer 3 of 4 (data/d40 … data/d49) changed: layers 3-4 copied again, 2 reused" in files
    (new / "data" / "d45" / "f4500.txt").write_text("4500\n")
    (new / "main.py").write_text("print('edited')\n")
    code, out, _ = _diff(capsys, str(old), str(new))
    files = next(line for line in out.splitlines() if line.startswith("~ files"))
    assert "layer 4 of 4 (top-level files) changed: only it is copied again, 3 reused" in files
