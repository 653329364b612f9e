"""``builder plan``: formats, exit codes, history, and a cache that cannot be used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder.cli import main
from tests.privileges import copy_tree_readable, run_python, traversable_tmp_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(app_fastapi_cpu: Path) -> Path:
    return app_fastapi_cpu


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "cache"
    monkeypatch.setenv("BUILDER_CACHE_DIR", str(target))
    return target


def _plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _mark_built(cache: Path, plan_doc: dict, seconds: float = 3.0) -> None:  # type: ignore[type-arg]
    from cache import StepRecord, open_cache

    with open_cache(cache) as store:
        for step in plan_doc["steps"]:
            now = time.time()
            store.steps.record_step(
                StepRecord(
                    step["key"], step["kind"], step["id"], plan_doc["app"], "test", {}, None, seconds, 0, now, now
                )
            )


def test_text_tree(project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _plan(capsys, str(project))
    assert code == 0
    assert out.splitlines()[0] == "plan for fastapi-cpu: 6 of 6 steps rebuild"
    assert "├─ ✗ base" in out and "why: not built before" in out
    assert err == ""


def test_json_then_hits_after_build(project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _plan(capsys, str(project), "--format", "json")
    document = json.loads(out)
    assert code == 0
    assert [s["id"] for s in document["steps"]] == ["base", "python", "apt", "pip", "files", "config"]
    assert {s["status"] for s in document["steps"]} == {"miss"}
    _mark_built(cache_dir, document)
    code, out, _ = _plan(capsys, str(project), "--format", "json", "--fail-on-miss")
    assert code == 0
    assert {s["status"] for s in json.loads(out)["steps"]} == {"hit"}
    (project / "main.py").write_text("print('changed')\n")
    code, out, err = _plan(capsys, str(project), "--format", "json", "--fail-on-miss")
    assert code == 3
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["files"]["reason"] == "files: 1 changed (main.py)"
    assert steps["files"]["estimated_seconds"] == 3.0
    assert steps["config"]["reason"] == "parent changed (files)"
    assert steps["pip"]["status"] == "hit"
    assert "--fail-on-miss" in err


def test_no_record_keeps_history_unchanged(project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _plan(capsys, str(project), "--no-record")
    _, out, _ = _plan(capsys, str(project))
    assert "no earlier plan" in out
    _, out, _ = _plan(capsys, str(project))
    assert "same key as the last plan" in out


def test_fail_on_miss_on_first_plan(project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = _plan(capsys, str(project), "--fail-on-miss")
    assert code == 3


def test_dot(project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _plan(capsys, str(project), "--format", "dot")
    assert code == 0
    assert out.startswith('digraph "plan fastapi-cpu" {')
    assert '"pip" -> "files";' in out and out.rstrip().endswith("}")


def test_cache_dir_flag(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere"
    _plan(capsys, str(project), "--cache-dir", str(other))
    assert other.is_dir() and any(other.iterdir())


_CLI_AS_USER = "import sys; from builder.cli import main; sys.exit(main(sys.argv[1:]))"


def test_unwritable_cache_degrades_with_one_warning() -> None:
    # Root writes anywhere whatever the mode bits, so the CLI runs as an unprivileged user (tests/privileges.py).
    with traversable_tmp_dir() as root:
        project = copy_tree_readable(REPO / "fixtures" / "apps" / "fastapi-cpu", root / "fastapi-cpu")
        locked = root / "locked"
        locked.mkdir()
        locked.chmod(0o555)  # everyone may look inside, nobody but root may create the cache there
        done = run_python(_CLI_AS_USER, "plan", str(project), "--cache-dir", str(locked / "c"))
        created = (locked / "c").exists()
    assert done.returncode == 0, done.stderr
    assert "plan for fastapi-cpu" in done.stdout
    assert done.stderr.count("warning:") == 1 and "planning without history" in done.stderr, done.stderr
    assert not created


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_uncreatable_cache_dir_degrades_with_one_warning_even_as_root(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _plan(capsys, str(project), "--cache-dir", "/proc/builder-no-such-cache/c")
    assert code == 0 and "plan for fastapi-cpu" in out
    assert err.count("warning:") == 1 and "without history" in err


def test_cache_path_that_is_a_file_degrades_with_one_warning(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out, err = _plan(capsys, str(project), "--cache-dir", str(blocker))
    assert code == 0 and "plan for fastapi-cpu" in out
    assert err.count("warning:") == 1 and "without history" in err


def test_garbage_cache_database_never_crashes(
    project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plan(capsys, str(project))
    for db in cache_dir.rglob("*.db"):
        db.write_bytes(b"garbage" * 1000)
    code, out, _ = _plan(capsys, str(project))
    assert code == 0 and "plan for fastapi-cpu" in out
    code, out, _ = _plan(capsys, str(project))
    assert code == 0


def test_concurrent_plans_share_one_cache(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    env = {**os.environ, "BUILDER_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "builder", "plan", str(project), "--format", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert [r[2] for r in results] == [0, 0, 0, 0], [r[1] for r in results]
    keys = {json.dumps([s["key"] for s in json.loads(r[0])["steps"]]) for r in results}
    assert len(keys) == 1
    again = subprocess.run(
        [sys.executable, "-m", "builder", "plan", str(project)], env=env, capture_output=True, text=True, check=False
    )
    assert again.returncode == 0 and "same key as the last plan" in again.stdout


def test_invalid_config_exits_2(tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "x"\npython_version = "2.7"\n')
    code, _, err = _plan(capsys, str(tmp_path))
    assert code == 2 and "python_version" in err


def test_bad_base_image_exits_2(tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "x"\ndocker_base_image_url = "Not A Ref"\n'
    )
    code, _, err = _plan(capsys, str(tmp_path))
    assert code == 2
    assert "docker_base_image_url" in err and "Traceback" not in err


def test_resolve_without_uv_result_warns_and_plans(
    project: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from builder.deps.lock import uv
    from builder.errors import LockError

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise LockError("index unreachable")

    monkeypatch.setattr(uv, "compile_pip", fail)
    toml = project / "cerebrium.toml"  # an unpinned spec: all-pinned sets need no resolution
    toml.write_text(toml.read_text().replace('six = "==1.16.0"', 'six = ">=1.16"'))
    code, out, err = _plan(capsys, str(project), "--resolve")
    assert code == 0 and "plan for fastapi-cpu" in out
    assert "keys are based on the specs as written" in err


@pytest.mark.network
@pytest.mark.skipif(shutil.which("uv") is None and not (REPO / ".venv" / "bin" / "uv").exists(), reason="needs uv")
def test_resolve_pins_unpinned_requirements(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "r"\n[cerebrium.dependencies.pip]\nsix = "latest"\n'
    )
    (tmp_path / "main.py").write_text("print('x')\n")  # the default runtime runs it
    code, out, err = _plan(capsys, str(tmp_path), "--resolve", "--format", "json")
    assert code == 0, err
    pip = next(s for s in json.loads(out)["steps"] if s["id"] == "pip")
    assert "six==" in pip["inputs"]["requirements_txt"]
    assert pip["inputs"]["locked"] is True


def test_sigkill_while_planning_leaves_a_usable_cache(tmp_path: Path) -> None:
    """Kill ``builder plan`` at several points (while hashing, saving digests, recording); the next run works."""
    import signal

    project = tmp_path / "big"
    project.mkdir()
    (project / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "big"\n')
    (project / "main.py").write_text("print('x')\n")
    for i in range(3000):
        (project / f"f{i}.py").write_text(f"x = {i}\n" * 20)
    cache = tmp_path / "cache"
    env = {**os.environ, "BUILDER_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    for delay in (0.4, 0.8, 1.2, 1.6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "builder", "plan", str(project)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        (project / f"f{int(delay * 10)}.py").write_text("changed\n")
    done = subprocess.run(
        [sys.executable, "-m", "builder", "plan", str(project), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["app"] == "big"
