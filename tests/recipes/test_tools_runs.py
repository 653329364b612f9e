"""Tools mounts are writable only in a tools run that runs no project code (issue #20, finding 3).

Read back from both lowerings of every fixture app: a cache mount below ``TOOLS_DIR`` appears only
in an exec (LLB) or RUN (export) that is a tools run; a tools run mounts nothing of the project (no
project files, no generated requirements or specs, no index credentials) and runs only builder's
``tools_*.sh``; the step's own run sees the tools only as a read-only bind of the tools run's output.
Also: the in-build checkers (``wheel_check.py``, ``uv_check.py --keep``) and conda channel credentials.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.api import plan_project
from builder.deps._text import split_credentials
from builder.deps.conda import channel_credentials
from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.engines.dockerfile_export import render_dockerfile
from builder.plan.model import Plan, StepKind
from builder.recipes import run_specs
from builder.recipes.conda import locked_specs
from builder.recipes.script_text import script_file, script_text
from builder.recipes.tools import NETRC_SECRET_ID, RATTLER_SHA256, TOOLS_DIR, TOOLS_OUT
from tests.conftest import APP_NAMES

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"
RUN_APPS = [a for a in APP_NAMES if a != "dockerfile-app"]


def _plan(path: Path) -> Plan:
    plan, _, _ = plan_project(path, record=False)
    return plan


def _is_tools(target: str) -> bool:
    return target == TOOLS_DIR or target.startswith(TOOLS_DIR + "/")


def _execs(plan: Plan) -> list[tuple[str, Any, Any]]:
    definition = convert_plan(plan, ConvertOptions(ca_bundle=True, netrc=True)).definition
    names = definition.names()
    return [
        (names[d], op, definition) for d in definition.digests if (op := definition.op(d)).WhichOneof("op") == "exec"
    ]


def test_every_fixture_with_tools_has_tools_runs() -> None:
    kinds = {k for a in RUN_APPS for k, s in run_specs(_plan(APPS / a)).items() if s.tools is not None}
    assert kinds == {StepKind.PIP, StepKind.CONDA}  # uv (pip) and py-rattler (conda); python needs none
    for app in RUN_APPS:
        python = run_specs(_plan(APPS / app)).get(StepKind.PYTHON)
        assert python is None or not any(_is_tools(m.target) for m in python.caches)


def test_llb_tools_mounts_are_writable_only_in_tools_runs_that_mount_nothing_of_the_project() -> None:
    seen_tools = seen_checked = 0
    for app in RUN_APPS:
        for name, op, definition in _execs(_plan(APPS / app)):
            mounts = [m for m in op.exec.mounts if m.dest != "/"]
            tools_caches = [m for m in mounts if m.mountType == ops_pb2.CACHE and _is_tools(m.dest)]
            script = op.exec.meta.args[2]
            if tools_caches:
                seen_tools += 1
                assert script in (script_text("tools_uv.sh"), script_text("tools_rattler.sh")), name
                assert not op.exec.meta.args[4:5] or op.exec.meta.args[4].endswith("/bin/python")
                for m in mounts:  # only the tools caches and the CA bundle: nothing the project brings
                    assert m.mountType == ops_pb2.CACHE or (
                        m.mountType == ops_pb2.SECRET and m.secretOpt.ID != NETRC_SECRET_ID
                    ), (name, m.dest)
                continue
            for m in mounts:
                if _is_tools(m.dest):  # the step's own run: the checked copy, read-only, from a tools run
                    seen_checked += 1
                    source = definition.op(op.inputs[m.input].digest)
                    assert m.mountType == ops_pb2.BIND and m.readonly, (name, m.dest)
                    assert source.WhichOneof("op") == "exec" and m.selector.startswith(TOOLS_OUT + "/")
                    assert source.exec.meta.args[2].startswith("set -eu\n# The ")  # a tools_*.sh script
    assert seen_tools >= 2 and seen_checked == seen_tools


def _runs(dockerfile: str) -> list[tuple[str, str]]:
    """(stage name or '', RUN text joined) for every RUN."""
    out, stage, pending = [], "", ""
    for line in dockerfile.splitlines():
        if line.startswith("FROM "):
            m = re.search(r" AS (\S+)$", line)
            stage = m.group(1) if m else ""
        pending = (pending + " " + line.strip()) if pending else line
        if pending.endswith(" \\"):
            pending = pending[:-2]
            continue
        if pending.startswith("RUN "):
            out.append((stage, pending))
        pending = ""
    return out


def test_export_tools_mounts_are_writable_only_in_tools_stages() -> None:
    seen = 0
    for app in RUN_APPS:
        for stage, run in _runs(render_dockerfile(_plan(APPS / app)).dockerfile):
            flags = [
                dict(kv.split("=", 1) for kv in f.split(",") if "=" in kv) for f in re.findall(r"--mount=(\S+)", run)
            ]
            tools_caches = [f for f in flags if f["type"] == "cache" and _is_tools(f["target"])]
            if stage.startswith("builder-tools-"):
                seen += 1
                assert tools_caches and "/run/builder/scripts/tools_" in run
                assert all(f["type"] in ("cache", "secret") or f["source"] == ".builder/scripts" for f in flags)
                assert all(f.get("id") != NETRC_SECRET_ID for f in flags)
            else:
                assert not tools_caches, run
                for f in flags:
                    if _is_tools(f.get("target", "")):
                        assert f["type"] == "bind" and f["from"].startswith("builder-tools-") and ",rw" not in run
    assert seen >= 2


def test_the_export_names_stages_only_when_a_tools_run_needs_one() -> None:
    text = render_dockerfile(_plan(APPS / "minimal")).dockerfile
    tools = [r for r in run_specs(_plan(APPS / "minimal")).values() if r.tools is not None]
    assert (" AS builder-stage-0" in text) == bool(tools)


# --- the in-build checkers ------------------------------------------------------------------------------


def _py(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", script_file(script).decode(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_wheel_check_keeps_only_pinned_files(tmp_path: Path) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    good = folder / "py_rattler-good.whl"
    good.write_bytes(b"the real wheel")
    (folder / "py_rattler-evil.whl").write_bytes(b"import os; os.system('touch /tmp/pwned')")
    (folder / "link.whl").symlink_to(good)
    (folder / "sub").mkdir()
    (folder / "sub" / "x").write_text("x")
    pinned = hashlib.sha256(b"the real wheel").hexdigest()
    proc = _py("wheel_check.py", str(folder), pinned, *RATTLER_SHA256)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["py_rattler-good.whl"]
    assert proc.stdout.count("is not a pinned file") == 3 and "removed" in proc.stdout


def test_uv_check_keep_never_removes_the_read_only_copy(tmp_path: Path) -> None:
    tools = tmp_path / "checked"
    (tools / "bin").mkdir(parents=True)
    (tools / "bin" / "uv").write_bytes(b"#!/bin/sh\necho planted\n")
    private = tmp_path / "private"
    private.mkdir()
    proc = _py("uv_check.py", "--keep", str(tools), str(private), "0" * 64)
    assert proc.returncode == 1 and "is not the pinned uv" in proc.stderr
    assert (tools / "bin" / "uv").exists() and not (private / "uv").exists()
    good = hashlib.sha256(b"#!/bin/sh\necho planted\n").hexdigest()
    assert _py("uv_check.py", "--keep", str(tools), str(private), good).returncode == 0
    assert (private / "uv").read_bytes() == (tools / "bin" / "uv").read_bytes()


def test_locked_specs_come_from_the_lock_for_the_platform() -> None:
    lock = (
        "version: 1\npackage:\n"
        "- name: zlib\n  version: 1.3.1\n  manager: conda\n  platform: linux-64\n"
        "  url: https://conda.anaconda.org/conda-forge/linux-64/zlib-1.3.1-hb9d3cd8_2.conda\n"
        "- name: zlib\n  version: 1.3.1\n  manager: conda\n  platform: osx-64\n  url: https://x/zlib-1.3.1-h1.conda\n"
        "- name: six\n  version: 1.16.0\n  manager: pip\n  platform: linux-64\n  url: https://x/six.whl\n"
    )
    assert locked_specs(lock, "linux-64") == ["zlib==1.3.1=hb9d3cd8_2"]
    assert locked_specs("", "linux-64") == []


# --- conda channel credentials -----------------------------------------------------------------------------


def _conda_project(tmp_path: Path, token: str) -> Path:
    app = tmp_path / "app"
    shutil.copytree(APPS / "conda", app)
    text = (app / "cerebrium.toml").read_text()
    text = text.replace('zlib = "latest"', f'"https://alice:{token}@conda.example.com/private::zlib" = "latest"')
    (app / "cerebrium.toml").write_text(text)
    return app


def test_conda_channel_credentials_are_nowhere_but_the_netrc_secret(tmp_path: Path) -> None:
    from builder.api import _index_credentials
    from builder.config import load_config

    token = "S3cr3tT0ken9271"
    app = _conda_project(tmp_path, token)
    plan = _plan(app)
    conda = plan.step(StepKind.CONDA)
    assert "https://conda.example.com/private" in conda.inputs.channels
    converted = convert_plan(plan, ConvertOptions(ca_bundle=True, netrc=True))
    export = render_dockerfile(plan)
    blobs = [
        json.dumps(plan.to_json()),
        repr(plan),
        json.dumps(plan.keys),
        b"".join(converted.definition.ops).decode("utf-8", "replace"),
        export.dockerfile,
        *(t for _, t in export.files),
    ]
    for blob in blobs:
        assert token not in blob and "alice" not in blob
    assert ".builder/config/cerebrium.toml" in dict(export.files)  # the image gets the toml without them
    assert "!cerebrium.toml" not in export.dockerignore.splitlines()
    clean = tmp_path / "clean"
    shutil.copytree(app, clean)
    toml = (clean / "cerebrium.toml").read_text().replace(f"alice:{token}@", "")
    (clean / "cerebrium.toml").write_text(toml)
    clean_keys = _plan(clean).keys
    assert clean_keys.pop("config") != plan.keys["config"]  # the shipped toml says ***@ where they were
    assert clean_keys == {k: v for k, v in plan.keys.items() if k != "config"}  # the keys use the URL without them
    netrc = _index_credentials(load_config(app))
    assert netrc == f"machine conda.example.com login alice password {token}\n".encode()
    spec = run_specs(plan)[StepKind.CONDA]
    assert NETRC_SECRET_ID in {s.id for s in spec.secrets}
    assert NETRC_SECRET_ID not in {s.id for s in spec.tools.secrets}  # type: ignore[union-attr]
    conda_exec = [op for name, op, _ in _execs(plan) if name.startswith("[conda] conda install")]
    assert [m.secretOpt.ID for m in conda_exec[0].exec.mounts if m.mountType == ops_pb2.SECRET].count(
        NETRC_SECRET_ID
    ) == 1


def test_a_plan_without_channel_credentials_keeps_its_keys(tmp_path: Path) -> None:
    plain = _plan(APPS / "conda").step(StepKind.CONDA).key
    again = tmp_path / "again"
    shutil.copytree(APPS / "conda", again)
    assert _plan(again).step(StepKind.CONDA).key == plain


_HOST = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,8}){1,2}", fullmatch=True)
_SECRET = st.text(
    alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,;=:%@/?#~_-"), min_size=8, max_size=30
)
_PATH = st.from_regex(r"(/[a-z0-9._-]{1,10}){0,3}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(host=_HOST, user=st.from_regex(r"[A-Z][A-Za-z0-9._-]{0,10}", fullmatch=True), password=_SECRET, path=_PATH)
def test_credentials_are_split_out_of_any_url(host: str, user: str, password: str, path: str) -> None:
    url = f"https://{quote(user, safe='')}:{quote(password, safe='')}@{host}{path}"
    clean, creds = split_credentials(url)
    assert clean == f"https://{host}{path}"
    assert creds == (host, user, password)
    channel, channel_creds = channel_credentials(url, key_path="k")
    assert channel == clean.rstrip("/") and channel_creds == creds
