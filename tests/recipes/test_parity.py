"""Both lowerings of every RunSpec agree on everything, for every fixture app.

The LLB ``builder build`` sends and the Dockerfile export are each read back into one normal
form per step (the script text and its arguments, every mount with its id, sharing and content,
the secret, the environment the run sees, the working directory and user) and compared with
each other and with the RunSpec itself, so a fact one lowering drops or invents fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from builder.api import plan_project
from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.convert import ConvertOptions, convert_plan, step_from_name, vertex_name
from builder.engines.dockerfile_export import GENERATED_DIR, SCRIPTS_DIR, SCRIPTS_TARGET, render_dockerfile
from builder.plan.model import Plan, StepKind
from builder.recipes import RECIPES, RunSpec, run_specs
from builder.recipes.script_text import script_text
from builder.recipes.tools import DEFAULT_PATH
from tests.conftest import APP_NAMES

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"
Form = dict[str, Any]
#: Forms are keyed by the step's name, and ``<step>/tools`` for the step's tools run.
TOOLS = "/tools"
_SHARING = {ops_pb2.SHARED: "shared", ops_pb2.PRIVATE: "private", ops_pb2.LOCKED: "locked"}


def _plan(name: str) -> Plan:
    plan, _, _ = plan_project(APPS / name, record=False)
    return plan


# --- the RunSpec's own normal form --------------------------------------------------------------------


def spec_forms(plan: Plan) -> dict[str, Form]:
    env = {"PATH": DEFAULT_PATH}
    out = {}
    for kind, spec in run_specs(plan).items():
        if spec.tools is not None:
            tools = spec.tools
            out[kind.value + TOOLS] = _form(
                tools.shell[0],
                script_text(tools.script),
                tools.args,
                sorted([*(("cache", m.target, m.id, m.sharing) for m in tools.caches), *_secret_forms(tools.secrets)]),
                {**env, **{v: s.target for s in tools.secrets for v in s.env}},
                "/",
                "",
            )
        run_env = {**env, **dict(spec.env), **{v: s.target for s in spec.secrets for v in s.env}}
        out[kind.value] = _form(
            spec.shell[0],
            script_text(spec.script),
            spec.args,
            _spec_mounts(spec),
            run_env,
            spec.workdir or "/",
            spec.user or "",
        )
        env.update(spec.env_after)
    return out


def _spec_mounts(spec: RunSpec) -> list[tuple[Any, ...]]:
    mounts: list[tuple[Any, ...]] = [("cache", m.target, m.id, m.sharing) for m in spec.caches]
    mounts += [("files", g.target, tuple(sorted(g.files))) for g in spec.generated]
    if spec.project is not None:
        mounts.append(("project", spec.project.target, tuple(e.path for e in spec.project.manifest.entries)))
    mounts += _secret_forms(spec.secrets)
    if spec.tools is not None:
        mounts.append(("checked", spec.tools.target, spec.tools.output))
    return sorted(mounts)


def _secret_forms(secrets: Any) -> list[tuple[Any, ...]]:
    return [("secret", s.target, s.id, s.mode) for s in secrets]


def _form(
    shell: str,
    text: str,
    args: tuple[str, ...] | list[str],
    mounts: list[tuple[Any, ...]],
    env: dict[str, str],
    workdir: str,
    user: str,
) -> Form:
    return {
        "shell": shell,
        "script": text,
        "args": list(args),
        "mounts": mounts,
        "env": dict(sorted(env.items())),
        "workdir": workdir,
        "user": user,
    }


# --- LLB read back ------------------------------------------------------------------------------------


def llb_forms(plan: Plan) -> dict[str, Form]:
    converted = convert_plan(plan, ConvertOptions(ca_bundle=True, netrc=True))
    definition = converted.definition
    names = definition.names()
    tools_names = {vertex_name(k, spec.tools.label): k for k, spec in run_specs(plan).items() if spec.tools is not None}
    out = {}
    for digest in definition.digests:
        op = definition.op(digest)
        if op.WhichOneof("op") != "exec":
            continue
        step = step_from_name(names[digest])
        assert step is not None
        kind = step.value + (TOOLS if names[digest] in tools_names else "")
        assert kind not in out, names[digest]
        meta = op.exec.meta
        assert list(meta.args[1:2]) == ["-c"], "the script is carried inline"
        mounts = [_llb_mount(m, op, definition, dict(converted.local_dirs)) for m in op.exec.mounts if m.dest != "/"]
        env = dict(e.split("=", 1) for e in meta.env)
        out[kind] = _form(meta.args[0], meta.args[2], meta.args[4:], sorted(mounts), env, meta.cwd, meta.user)
    return out


def _llb_mount(m: Any, op: Any, definition: Any, local_dirs: dict[str, Any]) -> tuple[Any, ...]:
    if m.mountType == ops_pb2.CACHE:
        return ("cache", m.dest, m.cacheOpt.ID, _SHARING[m.cacheOpt.sharing])
    if m.mountType == ops_pb2.SECRET:
        return ("secret", m.dest, m.secretOpt.ID, m.secretOpt.mode)
    assert m.mountType == ops_pb2.BIND
    source = definition.op(op.inputs[m.input].digest)
    if source.WhichOneof("op") == "exec":
        assert m.readonly, "the checked tools are read-only"
        return ("checked", m.dest, m.selector)
    if source.WhichOneof("op") == "source":
        session = source.source.identifier.removeprefix("local://")
        assert not m.readonly, "the project files are writable (setup.py builds write next to them)"
        return ("project", m.dest, tuple(e.path for e in local_dirs[session].entries))
    assert m.readonly, "generated files are read-only"
    files = tuple(sorted((a.mkfile.path.lstrip("/"), a.mkfile.data) for a in source.file.actions))
    return ("files", m.dest, files)


# --- Dockerfile export read back ----------------------------------------------------------------------


def export_forms(plan: Plan) -> dict[str, Form]:
    export = render_dockerfile(plan)
    files = dict(export.files)
    env, workdir, user = {"PATH": DEFAULT_PATH}, "/", ""
    out: dict[str, Form] = {}
    kind: StepKind | None = None
    in_tools = False
    for line in _instructions(export.dockerfile):
        header = re.match(r"# \[(\w+)\] key=", line)
        if header:
            kind = StepKind(header.group(1))
        elif line.startswith("FROM "):
            in_tools = kind is not None and line.endswith(f" AS builder-tools-{kind.value}")
        elif line.startswith("ENV "):
            env.update((k, _unquote(v)) for k, v in re.findall(r'(\w+)=("(?:[^"\\]|\\.)*")', line))
        elif line.startswith("WORKDIR "):
            workdir = line.split(" ", 1)[1]
        elif line.startswith("USER "):
            user = line.split(" ", 1)[1]
        elif line.startswith("RUN ") and kind in RECIPES:  # a user Dockerfile runs its own commands
            name = kind.value + (TOOLS if in_tools else "")
            assert name not in out, f"one RUN per step and tools run ({name})"
            out[name] = _export_run(line, files, dict(env), workdir, user, export.dockerignore)
    return out


def _instructions(dockerfile: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for line in dockerfile.splitlines():
        if pending:
            pending += " " + line.strip()
        elif line:
            pending = line
        if pending.endswith(" \\"):
            pending = pending[:-2]
            continue
        if pending:
            out.append(pending)
        pending = ""
    return out


def _unquote(word: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), word[1:-1])


def _export_run(line: str, files: dict[str, str], env: dict[str, str], workdir: str, user: str, ignore: str) -> Form:
    flags = re.findall(r"--mount=(\S+)", line)
    argv = json.loads(line[line.index("[") :])
    mounts = []
    scripts_mounted = False
    for flag in flags:
        opts = dict(kv.split("=", 1) if "=" in kv else (kv, "true") for kv in flag.split(","))
        if opts["type"] == "cache":
            mounts.append(("cache", opts["target"], opts["id"], opts["sharing"]))
        elif opts["type"] == "secret":
            mounts.append(("secret", opts["target"], opts["id"], int(opts["mode"], 8)))
        elif "from" in opts:
            assert "rw" not in opts, "the checked tools are read-only"
            mounts.append(("checked", opts["target"], opts["source"]))
        elif opts["source"] == SCRIPTS_DIR:
            scripts_mounted = opts["target"] == SCRIPTS_TARGET and "rw" not in opts
        elif opts["source"] == ".":
            assert "rw" in opts
            selected = {ln[1:] for ln in ignore.splitlines() if ln.startswith("!")}
            paths = tuple(
                sorted(p for p in selected if not p.startswith(GENERATED_DIR + "/") and p != "cerebrium.toml")
            )
            mounts.append(("project", opts["target"], paths))
        else:
            assert opts["source"].startswith(GENERATED_DIR + "/") and "rw" not in opts
            prefix = opts["source"] + "/"
            mounts.append(
                (
                    "files",
                    opts["target"],
                    tuple(
                        sorted(
                            (p.removeprefix(prefix), t.encode("utf-8"))
                            for p, t in files.items()
                            if p.startswith(prefix)
                        )
                    ),
                )
            )
    assert scripts_mounted, "the scripts are mounted read-only"
    wrapper = f"{SCRIPTS_TARGET}/secret_env.sh"
    while argv[:2] == ["/bin/sh", wrapper]:
        end = argv.index("--")
        env.update({name: argv[2] for name in argv[3:end]})  # the secret was given
        argv = argv[end + 1 :]
    if argv[0] == "/usr/bin/env":
        while "=" in argv[1]:
            key, value = argv.pop(1).split("=", 1)
            env[key] = value
        argv = argv[1:]
    shell, path, *args = argv
    assert path.startswith(SCRIPTS_TARGET + "/")
    text = files[f"{SCRIPTS_DIR}/{path.removeprefix(SCRIPTS_TARGET + '/')}"]
    return _form(shell, text, args, sorted(mounts), env, workdir, user)


# --- the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [a for a in APP_NAMES if a != "dockerfile-app"])
def test_both_lowerings_carry_the_whole_runspec(name: str) -> None:
    plan = _plan(name)
    expected = spec_forms(plan)
    assert expected, f"{name} runs nothing"
    llb, export = llb_forms(plan), export_forms(plan)
    for kind, form in expected.items():
        for field in form:
            assert llb[kind][field] == form[field], f"{name} {kind}: LLB {field} differs from the RunSpec"
            assert export[kind][field] == form[field], f"{name} {kind}: export {field} differs from the RunSpec"
    assert set(llb) == set(export) == set(expected)


def test_a_user_dockerfile_app_has_no_recipe() -> None:
    plan = _plan("dockerfile-app")
    assert run_specs(plan) == {} and export_forms(plan) == {}
