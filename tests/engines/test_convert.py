"""Plan → LLB conversion: one named vertex per step, cache/secret mounts, user data only as argv or files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.api import plan_project
from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.convert import (
    ConvertOptions,
    convert_plan,
    step_from_name,
)
from builder.engines.buildkit.image import image_config, image_config_bytes
from builder.plan.model import Plan, Step, StepKind
from builder.plan.steps import apt, base, pip, python, shell
from builder.plan.steps._commands import CommandInputs
from builder.recipes import tools
from builder.recipes.script_text import script_text

APPS = Path(__file__).resolve().parents[2] / "fixtures" / "apps"


def fixture_plan(name: str) -> Plan:
    plan, _, _ = plan_project(APPS / name, record=False)
    return plan


def ops_by_name(converted) -> dict[str, ops_pb2.Op]:  # type: ignore[no-untyped-def]
    names = converted.definition.names()
    return {
        names[d]: ops_pb2.Op.FromString(b)
        for d, b in zip(converted.definition.digests, converted.definition.ops, strict=True)
        if d in names
    }


def test_one_named_vertex_per_step() -> None:
    plan = fixture_plan("build-basic")
    converted = convert_plan(plan)
    names = converted.definition.names()
    assert [k for k, _ in converted.step_digests] == list(plan.ids)
    for kind, digest in converted.step_digests:
        assert names[digest].startswith(f"[{kind.value}] ")
        assert step_from_name(names[digest]) is kind
    assert names[converted.digest_of(StepKind.PIP)] == "[pip] uv pip install -r requirements.txt"
    assert all(converted.step_of(d) is not None for d in names)


def test_same_plan_gives_identical_definitions() -> None:
    for options in (
        ConvertOptions(),
        ConvertOptions(merge=True, ca_bundle=True, network="none"),
    ):
        first = convert_plan(fixture_plan("build-basic"), options).definition.to_bytes()
        assert all(convert_plan(fixture_plan("build-basic"), options).definition.to_bytes() == first for _ in range(5))


def test_cache_mounts_and_ca_secret() -> None:
    converted = convert_plan(fixture_plan("build-basic"), ConvertOptions(ca_bundle=True))
    ops = ops_by_name(converted)
    apt_op = ops["[apt] apt-get install netbase"]
    caches = {m.cacheOpt.ID: m for m in apt_op.exec.mounts if m.mountType == ops_pb2.CACHE}
    scope = fixture_plan("build-basic").step("python").inputs.cache_scope
    assert scope.startswith("app-")  # every cache mount id is in the project's own scope
    assert set(caches) == {f"builder-apt-archives-{scope}", f"builder-apt-lists-{scope}"}
    assert all(m.cacheOpt.sharing == ops_pb2.LOCKED for m in caches.values())
    pip_op = ops["[pip] uv pip install -r requirements.txt"]
    pip_caches = {m.cacheOpt.ID for m in pip_op.exec.mounts if m.mountType == ops_pb2.CACHE}
    assert f"builder-uv-cache-{scope}" in pip_caches
    assert not any(i.startswith("builder-tools-") for i in pip_caches)  # only its tools run mounts the tools cache
    tools_op = ops["[pip] check uv 0.13.9 (sha256)"]
    tools_caches = [m for m in tools_op.exec.mounts if m.mountType == ops_pb2.CACHE]
    assert [m.cacheOpt.ID for m in tools_caches] == [f"builder-tools-uv-{scope}"] and not tools_caches[0].readonly
    for op in (apt_op, pip_op):
        secrets = [m for m in op.exec.mounts if m.mountType == ops_pb2.SECRET]
        assert [m.dest for m in secrets] == [tools.CA_PATH]
        assert f"SSL_CERT_FILE={tools.CA_PATH}" in op.exec.meta.env
    shell_op = next(op for name, op in ops.items() if name.startswith("[shell]"))
    assert not any(m.mountType == ops_pb2.SECRET for m in shell_op.exec.mounts)
    assert not any(e.startswith("SSL_CERT_FILE") for e in shell_op.exec.meta.env)


def test_without_ca_bundle_no_secret_is_mounted() -> None:
    converted = convert_plan(fixture_plan("build-basic"))
    assert "exec.mount.secret" not in converted.definition.caps()


def test_requirements_reach_pip_as_a_file() -> None:
    plan = fixture_plan("build-basic")
    ops = ops_by_name(convert_plan(plan))
    req = ops["[pip] requirements.txt"]
    files = {a.mkfile.path: a.mkfile.data for a in req.file.actions}
    assert files["/requirements.txt"].decode() == plan.step("pip").inputs.requirements_txt
    pip_op = ops["[pip] uv pip install -r requirements.txt"]
    assert "six" not in " ".join(pip_op.exec.meta.args)
    assert pip_op.exec.meta.args[2] == script_text("pip.sh")


def test_network_mode_and_merge_choice() -> None:
    plan = fixture_plan("build-basic")
    host = convert_plan(plan, ConvertOptions(network="host"))
    assert all(op.exec.network == ops_pb2.HOST for op in ops_by_name(host).values() if op.WhichOneof("op") == "exec")
    assert "exec.meta.network" in host.definition.caps()
    chain = convert_plan(plan, ConvertOptions(merge=False))
    merged = convert_plan(plan, ConvertOptions(merge=True))
    assert "mergeop" not in chain.definition.caps()
    assert "mergeop" in merged.definition.caps()
    files = ops_by_name(merged)["[files] copy 1 project file → /app"]
    assert files.file.actions[0].input == -1  # its own layer, independent of the dependency layers


def test_files_source_is_stable_per_project() -> None:
    converted = convert_plan(
        fixture_plan("build-basic"),
        ConvertOptions(shared_key_hint="builder-build-basic"),
    )
    local = next(
        op
        for op in ops_by_name(converted).values()
        if op.WhichOneof("op") == "source" and op.source.identifier == "local://context"
    )
    assert dict(local.source.attrs) == {"local.sharedkeyhint": "builder-build-basic"}
    assert [name for name, _ in converted.local_dirs] == ["context"]


def test_config_layer_writes_the_toml() -> None:
    plan = fixture_plan("build-basic")
    config = ops_by_name(convert_plan(plan))["[config] /app/cerebrium.toml + image config"]
    written = {a.mkfile.path: a.mkfile.data for a in config.file.actions if a.WhichOneof("action") == "mkfile"}
    assert written["/app/cerebrium.toml"].decode() == plan.step("config").inputs.toml_text


def test_conda_step_installs_from_a_spec_file() -> None:
    plan = fixture_plan("conda")
    ops = ops_by_name(convert_plan(plan))
    spec_op = ops["[conda] conda spec"]
    files = {a.mkfile.path: a.mkfile.data for a in spec_op.file.actions}
    spec = json.loads(files["/spec.json"])
    assert spec["specs"] == list(plan.step("conda").inputs.specs)
    assert b"rattler.install" in files["/install.py"]


def test_dockerfile_plans_are_refused_clearly() -> None:
    from builder.errors import EngineUnsupported
    from builder.plan.model import FileManifest
    from builder.plan.steps import dockerfile

    step = Step(
        StepKind.DOCKERFILE,
        "k",
        (),
        dockerfile.Inputs("Dockerfile", "FROM x", FileManifest.of([])),
    )
    with pytest.raises(EngineUnsupported, match="dockerfile_path"):
        convert_plan(Plan("a", (step,), 1))


def test_image_config_from_the_plan() -> None:
    plan = fixture_plan("build-basic")
    doc = image_config(plan)
    config = doc["config"]
    assert config["Entrypoint"] == ["python", "main.py"]
    assert config["ExposedPorts"] == {"8765/tcp": {}}
    assert config["WorkingDir"] == "/app"
    assert config["Env"][0].startswith("PATH=/opt/venv/bin:")
    assert config["Labels"]["ai.cerebrium.app"] == "build-basic"
    assert config["Labels"]["dev.builder.plan.pip"] == plan.step("pip").key
    health = config["Healthcheck"]
    assert health["Test"][:2] == ["CMD", "/opt/venv/bin/python"] and "/health" in health["Test"][3]
    assert health["Interval"] == 10 * 10**9
    assert json.loads(image_config_bytes(plan)) == doc


# --- user data never reaches a shell as text --------------------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)


def _plan(*steps: Step) -> Plan:
    return Plan("x", steps, 1)


def _base() -> Step:
    return Step(StepKind.BASE, "k0", (), base.Inputs("docker.io/library/debian:bookworm-slim"))


@settings(max_examples=60, deadline=None)
@given(packages=st.lists(_TEXT, min_size=1, max_size=4))
def test_apt_packages_are_argv_items(packages: list[str]) -> None:
    step = Step(StepKind.APT, "k1", (), apt.Inputs(tuple(packages)))
    converted = convert_plan(_plan(_base(), step))
    op = ops_by_name(converted)[converted.definition.names()[converted.digest_of(StepKind.APT)]]
    args = list(op.exec.meta.args)
    assert args[:4] == ["/bin/sh", "-c", script_text("apt.sh"), "apt"]
    assert args[4:] == ["--no-install-recommends", *packages]


@settings(max_examples=60, deadline=None)
@given(requirements=_TEXT, version=st.sampled_from(["3.10", "3.11", "3.12"]))
def test_pip_requirements_and_versions_never_enter_the_script(requirements: str, version: str) -> None:
    steps = (
        _base(),
        Step(StepKind.PYTHON, "k1", (), python.Inputs(version)),
        Step(StepKind.PIP, "k2", (), pip.Inputs("pip", requirements)),
    )
    converted = convert_plan(_plan(*steps))
    for op in ops_by_name(converted).values():
        if op.WhichOneof("op") == "exec":
            assert op.exec.meta.args[2] in (script_text("python.sh"), script_text("pip.sh"))
            assert requirements not in op.exec.meta.args[2] or requirements in script_text("pip.sh") + script_text(
                "python.sh"
            )


@settings(max_examples=60, deadline=None)
@given(commands=st.lists(_TEXT, min_size=1, max_size=3))
def test_shell_commands_reach_the_step_as_one_generated_script(commands: list[str]) -> None:
    from builder.recipes.commands import command_script

    step = Step(StepKind.SHELL, "k1", (), CommandInputs(tuple(commands)))
    converted = convert_plan(_plan(_base(), step))
    op = ops_by_name(converted)[converted.definition.names()[converted.digest_of(StepKind.SHELL)]]
    assert list(op.exec.meta.args) == [
        "/bin/sh",
        "-c",
        script_text("commands.sh"),
        "run",
        "/app",
        "/run/builder/shell/commands.bash",
    ]  # the user's text is in no argv item and in none of builder's scripts
    (mount,) = (m for m in op.exec.mounts if m.dest == "/run/builder/shell")
    assert mount.readonly
    written = converted.definition.op(op.inputs[mount.input].digest).file.actions[0].mkfile
    assert (written.path, written.data) == ("/commands.bash", command_script(tuple(commands)).encode("utf-8"))


def test_shell_module_is_the_commands_shape() -> None:
    assert shell.Inputs is CommandInputs


def test_local_requirements_are_mounted_from_their_own_session_dir() -> None:
    from builder.plan.model import FileEntry, FileManifest, StepRef

    manifest = FileManifest.of([FileEntry("pkg/setup.py", "file", 10, "blake3:00")])
    local = pip.LocalSource(StepRef(StepKind.FILES, "source"), ("pkg",), manifest)
    steps = (
        _base(),
        Step(StepKind.PYTHON, "k1", (), python.Inputs("3.11")),
        Step(StepKind.PIP, "k2", (), pip.Inputs("pip", "-e ./pkg\n", local=local)),
    )
    converted = convert_plan(_plan(*steps))
    assert dict(converted.local_dirs) == {"pip-local": manifest}
    op = ops_by_name(converted)["[pip] pip install -r requirements.txt"]
    app = next(m for m in op.exec.mounts if m.dest == "/app")
    assert app.input >= 0 and not app.readonly and app.output == -1
    assert op.exec.meta.cwd == "/app"
    assert "exec.mount.bind.readwrite-nooutput" in converted.definition.caps()


def _many_files_plan(tmp_path: Path) -> Plan:
    app = tmp_path / "many"
    app.mkdir()
    (app / "cerebrium.toml").write_text('[cerebrium.deployment]\nname = "many"\ninclude = ["*"]\nexclude = [".*"]\n')
    (app / "main.py").write_text("print(1)\n")
    for i in range(3000):
        sub = app / "data" / f"d{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}").write_text(str(i))
    plan, _, _ = plan_project(app, record=False)
    return plan


def test_many_files_are_chained_layers_or_merged_ones(tmp_path: Path) -> None:
    plan = _many_files_plan(tmp_path)
    chained = convert_plan(plan)
    layers = {n: op for n, op in ops_by_name(chained).items() if n.startswith("[files] layer ")}
    assert sorted(layers) == [
        "[files] layer 1/3 data/d00 … data/d19: copy 2000 files",
        "[files] layer 2/3 data/d20 … data/d29: copy 1000 files",
        "[files] layer 3/3 top-level files: copy 1 file",
    ]
    copies = [a.copy for a in layers["[files] layer 1/3 data/d00 … data/d19: copy 2000 files"].file.actions]
    target = plan.step(StepKind.FILES).inputs.dest  # /cortex for the default runtime, /app for a custom one
    assert [(c.src, c.dest) for c in copies][:2] == [
        ("/data/d00", f"{target}/data/d00"),
        ("/data/d01", f"{target}/data/d01"),
    ]
    names = chained.definition.names()
    assert names[chained.digest_of(StepKind.FILES)] == "[files] layer 3/3 top-level files: copy 1 file"
    merged = convert_plan(plan, ConvertOptions(merge=True))
    ops = ops_by_name(merged)
    merge = ops["[files] merge onto the dependency layers"]
    assert len(merge.inputs) == 4  # the dependency layers and the three file layers, each on scratch
    assert all(len(ops[n].inputs) == 1 for n in layers)  # only the local source: nothing below
    assert convert_plan(plan).definition.to_pb() == chained.definition.to_pb()  # deterministic
