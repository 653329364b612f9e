"""The pip step's script itself, run with the host's /bin/sh against a fake ``uv`` that records its calls.

What it proves for uv's ``offline-first`` mode (every line pinned): requirement lines installed
before with the same cache and Python are installed with ``--offline``, only new lines send the
whole file online, an offline failure falls back to the plain online install, the record of
installed lines is updated only after success and replaced whole, and the log marker is the
first output line, exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from builder.plan.model import Step, StepKind
from builder.plan.steps import pip
from builder.recipes import pip as pip_recipe
from builder.recipes import tools
from builder.recipes.context import RecipeContext
from builder.recipes.pip import KNOWN_DIR
from tests.recipes.helpers import pip_argv, pip_inputs

#: A fake ``uv`` with a cache: online installs (and the ``--target`` fetch) add their lines to
#: FAKE_UV_CACHE; an ``--offline`` install fails unless every line it asks for is there.
#: FAKE_UV_FAIL=online (every online call) or =target (just the fetch) makes those calls fail.
FAKE_UV = """#!{python}
import json, os, sys
args = sys.argv[1:]
files = {{a: open(a).read().splitlines() for p, a in zip(args, args[1:]) if p in ("-r", "-c")}}
with open(os.environ["FAKE_UV_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "files": files}}) + "\\n")
wanted = files[args[args.index("-r") + 1]]
cache = os.environ["FAKE_UV_CACHE"]
cached = open(cache).read().splitlines() if os.path.exists(cache) else []
fail = os.environ.get("FAKE_UV_FAIL")
if "--offline" in args:
    missing = [w for w in wanted if w not in cached]
    if missing:
        sys.exit("error: not in the cache: " + " ".join(missing))
elif fail == "online" or (fail == "target" and "--target" in args):
    sys.exit("error: fake index failure")
else:
    with open(cache, "a") as out:
        out.writelines(w + "\\n" for w in wanted)
print("fake uv installed " + " ".join(wanted))
"""


#: The fake uv stands in for the pinned one: the script under test is given its digest as the pin.
FAKE_UV_SHA256 = hashlib.sha256(FAKE_UV.format(python=sys.executable).encode()).hexdigest()


@dataclass(frozen=True)
class Run:
    returncode: int
    lines: list[str]
    calls: list[dict[str, Any]]
    tools_lines: list[str] = field(default_factory=list)  # the tools run's output (it runs first)

    @property
    def installs(self) -> list[tuple[str, list[str]]]:
        """("offline" | "online", the lines of its ``-r`` file) per install into the venv, in order."""
        return [
            ("offline" if "--offline" in c["argv"] else "online", requirement_lines(c))
            for c in self.calls
            if "--target" not in c["argv"]
        ]

    @property
    def fetches(self) -> list[list[str]]:
        """The lines of each ``--target`` fetch (it runs beside the offline install: order unknown)."""
        return [requirement_lines(c) for c in self.calls if "--target" in c["argv"]]

    @property
    def summary(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("uv: ")]


def requirement_lines(call: dict[str, Any]) -> list[str]:
    argv = call["argv"]
    assert argv[:3] == ["pip", "install", "--python"]
    return list(call["files"][argv[argv.index("-r") + 1]])


class PipStep:
    """One project's pip step on the host, as a build runs it: the tools run (``tools_uv.sh``: fake uv in the tools
    cache dir checked and copied to a fresh checked dir), then ``pip.sh`` with a venv, a record dir, a fake cache."""

    def __init__(self, root: Path, venv_python: str | None = None, with_uv: bool = True) -> None:
        self.root = root
        self.tools = root / "tools"  # the tools cache mount's root
        self.checked = root / "checked" / "uv"  # what the tools run leaves (the step sees it read-only)
        uv = self.tools / "uv" / tools.UV_VERSION / "bin" / "uv"
        if with_uv:
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
        self.records = root / "uv-cache" / KNOWN_DIR
        self.fake_cache = root / "fake-uv-cache.txt"
        self.log = root / "uv-calls.jsonl"
        self.extra_env: dict[str, str] = {}

    def tools_argv(self) -> list[str]:
        """The tools run's argv with the host's paths in place of the build's."""
        spec = pip_recipe.recipe(Step(StepKind.PIP, "sha256:0", (), pip_inputs("uv", f"{A}\n")), RecipeContext())
        assert spec.tools is not None
        argv = list(spec.tools.argv())
        tools_line = f"tools={tools.TOOLS_DIR}/uv/{tools.UV_VERSION}\n"
        assert argv[2].count(tools_line) == 1
        pins = " ".join(tools.UV_SHA256)
        assert argv[2].count(pins) == 2  # uv_ready checks before use and after a fetch
        text = argv[2].replace(tools_line, f"tools={self.tools}/uv/{tools.UV_VERSION}\n").replace(pins, FAKE_UV_SHA256)
        assert argv[4:] == ["/opt/venv/bin/python", f"{tools.TOOLS_OUT}/uv"]
        return [*argv[:2], text, argv[3], str(self.venv / "bin" / "python"), str(self.checked)]

    def argv(self, requirements: str, constraints: str = "", records: Path | None = None) -> list[str]:
        """pip_argv's argv with the host's paths in place of the build's."""
        argv = pip_argv(pip_inputs("uv", requirements, constraints))
        checked_line = f"checked={tools.TOOLS_DIR}/uv  # the tools run's checked uv, read-only here\n"
        assert argv[2].count(checked_line) == 1
        req, cons = self.root / "requirements.txt", self.root / "constraints.txt"
        req.write_text(requirements)
        cons.write_text(constraints)
        assert argv[5:8] == ["/opt/venv", "/run/builder/pip/requirements.txt", "/run/builder/pip/constraints.txt"]
        pins = " ".join(tools.UV_SHA256)
        assert argv[2].count(pins) == 1  # the step checks the tools run's copy again before running it
        text = argv[2].replace(checked_line, f"checked={self.checked}\n").replace(pins, FAKE_UV_SHA256)
        host = [*argv[:2], text, *argv[3:5], str(self.venv), str(req), str(cons), argv[8]]
        if argv[8] == "offline-first":
            assert argv[9:] == [f"{pip.UV_CACHE[0].target}/{KNOWN_DIR}"]
            host.append(str(records or self.records))
        return host

    def env(self, fail: str = "") -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "FAKE_UV_LOG": str(self.log),
            "FAKE_UV_CACHE": str(self.fake_cache),
            "FAKE_UV_FAIL": fail,
            "HOME": str(self.root),
            **self.extra_env,
        }

    def prepare(self, fail: str = "") -> subprocess.CompletedProcess[str]:
        """The tools run, on a fresh checked dir (each tools run starts on a fresh filesystem)."""
        shutil.rmtree(self.checked.parent, ignore_errors=True)
        return subprocess.run(
            self.tools_argv(),
            env=self.env(fail),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )

    def run(self, requirements: str, constraints: str = "", fail: str = "", records: Path | None = None) -> Run:
        self.log.unlink(missing_ok=True)
        prepared = self.prepare(fail)
        tools_lines = prepared.stdout.splitlines()
        if prepared.returncode != 0:  # the step never runs without its checked tools
            return Run(prepared.returncode, [], [], tools_lines)
        done = subprocess.run(
            self.argv(requirements, constraints, records),
            env=self.env(fail),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        calls = [json.loads(ln) for ln in self.log.read_text().splitlines()] if self.log.exists() else []
        lines = done.stdout.splitlines()
        assert lines[0] == "UV_PIP_INSTALL_STARTED", lines
        assert [ln for ln in lines if "INSTALL_STARTED" in ln] == ["UV_PIP_INSTALL_STARTED"]
        assert not list((records or self.records).glob(".run.*"))  # its temporary directory is gone
        return Run(done.returncode, lines, calls, tools_lines)

    def record(self) -> list[str]:
        (path,) = self.records.glob("*.txt")
        return path.read_text().splitlines()


A = "six==1.16.0"
B = "idna==3.7"
B2 = "idna==3.8"
C = 'tomli==2.0.1; python_version < "3.11"'
NEW_2 = "uv: 2 of 2 requirements are new here: resolving them with the index"


@pytest.fixture
def step(tmp_path: Path) -> PipStep:
    return PipStep(tmp_path)


def test_first_build_resolves_everything_online(step: PipStep) -> None:
    run = step.run(f"{A}\n{B}\n")
    assert run.returncode == 0
    assert run.installs == [("online", [A, B])] and run.fetches == []
    assert run.summary == [NEW_2]
    assert step.record() == [A, B]


def test_changed_pin_known_lines_offline_new_line_fetched_meanwhile(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n{C}\n")
    run = step.run(f"{A}\n{B2}\n{C}\n")
    assert run.returncode == 0
    assert run.fetches == [[B2]]  # only the changed line asks the index
    (fetch,) = (c["argv"] for c in run.calls if "--target" in c["argv"])
    assert fetch[fetch.index("--link-mode") + 1] == "symlink"
    assert Path(fetch[fetch.index("--target") + 1]).parent.parent == step.records  # in the cache mount
    assert run.installs == [("offline", [A, C]), ("offline", [A, B2, C])]  # the whole file, last
    assert run.summary == [
        "uv: 2 of 3 requirements installed from the cache (offline)",
        "uv: 1 of 3 requirements are new here: resolving them with the index",
    ]
    assert f"fake uv installed {A} {C}" in run.lines  # uv's own output of the offline installs is shown
    assert step.record() == [B, A, B2, C]  # older lines first, so the cap drops them first


def test_unchanged_set_never_asks_the_index(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    run = step.run(f"{A}\n{B}\n")
    assert run.installs == [("offline", [A, B])] and run.fetches == []
    assert run.summary == ["uv: 2 of 2 requirements installed from the cache (offline)"]


def test_going_back_to_an_earlier_pin_is_offline(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    step.run(f"{A}\n{B2}\n")
    run = step.run(f"{A}\n{B}\n")
    assert run.installs == [("offline", [A, B])] and run.fetches == []


def test_pruned_cache_falls_back_to_the_whole_file_online(step: PipStep) -> None:
    step.run(f"{A}\n{B}\n")
    step.fake_cache.unlink()
    run = step.run(f"{A}\n{B2}\n")
    assert run.returncode == 0
    assert run.installs == [("offline", [A]), ("online", [A, B2])]
    assert run.summary == [
        "uv: the cache no longer has what the 1 known requirements need (pruned?): resolving all 2 with the index"
    ]
    assert not any(ln.startswith("error:") for ln in run.lines)  # one clear line instead of uv's offline error
    assert step.record() == [B, A, B2]


def test_failed_fetch_falls_back_to_the_whole_file_online(step: PipStep) -> None:
    step.run(f"{A}\n")
    run = step.run(f"{A}\n{B}\n", fail="target")  # e.g. a uv without --target
    assert run.returncode == 0
    assert run.installs == [("offline", [A]), ("offline", [A, B]), ("online", [A, B])]
    assert run.summary == [
        "uv: 1 of 2 requirements installed from the cache (offline)",
        "uv: 1 of 2 requirements are new here: resolving them with the index",
        "uv: the cache still misses something the new requirements need: resolving all 2 with the index",
    ]
    assert step.record() == [A, B]


def test_failed_install_fails_the_step_and_leaves_the_record(step: PipStep) -> None:
    step.run(f"{A}\n")
    run = step.run(f"{A}\n{B}\n", fail="online")
    assert run.returncode != 0
    assert run.lines[-1] == "error: fake index failure"  # uv's own error, from the online install
    assert step.record() == [A]


def test_constraints_go_with_every_call(step: PipStep) -> None:
    cons = str(step.root / "constraints.txt")
    step.run(f"{A}\n", constraints="idna<4\n")
    run = step.run(f"{A}\n{B}\n", constraints="idna<4\n")
    assert len(run.calls) == 3
    assert all(c["argv"][-2:] == ["-c", cons] and c["files"][cons] == ["idna<4"] for c in run.calls)


#: A Python that runs ``-I -S -c CODE ARGS`` like the real one but reports another platform.
OTHER_PLATFORM = """#!{python}
import sys, sysconfig
sysconfig.get_platform = lambda: "linux-aarch64"
args = sys.argv[1:]
code = args[args.index("-c") + 1]
sys.argv = ["-c", *args[args.index("-c") + 2:]]
exec(compile(code, "<string>", "exec"), {{"__name__": "__main__"}})
"""


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
    other = PipStep(tmp_path / "other", venv_python=OTHER_PLATFORM.format(python=sys.executable))
    run = other.run(f"{A}\n", records=shared)
    assert run.installs == [("online", [A])]
    other_key = f"{sys.implementation.cache_tag}-linux-aarch64-{libc.replace(' ', '')}"
    assert sorted(p.name for p in shared.iterdir()) == sorted([f"{key}.txt", f"{other_key}.txt"])
    assert other.run(f"{A}\n", records=shared).installs == [("offline", [A])]  # its own record, next time


def test_no_record_when_the_interpreter_gives_no_key(tmp_path: Path) -> None:
    # an interpreter that only checks uv (the uv_check.py text) and fails everything else
    only_checks_uv = f'#!/bin/sh\ncase "$4" in *"Copy the pinned uv"*) exec {sys.executable} "$@";; esac\nexit 1\n'
    step = PipStep(tmp_path, venv_python=only_checks_uv)
    for _ in range(2):
        run = step.run(f"{A}\n")
        assert run.installs == [("online", [A])]
        assert run.summary == []
    assert not step.records.exists()


def test_online_mode_is_one_plain_install(step: PipStep) -> None:
    assert step.argv("six>=1.16\n")[8:] == ["online"]
    for _ in range(2):
        run = step.run("six>=1.16\n")
        assert run.returncode == 0
        assert run.installs == [("online", ["six>=1.16"])] and run.summary == []
    assert not step.records.exists()


def test_record_keeps_the_newest_lines_within_its_cap(step: PipStep) -> None:
    step.run(f"{A}\n")
    (path,) = step.records.glob("*.txt")
    path.write_text("".join(f"pkg{i}==1.0\n" for i in range(5000)) + f"{A}\n")
    run = step.run(f"{A}\n{B}\n")
    assert run.installs == [("offline", [A]), ("offline", [A, B])] and run.fetches == [[B]]
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
        assert step.prepare().returncode == 0  # each build's tools run
        argv = step.argv("\n".join(lines) + "\n", records=shared)
        procs.append(subprocess.Popen(argv, env=step.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
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
    argv = pip_argv(pip_inputs("pip", f"{A}\n"))
    assert argv[8:] == ["online"]
    done = subprocess.run(
        [*argv[:5], str(venv), str(req), str(tmp_path / "none.txt"), *argv[8:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "PIP_INSTALL_STARTED",
        f"python -m pip install --disable-pip-version-check -r {req}",
    ]


#: The venv's interpreter for the bootstrap tests: ``-m pip install ... --target DIR uv==X`` is
#: logged and puts the fake uv in DIR/bin (no network); everything else runs the real Python.
FAKE_PIP_PYTHON = """#!/bin/sh
if [ "$1" = -I ] && [ "$2" = -m ] && [ "$3" = pip ]; then shift; fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
  echo "$*" >> "$FAKE_PIP_LOG"
  while [ "$#" -gt 1 ] && [ "$1" != --target ]; do shift; done
  mkdir -p "$2/bin" && cp "$FAKE_UV_SOURCE" "$2/bin/uv" && chmod 755 "$2/bin/uv"
  exit 0
fi
exec {python} "$@"
"""


def bootstrap_step(tmp_path: Path, index_url: str) -> PipStep:
    fake_uv = tmp_path / "fake-uv"
    fake_uv.write_text(FAKE_UV.format(python=sys.executable))
    step = PipStep(tmp_path, venv_python=FAKE_PIP_PYTHON.format(python=sys.executable), with_uv=False)
    step.extra_env = {
        "PIP_INDEX_URL": index_url,
        "PIP_CONFIG_FILE": os.devnull,
        "FAKE_PIP_LOG": str(tmp_path / "pip.log"),
        "FAKE_UV_SOURCE": str(fake_uv),
    }
    return step


def test_missing_uv_comes_from_its_wheel_without_pip(tmp_path: Path) -> None:
    from tests.engines.test_uv_boot import Index, wheel_bytes

    index = Index(wheel_bytes(FAKE_UV.format(python=sys.executable).encode()))
    try:
        step = bootstrap_step(tmp_path, index.url)
        run = step.run(f"{A}\n")
    finally:
        index.close()
    assert run.returncode == 0, run.lines
    assert run.tools_lines[0].startswith(f"uv: installed uv {tools.UV_VERSION} from http://127.0.0.1:")
    assert run.installs == [("online", [A])]
    assert not (tmp_path / "pip.log").exists()  # pip never ran
    again = step.run(f"{A}\n")  # the next build finds it in the tools mount
    assert again.returncode == 0 and not [ln for ln in again.lines + again.tools_lines if "installed uv" in ln]


def test_missing_uv_falls_back_to_pip_when_the_quick_install_cannot(tmp_path: Path) -> None:
    step = bootstrap_step(tmp_path, "http://127.0.0.1:9/simple")  # nothing listens on the discard port
    run = step.run(f"{A}\n")
    assert run.returncode == 0, run.lines
    assert run.tools_lines[0].startswith(f"uv: quick install of uv {tools.UV_VERSION} not possible (")
    pip_calls = (tmp_path / "pip.log").read_text().splitlines()
    assert pip_calls == [
        f"-m pip install -q --disable-pip-version-check --target {step.tools}/uv/"
        f"{tools.UV_VERSION} uv=={tools.UV_VERSION}"
    ]
    assert run.installs == [("online", [A])]


def test_record_lives_in_the_shared_uv_cache_mount_in_llb_and_dockerfile(app_build_basic: Path) -> None:
    """Both engines run the same argv, and its record dir is inside the uv cache mount, never in a layer."""
    from builder.api import plan_project
    from builder.engines.buildkit._pb import ops_pb2
    from builder.engines.buildkit.convert import convert_plan
    from builder.engines.dockerfile_export import render_dockerfile

    plan, _, _ = plan_project(app_build_basic, record=False, cache_dir=str(app_build_basic.parent / "cache"))
    inputs = plan.step("pip").inputs
    assert inputs.installer == "uv"
    argv = pip_argv(inputs)
    assert argv[8] == "offline-first"
    (mount,) = (m for m in inputs.cache_mounts if argv[9].startswith(m.target + "/"))
    assert mount.sharing == "shared"  # concurrent builds share it: hence the rename-only record updates

    converted = convert_plan(plan)
    execs = [ops_pb2.Op.FromString(b).exec for b in converted.definition.ops]
    (pip_exec,) = (e for e in execs if list(e.meta.args) == argv)
    caches = {m.dest: m for m in pip_exec.mounts if m.mountType == ops_pb2.CACHE}
    assert caches[mount.target].cacheOpt.ID == mount.id
    assert caches[mount.target].cacheOpt.sharing == ops_pb2.SHARED

    dockerfile = render_dockerfile(plan).dockerfile
    assert f"--mount=type=cache,id={mount.id},target={mount.target},sharing=shared" in dockerfile
    assert json.dumps(argv[4:])[1:-1] in dockerfile  # the same arguments, record dir included


def test_blank_and_comment_lines_are_not_requirements(step: PipStep) -> None:
    text = f"{A}\n\n   \n# a note\n  # indented\n{B}\n"
    assert step.run(text).summary == [NEW_2]
    assert step.record() == [A, B]
    run = step.run(text)
    assert run.installs == [("offline", [A, B])]
    assert run.summary == ["uv: 2 of 2 requirements installed from the cache (offline)"]


#: A uv another project's build backend could leave in a shared tools mount: it leaves a marker when run.
POISON_UV = """#!/bin/sh
touch "$POISON_MARKER"
exit 0
"""


def test_a_poisoned_uv_in_the_tools_mount_is_removed_fetched_again_and_never_run(tmp_path: Path) -> None:
    from tests.engines.test_uv_boot import Index, wheel_bytes

    index = Index(wheel_bytes(FAKE_UV.format(python=sys.executable).encode()))
    try:
        step = bootstrap_step(tmp_path, index.url)
        marker = tmp_path / "poison-ran"
        step.extra_env["POISON_MARKER"] = str(marker)
        poisoned = step.tools / "uv" / tools.UV_VERSION / "bin" / "uv"
        poisoned.parent.mkdir(parents=True)
        poisoned.write_text(POISON_UV)
        poisoned.chmod(0o755)
        run = step.run(f"{A}\n")
    finally:
        index.close()
    assert run.returncode == 0, run.lines
    assert not marker.exists()
    assert any(
        ln.startswith("uv: the uv in the tools cache mount is not the pinned uv (sha256 ") for ln in run.tools_lines
    )
    assert any(ln.startswith(f"uv: installed uv {tools.UV_VERSION} from http://127.0.0.1:") for ln in run.tools_lines)
    assert run.installs == [("online", [A])]  # the re-fetched, pinned uv did the install
    assert poisoned.read_text() == FAKE_UV.format(python=sys.executable)


def test_a_symlinked_uv_in_the_tools_mount_is_not_followed(tmp_path: Path) -> None:
    step = bootstrap_step(tmp_path, "http://127.0.0.1:9/simple")
    real = tmp_path / "pinned-looking-uv"
    real.write_text(FAKE_UV.format(python=sys.executable))  # right bytes, but reached through a link
    real.chmod(0o755)
    link = step.tools / "uv" / tools.UV_VERSION / "bin" / "uv"
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    run = step.run(f"{A}\n")
    assert run.returncode == 0, run.lines
    assert any("is not the pinned uv (sha256 unreadable" in ln for ln in run.tools_lines)
    assert real.exists()  # the link was dropped, not what it pointed at
    assert (tmp_path / "pip.log").exists()  # uv came again (here through the pip fallback)


def test_a_uv_that_stays_wrong_after_the_fetch_fails_the_step_without_running_it(tmp_path: Path) -> None:
    step = bootstrap_step(tmp_path, "http://127.0.0.1:9/simple")
    marker = tmp_path / "poison-ran"
    source = tmp_path / "fake-uv"
    source.write_text(POISON_UV)  # the fallback installer itself delivers a wrong uv
    step.extra_env["POISON_MARKER"] = str(marker)
    run = step.run(f"{A}\n")
    assert run.returncode != 0
    assert not marker.exists() and run.installs == []
    assert f"uv: no uv {tools.UV_VERSION} matching its pinned sha256 could be fetched for this platform" in (
        run.tools_lines
    )
