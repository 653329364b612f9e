"""Plan → LLB: one function per step kind, one BuildKit vertex per plan step.

Each converter takes the state built so far and the step's inputs and
returns the new state; its main vertex is named ``[<step id>] <what it does>``
so Status lines map back to plan steps (helper vertices — the ``local://``
source, the requirements files, the files merge — carry the same prefix).
Nothing here is engine I/O: the same plan and options always give a
byte-identical :class:`~builder.engines.buildkit.llb.Definition`.

Security: package names, versions and paths reach the build as argv items or
file contents (FileOp ``mkfile``), never as shell text; the fixed scripts in
:mod:`builder.engines.buildkit.scripts` read them from ``"$@"``.  Only the
user's ``pre_build_commands``/``shell_commands`` are shell, by definition.

>>> # converted = convert_plan(plan, ConvertOptions(network="host", merge=True))
>>> # converted.definition.to_pb()  → SolveRequest.Definition
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from builder.engines.buildkit import scripts
from builder.engines.buildkit.llb import (
    Copy,
    Definition,
    Mkdir,
    Mkfile,
    Mount,
    Platform,
    State,
)
from builder.engines.buildkit.llb.ops import Network
from builder.engines.buildkit.llb.state import DEFAULT_PATH
from builder.errors import EngineUnsupported
from builder.plan.model import FileManifest, Plan, Step, StepKind

#: The session directory name of the project files.
CONTEXT_NAME = "context"
#: The session directory name of files a pip step reads (local / ``-e`` requirements).
PIP_LOCAL_NAME = "pip-local"
CA_SECRET_ID = (
    "ca-bundle"  # same ID as builder.engines.buildkit.session.CA_BUNDLE_SECRET_ID
)
_NAME_MAX = 100


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """Engine-dependent choices for the conversion (all part of the definition's bytes).

    ``network``: exec network mode (``host`` needs the ``network.host``
    entitlement); ``ca_bundle``: mount the CA bundle secret into install
    steps; ``merge``: keep the files layer independent of the dependency
    layers with MergeOp (BuildKit >= 0.10); ``shared_key_hint``: stable
    per project so the engine reuses its copy of the context.
    """

    network: Network = "host"
    ca_bundle: bool = False
    netrc: bool = False  # mount the index credentials (a netrc secret) into the pip step
    merge: bool = False
    shared_key_hint: str = "builder"


@dataclass(frozen=True, slots=True)
class Converted:
    """The result of :func:`convert_plan`."""

    definition: Definition
    state: State
    step_digests: tuple[tuple[StepKind, str], ...]  # the main vertex of every plan step
    vertex_steps: tuple[
        tuple[str, StepKind], ...
    ]  # every vertex digest → the step it belongs to
    commands: tuple[
        tuple[StepKind, str], ...
    ]  # what each step runs (for failure reports)
    local_dirs: tuple[
        tuple[str, FileManifest], ...
    ]  # session directories the build reads

    def step_of(self, digest: str) -> StepKind | None:
        """The plan step a vertex belongs to (None for engine-made vertices such as exporting)."""
        return dict(self.vertex_steps).get(digest)

    def digest_of(self, step: StepKind) -> str:
        """The main vertex digest of ``step``."""
        return dict(self.step_digests)[step]

    def is_image_source(self, digest: str) -> bool:
        """True for the base image's ``docker-image://`` source vertex."""
        return dict(self.step_digests).get(StepKind.BASE) == digest

    def command_of(self, step: StepKind) -> str:
        return dict(self.commands).get(step, "")


@dataclass(slots=True)
class _Build:
    """Mutable scratch for one conversion."""

    options: ConvertOptions
    platform: Platform = field(default_factory=Platform)
    mains: dict[StepKind, State] = field(default_factory=dict)
    commands: dict[StepKind, str] = field(default_factory=dict)
    local_dirs: dict[str, FileManifest] = field(default_factory=dict)


def vertex_name(step: StepKind, text: str) -> str:
    """``[<step>] <text>`` on one line, shortened to a readable length."""
    line = " ".join(text.split())
    if len(line) > _NAME_MAX:
        line = line[: _NAME_MAX - 3] + "..."
    return f"[{step.value}] {line}"


def _cache_mounts(step: Step) -> list[Mount]:
    return [
        Mount(m.target, "cache", cache_id=m.id, sharing=m.sharing)
        for m in getattr(step.inputs, "cache_mounts", ())
    ]


#: Where the pip step finds the index credentials (the secret offered under NETRC_SECRET_ID).
NETRC_PATH = "/root/.netrc"
NETRC_SECRET_ID = "builder-netrc"


def _ca(b: _Build) -> tuple[list[Mount], list[tuple[str, str]]]:
    """The CA bundle secret mount and the variables that point installers at it (when enabled)."""
    if not b.options.ca_bundle:
        return [], []
    mount = Mount(scripts.CA_PATH, "secret", secret_id=CA_SECRET_ID, mode=0o444)
    env = [
        (k, scripts.CA_PATH)
        for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
    ]
    return [mount], env


def _tools_mount(name: str) -> Mount:
    return Mount(
        f"{scripts.TOOLS_DIR}/{name}",
        "cache",
        cache_id=f"builder-tools-{name}",
        sharing="locked",
    )


_APT_MOUNTS = (
    Mount("/var/cache/apt", "cache", cache_id="builder-apt-archives", sharing="locked"),
    Mount(
        "/var/lib/apt/lists", "cache", cache_id="builder-apt-lists", sharing="locked"
    ),
)


# --- one converter per step kind --------------------------------------------------------------


def convert_base(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    b.platform = Platform.parse(inputs.platform)
    b.commands[step.id] = f"FROM {inputs.image}"
    return State.image(
        inputs.image, platform=b.platform, name=vertex_name(step.id, inputs.image)
    ).with_network(b.options.network)


def convert_python(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    ca_mounts, ca_env = _ca(b)
    args = ["/bin/sh", "-c", scripts.PYTHON, "python", inputs.version, inputs.venv]
    b.commands[step.id] = (
        f"install Python {inputs.version} and create the virtualenv {inputs.venv}"
    )
    done = state.run(
        args,
        name=vertex_name(step.id, f"python {inputs.version} → {inputs.venv}"),
        mounts=[*_APT_MOUNTS, _tools_mount("uv"), *ca_mounts],
        env=ca_env,
    )
    return done.env("VIRTUAL_ENV", inputs.venv).env(
        "PATH", f"{inputs.venv}/bin:{DEFAULT_PATH}"
    )


def _commands(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    args = [*inputs.shell, scripts.COMMANDS, "run", inputs.workdir, *inputs.commands]
    b.commands[step.id] = " && ".join(inputs.commands)
    return state.run(args, name=vertex_name(step.id, " && ".join(inputs.commands)))


convert_pre_build = _commands
convert_shell = _commands


def convert_apt(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    ca_mounts, ca_env = _ca(b)
    flags = ["--no-install-recommends"] if inputs.no_install_recommends else []
    args = ["/bin/sh", "-c", scripts.APT, "apt", *flags, *inputs.packages]
    text = "apt-get install " + " ".join(inputs.packages)
    b.commands[step.id] = text
    return state.run(
        args,
        name=vertex_name(step.id, text),
        mounts=[*_cache_mounts(step), *ca_mounts],
        env=ca_env,
    )


def convert_pip(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    files = State.scratch(platform=b.platform).file(
        Mkfile("/requirements.txt", inputs.requirements_txt.encode("utf-8")),
        Mkfile("/constraints.txt", inputs.constraints_txt.encode("utf-8")),
        name=vertex_name(step.id, "requirements.txt"),
    )
    mounts = [
        Mount("/run/builder/pip", "bind", files.output, readonly=True),
        *_cache_mounts(step),
    ]
    if inputs.installer == "uv":
        mounts.append(_tools_mount("uv"))
    workdir = "/"
    if inputs.local is not None:
        local = State.local(
            PIP_LOCAL_NAME,
            [("local.sharedkeyhint", f"{b.options.shared_key_hint}-pip")],
            name=vertex_name(step.id, f"local://{PIP_LOCAL_NAME}"),
        )
        b.local_dirs[PIP_LOCAL_NAME] = inputs.local.manifest
        mounts.append(Mount("/app", "bind", local.output))
        workdir = "/app"
    ca_mounts, ca_env = _ca(b)
    if b.options.netrc:  # index credentials: a tmpfs file for this exec only, read by pip, uv and git
        ca_mounts = [*ca_mounts, Mount(NETRC_PATH, "secret", secret_id=NETRC_SECRET_ID, mode=0o400)]
        ca_env = [*ca_env, ("NETRC", NETRC_PATH)]
    args = pip_argv(inputs)
    text = (
        "uv pip" if inputs.installer == "uv" else "pip"
    ) + " install -r requirements.txt"
    b.commands[step.id] = text
    return (
        state.dir(workdir)
        .run(
            args,
            name=vertex_name(step.id, text),
            mounts=[*mounts, *ca_mounts],
            env=ca_env,
        )
        .dir("/")
    )


#: Folder in the uv cache mount holding the pip step's records of requirement lines installed before.
KNOWN_DIR = "builder-known"


def pip_argv(inputs: Any) -> list[str]:
    """The pip step's argv (shared with the Dockerfile export so both run exactly the same command).

    ``offline-first`` (uv, every line pinned, a uv cache mount to keep things in): the script
    installs the lines it installed before from the cache alone and asks the index only about
    new lines; its record of those lines lives in ``<uv cache mount>/builder-known``.
    """
    argv = [
        "/bin/sh",
        "-c",
        scripts.PIP,
        "pip",
        inputs.installer,
        inputs.venv,
        "/run/builder/pip/requirements.txt",
        "/run/builder/pip/constraints.txt",
    ]
    mounts = getattr(inputs, "cache_mounts", ())
    if inputs.installer == "uv" and mounts and all_pinned(inputs.requirements_txt):
        return [*argv, "offline-first", f"{mounts[0].target}/{KNOWN_DIR}"]
    return [*argv, "online"]


def all_pinned(requirements_txt: str) -> bool:
    """True when every requirement line pins one exact version (``name==1.2.3``, markers allowed).

    Only then may uv install from its cache without asking the index: an unpinned spec must
    see the index's newest release.
    """
    lines = [ln.split(";", 1)[0].strip() for ln in requirements_txt.splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    return bool(reqs) and all(
        not ln.startswith("-")
        and ln.count("==") == 1
        and "*" not in ln
        and "," not in ln
        and "@" not in ln
        for ln in reqs
    )


def convert_files(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    b.local_dirs[CONTEXT_NAME] = inputs.manifest
    local = State.local(
        CONTEXT_NAME,
        [("local.sharedkeyhint", b.options.shared_key_hint)],
        name=vertex_name(step.id, f"local://{CONTEXT_NAME}"),
    )
    count = len(inputs.manifest)
    text = f"copy {count} project file{'s' if count != 1 else ''} → {inputs.dest}"
    b.commands[step.id] = text
    copy = Copy(local.output, "/", inputs.dest)
    if not b.options.merge:
        return state.file(copy, name=vertex_name(step.id, text))
    layer = State.scratch(platform=b.platform).file(
        copy, name=vertex_name(step.id, text)
    )
    b.mains[step.id] = layer
    return State.merge(
        [state, layer], name=vertex_name(step.id, "merge onto the dependency layers")
    )


def convert_config(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    parent = inputs.toml_path.rpartition("/")[0] or "/"
    b.commands[step.id] = f"write {inputs.toml_path}"
    return state.file(
        Mkdir(parent),
        Mkfile(inputs.toml_path, inputs.toml_text.encode("utf-8")),
        name=vertex_name(step.id, f"{inputs.toml_path} + image config"),
    )


def convert_conda(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    spec = {
        "specs": list(inputs.specs),
        "channels": list(inputs.channels),
        "lock": inputs.lock,
        "platform": f"{b.platform.os}-{_conda_arch(b.platform.architecture)}",
        "cache": inputs.cache_mounts[0].target if inputs.cache_mounts else "",
    }
    files = State.scratch(platform=b.platform).file(
        Mkfile(
            "/spec.json", json.dumps(spec, sort_keys=True, indent=1).encode("utf-8")
        ),
        Mkfile("/install.py", scripts.package_file("conda_installer.py")),
        name=vertex_name(step.id, "conda spec"),
    )
    ca_mounts, ca_env = _ca(b)
    mounts = [
        Mount("/run/builder/conda", "bind", files.output, readonly=True),
        _tools_mount("rattler"),
        *_cache_mounts(step),
        *ca_mounts,
    ]
    venv = _venv(state)
    args = [
        "/bin/sh",
        "-c",
        scripts.CONDA,
        "conda",
        inputs.prefix,
        "/run/builder/conda/spec.json",
        "/run/builder/conda/install.py",
        venv,
    ]
    text = (
        "conda install " + " ".join(inputs.specs) + (" (locked)" if inputs.lock else "")
    )
    b.commands[step.id] = text
    done = state.run(args, name=vertex_name(step.id, text), mounts=mounts, env=ca_env)
    return done.env("PATH", f"{venv}/bin:{inputs.prefix}/bin:{DEFAULT_PATH}")


def _venv(state: State) -> str:
    return state.get_env("VIRTUAL_ENV") or "/opt/venv"


def _conda_arch(arch: str) -> str:
    return {"amd64": "64", "arm64": "aarch64", "386": "32"}.get(arch, arch)



def convert_dockerfile(state: State, step: Step, b: _Build) -> State:
    raise EngineUnsupported(
        "builder build does not build runtime.custom.dockerfile_path apps yet",
        hint="build the Dockerfile with `docker build`, or remove dockerfile_path to use builder's steps",
    )


CONVERTERS: dict[StepKind, Callable[[State, Step, _Build], State]] = {
    StepKind.BASE: convert_base,
    StepKind.PYTHON: convert_python,
    StepKind.PRE_BUILD: convert_pre_build,
    StepKind.APT: convert_apt,
    StepKind.CONDA: convert_conda,
    StepKind.PIP: convert_pip,
    StepKind.FILES: convert_files,
    StepKind.SHELL: convert_shell,
    StepKind.DOCKERFILE: convert_dockerfile,
    StepKind.CONFIG: convert_config,
}


def convert_plan(plan: Plan, options: ConvertOptions | None = None) -> Converted:
    """Turn ``plan`` into one LLB graph (deterministic; raises EngineUnsupported for unsupported steps)."""
    b = _Build(options or ConvertOptions())
    state = State.scratch()
    for step in plan.steps:
        state = CONVERTERS[step.id](state, step, b)
        b.mains.setdefault(step.id, state)
    definition, digests = state.marshal_with_digests(b.mains.values())
    step_digests = tuple(zip(b.mains.keys(), digests, strict=True))
    by_name = _steps_by_name(definition)
    vertex_steps = dict(by_name)
    vertex_steps.update({d: k for k, d in step_digests})
    return Converted(
        definition,
        state,
        step_digests,
        tuple(sorted(vertex_steps.items())),
        tuple(b.commands.items()),
        tuple(sorted(b.local_dirs.items())),
    )


def _steps_by_name(definition: Definition) -> dict[str, StepKind]:
    out: dict[str, StepKind] = {}
    for digest, name in definition.names().items():
        step = step_from_name(name)
        if step is not None:
            out[digest] = step
    return out


def step_from_name(name: str) -> StepKind | None:
    """``"[pip] uv pip install ..."`` → ``StepKind.PIP`` (None for other names)."""
    if not name.startswith("["):
        return None
    tag = name[1:].partition("]")[0]
    try:
        return StepKind(tag)
    except ValueError:
        return None


def describe(value: Any) -> str:
    """A JSON rendering used in tests and debug output (sorted keys)."""
    return json.dumps(value, sort_keys=True, default=str)
