"""The pip step's script itself, run with the host's /bin/sh against a fake ``uv`` that records its calls.

What it proves for uv's ``offline-first`` mode (every line pinned): requirement lines installed
before with the same cache and Python are installed with ``--offline``, only new lines send the
whole file online, an offline failure falls back to the plain online install, the record of
installed lines is updated only after success and replaced whole, and the log marker is the
first output line, exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.engines.buildkit import scripts
from builder.engines.buildkit.convert import KNOWN_DIR, pip_argv
from builder.plan.steps import pip

FAKE_UV = """#!{python}
import json, os, sys
args = sys.argv[1:]
files = {{a: open(a).read().splitlines() for p, a in zip(args, args[1:]) if p in ("-r", "-c")}}
with open(os.environ["FAKE_UV_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "files": files}}) + "\\n")
offline = "--offline" in args
if os.environ.get("FAKE_UV_FAIL") == ("offline" if offline else "online"):
    print("error: fake uv failed", file=sys.stderr)
    sys.exit(2)
print("fake uv installed " + " ".join(files[args[args.index("-r") + 1]]))
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    lines: list[str]
    calls: list[dict[str, object]]


class PipStep:
    """One project's pip step on the host: fixed tools/venv/cache paths under ``root``."""

    def __init__(self, root: Path, venv_python: str | None = None) -> None:
        self.root = root
        self.tools = root / "tools"
        uv = self.tools / "uv" / "bin" / "uv"
        uv.parent.mkdir(parents=True)
        uv.write_text(FAKE_UV.format(python=sys.executable))
        uv.chmod(0o755)
        self.venv = root / "venv"
        (self.venv / "bin").mkdir(parents=True)
        python = self.venv / "bin" / "python"
        if venv_python is None:
            python.symlink_to(sys.executable)
        else:
            python.write_text(venv_python)
            python.chmod(0o755)
        self.cache = root / "uv-cache"
        self.log = root / "uv-calls.jsonl"

    @property
    def records(self) -> Path:
        return self.cache / KNOWN_DIR

    def run(self, requirements: str, constraints: str = "", fail: str = "", records: Path | None = None) -> Run:
        inputs = pip.Inputs("uv", requirements, constraints, cache_mounts=pip.UV_CACHE)
        argv = pip_argv(inputs)
        assert argv[8:] == ["offline-first", f"{pip.UV_CACHE[0].target}/{KNOWN_DIR}"]
        return self.run_argv(argv, requirements, constraints, fail=fail, records=records)

    def run_argv(self, argv: list[str], requirements: str, constraints: str = "", fail: str = "",
                 records: Path | None = None) -> Run:
        line = f"tools={scripts.TOOLS_DIR}/uv\n"
        assert argv[2].count(line) == 1
        script = argv[2].replace(line, f"tools={self.tools}/uv\n")
        req, cons = self.root / "requirements.txt", self.root / "constraints.txt"
        req.write_text(requirements)
        cons.write_text(constraints)
        host = [str(self.venv), str(req), str(cons)]
        if len(argv) > 9:
            host.append(str(records or self.records))
        args = [*argv[:2], script, argv[3], argv[4], host[0], host[1], host[2], argv[8], *host[3:]]
        self.log.unlink(missing_ok=True)
        env = {"PATH": os.environ["PATH"], "FAKE_UV_LOG": str(self.log), "FAKE_UV_FAIL": fail}
        done = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60, check=False)
        calls = [json.loads(ln) for ln in self.log.read_text().splitlines()] if self.log.exists() else []
        lines = done.stdout.splitlines()
        assert lines[0] == "UV_PIP_INSTALL_STARTED", lines
        assert [ln for ln in lines if "INSTALL_STARTED" in ln] == ["UV_PIP_INSTALL_STARTED"]
        return Run(done.returncode, lines, calls)

    def record(self) -> list[str]:
        (path,) = self.records.glob("*.txt")
        return path.read_text().splitlines()


def uv_lines(run: Run) -> list[str]:
    return [ln for ln in run.lines if ln.startswith("uv: ")]


def installs(run: Run) -> list[tuple[bool, list[str]]]:
    """(offline?, the requirement lines of its ``-r`` file) per uv call."""
    out = []
    for call in run.calls:
        argv = call["argv"]
        assert isinstance(argv, list) and argv[:4] == ["pip", "install", "--python", argv[3]]
        files = call["files"]
        assert isinstance(files, dict)
        out.append(("--offline" in argv, files[argv[argv.index("-r") + 1]]))
    return out


A = "six==1.16.0"
B = "idna==3.7"
B2 = "idna==3.8"
C = 'tomli==2.0.1; python_version < "3.11"'


@pytest.fixture
def step(tmp_path: Path) -> PipStep:
    return PipStep(tmp_path)


def test_first_build_resolves_everything_online(step: PipStep) -> None:
    run = step.run(f"{A}\n{B}\n")
    assert run.returncode == 0
    assert installs(run) == [(False, [A, B])]
    assert uv_lines(run) == ["uv: 2 of 2 requirements are new here: resolving them with the index"]
    assert step.record() == [A, B]


def test_changed_pin_installs_known_lines_offline_then_the_whole_file_online(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n{C}\n")
    run = step.run(f"{A}\n{B2}\n{C}\n")
    assert run.returncode == 0
    assert installs(run) == [(True, [A, C]), (False, [A, B2, C])]
    assert uv_lines(run) == [
        "uv: 2 of 3 requirements installed from the cache (offline)",
        "uv: 1 of 3 requirements are new here: resolving them with the index",
    ]
    assert "fake uv installed " + " ".join([A, C]) in run.lines  # the offline install's own output is shown
    assert step.record() == [B, A, B2, C]  # older lines first, so the cap drops them first


def test_unchanged_set_never_asks_the_index(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    run = step.run(f"{A}\n{B}\n")
    assert installs(run) == [(True, [A, B])]
    assert uv_lines(run) == ["uv: 2 of 2 requirements installed from the cache (offline)"]


def test_going_back_to_an_earlier_pin_is_offline(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    step.run(f"{A}\n{B2}\n")
    run = step.run(f"{A}\n{B}\n")
    assert installs(run) == [(True, [A, B])]


def test_offline_failure_falls_back_to_the_whole_file_online(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    run = step.run(f"{A}\n{B2}\n", fail="offline")
    assert run.returncode == 0
    assert installs(run) == [(True, [A]), (False, [A, B2])]
    assert uv_lines(run) == [
        "uv: the cache no longer has what the 1 known requirements need (pruned?): resolving all 2 with the index"
    ]
    assert "error: fake uv failed" not in run.lines  # one clear line instead of uv's offline error
    assert step.record() == [B, A, B2]


def test_failed_install_fails_the_step_and_leaves_the_record(step: PipStep) -> None:
    step.run(f"{A}\n")
    run = step.run(f"{A}\n{B}\n", fail="online")
    assert run.returncode != 0
    assert "error: fake uv failed" in run.lines
    assert step.record() == [A]
    assert not list(step.records.glob(".run.*"))  # the temporary directory went with the failure


def test_constraints_go_with_both_installs(step: PipStep) -> None:
    step.run(f"{A}\n", constraints="idna<4\n")
    run = step.run(f"{A}\n{B}\n", constraints="idna<4\n")
    assert [c["argv"][-2:] for c in run.calls] == [["-c", str(step.root / "constraints.txt")]] * 2
    assert [c["files"][str(step.root / "constraints.txt")] for c in run.calls] == [["idna<4"]] * 2


def test_record_is_keyed_by_the_venv_interpreter(tmp_path: Path) -> None:
    step = PipStep(tmp_path / "real")
    step.run(f"{A}\n")
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or "other"
    except (ValueError, OSError):
        libc = "other"
    key = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}-{libc.replace(' ', '')}"
    assert [p.name for p in step.records.iterdir()] == [f"{key}.txt"]

    shared = step.records  # another Python (same uv cache mount) does not take this record
    other = PipStep(tmp_path / "other", venv_python="#!/bin/sh\necho cpython-312-linux-aarch64-glibc2.36\n")
    run = other.run(f"{A}\n", records=shared)
    assert installs(run) == [(False, [A])]
    assert sorted(p.name for p in shared.iterdir()) == sorted([f"{key}.txt", "cpython-312-linux-aarch64-glibc2.36.txt"])


def test_no_record_when_the_interpreter_gives_no_key(tmp_path: Path) -> None:
    step = PipStep(tmp_path, venv_python="#!/bin/sh\nexit 1\n")
    for _ in range(2):
        run = step.run(f"{A}\n")
        assert installs(run) == [(False, [A])]
        assert uv_lines(run) == []
    assert not step.records.exists()


def test_online_mode_is_one_plain_install(step: PipStep) -> None:
    argv = pip_argv(pip.Inputs("uv", "six>=1.16\n", cache_mounts=pip.UV_CACHE))
    assert argv[8:] == ["online"]
    for _ in range(2):
        run = step.run_argv(argv, "six>=1.16\n")
        assert run.returncode == 0
        assert installs(run) == [(False, ["six>=1.16"])]
    assert not step.records.exists()


def test_record_keeps_the_newest_lines_within_its_cap(step: PipStep) -> None:
    step.run(f"{A}\n")
    (path,) = step.records.glob("*.txt")
    path.write_text("".join(f"pkg{i}==1.0\n" for i in range(5000)) + f"{A}\n")
    run = step.run(f"{A}\n{B}\n")
    assert installs(run) == [(True, [A]), (False, [A, B])]
    record = path.read_text().splitlines()
    assert len(record) == 5000
    assert record[-2:] == [A, B] and "pkg0==1.0" not in record and "pkg2==1.0" in record


def test_concurrent_builds_leave_a_whole_record(tmp_path: Path) -> None:
    """Builds sharing the cache mount replace the record by rename: it is always whole."""
    steps = [PipStep(tmp_path / f"b{i}") for i in range(6)]
    shared = tmp_path / "shared-records"
    sets = [[f"pkg{j}==1.{i}" for j in range(200)] for i in range(len(steps))]
    procs = []
    for step, lines in zip(steps, sets, strict=True):
        req = step.root / "requirements.txt"
        req.write_text("\n".join(lines) + "\n")
        (step.root / "constraints.txt").write_text("")
        argv = pip_argv(pip.Inputs("uv", req.read_text(), cache_mounts=pip.UV_CACHE))
        script = argv[2].replace(f"tools={scripts.TOOLS_DIR}/uv\n", f"tools={step.tools}/uv\n")
        args = [*argv[:2], script, "pip", "uv", str(step.venv), str(req), str(step.root / "constraints.txt"),
                "offline-first", str(shared)]
        env = {"PATH": os.environ["PATH"], "FAKE_UV_LOG": str(step.log), "FAKE_UV_FAIL": ""}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    assert [p.wait(timeout=60) for p in procs] == [0] * len(procs)
    (path,) = shared.glob("*.txt")
    record = path.read_text().splitlines()
    assert record and len(record) == len(set(record))
    assert set(record) <= {ln for s in sets for ln in s}
    assert all(set(s) <= set(record) or not set(s) & set(record) for s in sets)  # never a partial write
    assert not list(shared.glob(".run.*"))


def test_pip_installer_marker(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text('#!/bin/sh\necho "python $*"\n')
    (venv / "bin" / "python").chmod(0o755)
    req = tmp_path / "requirements.txt"
    req.write_text(f"{A}\n")
    argv = pip_argv(pip.Inputs("pip", f"{A}\n"))
    assert argv[8:] == ["online"]
    done = subprocess.run([*argv[:5], str(venv), str(req), str(tmp_path / "none.txt"), *argv[8:]],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == [
        "PIP_INSTALL_STARTED",
        f"python -m pip install --disable-pip-version-check -r {req}",
    ]
