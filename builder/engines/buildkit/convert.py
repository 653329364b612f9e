"""Plan → LLB: one BuildKit vertex per plan step.

Every step that runs something in the container is lowered from its recipe
(:mod:`builder.recipes`): :func:`convert_run` translates the RunSpec's argv,
mounts, secrets, environment and working directory and decides nothing of its
own.  The base image, the project files and the config layer are an image
source, a copy and a FileOp.  Each converter takes the state built so far and
returns the new state; its main vertex is named ``[<step id>] <what it does>``
so Status lines map back to plan steps (helper vertices — the ``local://``
source, the requirements files, the files merge — carry the same prefix).
Nothing here is engine I/O: the same plan and options always give a
byte-identical :class:`~builder.engines.buildkit.llb.Definition`.

Security: package names, versions and paths reach the build as argv items or
file contents (FileOp ``mkfile``), never as shell text; the fixed scripts of
``builder/recipes/scripts`` read them from ``"$@"``.  Only the
user's ``pre_build_commands``/``shell_commands`` are shell, by definition.

>>> # converted = convert_plan(plan, ConvertOptions(network="host", merge=True))
>>> # converted.definition.to_pb()  → SolveRequest.Definition
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from builder.engines.buildkit.llb import (
    Copy,
    Definition,
    Mkdir,
    Mkfile,
    Mount,
    Platform,
    Rm,
    State,
)
from builder.engines.buildkit.llb.ops import FileAction, Network
from builder.errors import EngineUnsupported
from builder.plan.file_layers import FileLayer, split_layers
from builder.plan.files_base import FilesChanges
from builder.plan.model import FileManifest, Plan, Step, StepKind
from builder.recipes import RecipeContext, RunSpec, Secret, ToolsRun, run_spec
from builder.recipes.runtime import runtime_files
from builder.recipes.tools import CA_SECRET_ID, NETRC_SECRET_ID

#: The session directory name of the project files.
CONTEXT_NAME = "context"
#: The ``local://`` source of a files step's changes onto its base (only the changed files).
CHANGES_NAME = "context-changes"
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
    #: Ids of more builder-made secrets the build serves (a recipe's ``Secret`` with such an id is mounted);
    #: the user's ``--secret`` ids are in the plan and always mounted.
    secrets: frozenset[str] = frozenset()
    merge: bool = False
    shared_key_hint: str = "builder"
    #: Steps whose command runs again whatever the engine cache holds (``--refresh`` with unversioned
    #: apt/conda packages); what is built on them runs again too.
    rerun: frozenset[StepKind] = frozenset()
    #: The files step as one layer of changes on the files as last built whole (see
    #: ``builder.plan.files_base``); None: copy the files whole.  Ignored with ``merge``.
    files_changes: FilesChanges | None = None
    #: ``local.unique`` of the ``local://`` sources (a digest of the project directory; "" for none):
    #: BuildKit shares one vertex between concurrent builds with the same digest, so two projects with
    #: the same app name (same shared key hint) would otherwise read each other's files.
    local_unique: str = ""


@dataclass(frozen=True, slots=True)
class Converted:
    """The result of :func:`convert_plan`."""

    definition: Definition
    state: State
    step_digests: tuple[tuple[StepKind, str], ...]  # the main vertex of every plan step
    vertex_steps: tuple[tuple[str, StepKind], ...]  # every vertex digest → the step it belongs to
    commands: tuple[tuple[StepKind, str], ...]  # what each step runs (for failure reports)
    local_dirs: tuple[tuple[str, FileManifest], ...]  # session directories the build reads
    #: The state right after the files step (what a files base image holds); None without files.
    files_state: State | None = None

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
    recipe: RecipeContext
    platform: Platform = field(default_factory=Platform)
    mains: dict[StepKind, State] = field(default_factory=dict)
    commands: dict[StepKind, str] = field(default_factory=dict)
    local_dirs: dict[str, FileManifest] = field(default_factory=dict)
    files_state: State | None = None


def vertex_name(step: StepKind, text: str) -> str:
    """``[<step>] <text>`` on one line, shortened to a readable length."""
    line = " ".join(text.split())
    if len(line) > _NAME_MAX:
        line = line[: _NAME_MAX - 3] + "..."
    return f"[{step.value}] {line}"


# --- one converter per step kind --------------------------------------------------------------


def convert_base(state: State, step: Step, b: _Build) -> State:
    inputs = step.inputs
    b.platform = Platform.parse(inputs.platform)
    ref = inputs.pinned  # name:tag@digest when resolved: the engine builds on the image that was planned
    b.commands[step.id] = f"FROM {ref}"
    return State.image(ref, platform=b.platform, name=vertex_name(step.id, ref)).with_network(b.options.network)


def _mounts(spec: RunSpec, b: _Build) -> list[Mount]:
    """Every mount of ``spec`` as LLB (the secrets only when the build has them)."""
    mounts = [Mount(m.target, "cache", cache_id=m.id, sharing=m.sharing) for m in spec.caches]
    for gen in spec.generated:
        files = State.scratch(platform=b.platform).file(
            *(Mkfile(f"/{name}", data) for name, data in gen.files),
            name=vertex_name(spec.kind, gen.label),
        )
        mounts.append(Mount(gen.target, "bind", files.output, readonly=True))
    if spec.project is not None:
        session = spec.project.session
        local = State.local(
            session,
            [("local.sharedkeyhint", f"{b.options.shared_key_hint}-{spec.kind.value}")],
            name=vertex_name(spec.kind, f"local://{session}"),
        )
        b.local_dirs[session] = spec.project.manifest
        mounts.append(Mount(spec.project.target, "bind", local.output))
    mounts.extend(Mount(s.target, "secret", secret_id=s.id, mode=s.mode, optional=s.user) for s in _secrets(spec, b))
    return mounts


def _tools(state: State, spec: RunSpec, b: _Build) -> list[Mount]:
    """The step's tools run (the only exec mounting the tools cache read-write; it runs no project code)
    and the read-only bind of the checked copies it leaves, for the step's own run."""
    tools = spec.tools
    if tools is None:
        return []
    secrets = _secrets(tools, b)
    mounts = [Mount(m.target, "cache", cache_id=m.id, sharing=m.sharing) for m in tools.caches]
    mounts.extend(Mount(s.target, "secret", secret_id=s.id, mode=s.mode) for s in secrets)
    ran = state.run(
        tools.argv(),
        name=vertex_name(spec.kind, tools.label),
        mounts=mounts,
        env=[(name, s.target) for s in secrets for name in s.env],
        ignore_cache=spec.kind in b.options.rerun,  # --rerun STEP checks and fetches its tools again too
    )
    assert ran.output is not None
    return [Mount(tools.target, "bind", ran.output, selector=tools.output, readonly=True)]


def _secrets(spec: RunSpec | ToolsRun, b: _Build) -> tuple[Secret, ...]:
    # builder's own secrets are mounted only when the build was given them; the user's build secrets
    # always (their ids are step inputs), as optional mounts.
    given = set(b.options.secrets)
    if b.options.ca_bundle:
        given.add(CA_SECRET_ID)
    if b.options.netrc:
        given.add(NETRC_SECRET_ID)
    return tuple(s for s in spec.secrets if s.user or s.id in given)


def convert_run(state: State, step: Step, b: _Build) -> State:
    """A step with a recipe: ``spec.argv()`` with its mounts, environment, working directory and user."""
    spec = run_spec(step, b.recipe)
    assert spec is not None, f"{step.id.value} has no recipe"
    env = [*spec.env, *((name, s.target) for s in _secrets(spec, b) for name in s.env)]
    b.commands[step.id] = spec.command
    ready = state
    if spec.workdir is not None:
        ready = ready.dir(spec.workdir)
    if spec.user is not None:
        ready = ready.with_user(spec.user)
    done = ready.run(
        spec.argv(),
        name=vertex_name(step.id, spec.label),
        mounts=[*_mounts(spec, b), *_tools(state, spec, b)],
        env=env,
        ignore_cache=step.id in b.options.rerun,
    )
    done = done.dir(state.cwd).with_user(state.user)  # later steps run where and as they did before
    for key, value in spec.env_after:
        done = done.env(key, value)
    return done


def convert_files(state: State, step: Step, b: _Build) -> State:
    """The project files as the chained layers of :func:`~builder.plan.file_layers.split_layers`.

    Each layer copies its directories and files from the one ``local://`` source; an edit
    re-runs the copy of its own layer and of the layers above it, never of those below.
    With MergeOp the layers are built on scratch and merged, so they are independent.
    """
    inputs = step.inputs
    if b.options.files_changes is not None and not b.options.merge:
        return _files_onto_base(state, step, b, b.options.files_changes)
    b.local_dirs[CONTEXT_NAME] = inputs.manifest
    local = State.local(
        CONTEXT_NAME,
        _local_attrs(b.options.shared_key_hint, b.options.local_unique),
        name=vertex_name(step.id, f"local://{CONTEXT_NAME}"),
    )
    count = len(inputs.manifest)
    text = f"copy {count} project file{'s' if count != 1 else ''} → {inputs.dest}"
    b.commands[step.id] = text
    built = layer_states(state, local, split_layers(inputs.manifest), inputs.dest, b.options.merge, b.platform, text)
    if not b.options.merge:
        b.files_state = built[-1]
        return built[-1]
    merged = State.merge([state, *built], name=vertex_name(step.id, "merge onto the dependency layers"))
    # The step is observed at the merge: like its key, it changes with the layers below (a re-tagged base, a
    # pip change), even when the copies on scratch are reused; a single copy as the step would be "cached" then.
    b.mains[step.id] = merged
    return merged


def _files_onto_base(state: State, step: Step, b: _Build, changes: FilesChanges) -> State:
    """The files as one layer of ``changes`` on the base image (which holds the layers below, too).

    The base keeps ``state``'s run defaults (environment, directory, user): only its filesystem
    comes from the image.
    """
    image = State.image(
        changes.base.image, platform=state.platform, name=vertex_name(step.id, "files as last built whole")
    )
    base = dataclasses.replace(state, output=image.output, platform=image.platform)
    text = changes.phrase()
    b.commands[step.id] = text
    top, served = changes_layer(
        base, changes, step.inputs.dest, b.options.shared_key_hint, vertex_name(step.id, text), b.options.local_unique
    )
    if served is not None:
        b.local_dirs[CHANGES_NAME] = served
    b.files_state = top
    return top


def _local_attrs(shared_key_hint: str, unique: str) -> list[tuple[str, str]]:
    attrs = [("local.sharedkeyhint", shared_key_hint)]
    return [*attrs, ("local.unique", unique)] if unique else attrs


def changes_layer(
    base: State, changes: FilesChanges, dest: str, shared_key_hint: str, name: str, unique: str = ""
) -> tuple[State, FileManifest | None]:
    """``base`` with ``changes`` applied in one FileOp, and what ``local://context-changes`` serves (None: nothing).

    Removals first, then one copy of the changed files from their own ``local://`` source, which holds
    only them, so the session compares and sends only them (its shared key differs from the whole
    context's, so the engine's copy of the whole context is left as it is).
    """
    actions: list[FileAction] = [Rm(_dest(dest, path)) for path in changes.remove]
    served = None
    if changes.copy.entries:
        served = changes.copy
        local = State.local(
            CHANGES_NAME,
            _local_attrs(shared_key_hint + "-changes", unique),
            name=vertex_name(StepKind.FILES, f"local://{CHANGES_NAME}"),
        )
        actions.append(Copy(local.output, "/", dest))
    return (base.file(*actions, name=name) if actions else base), served


def layer_states(
    below: State, local: State, layers: tuple[FileLayer, ...], dest: str, merge: bool, platform: Platform, text: str
) -> list[State]:
    """One FileOp per layer copying its sources from ``local`` to ``dest``.

    Chained on ``below`` (each layer on the one before), or each on scratch when ``merge``
    (the caller merges them).  A single layer is named ``text``; several are numbered.
    """
    built: list[State] = []
    top = below
    for number, layer in enumerate(layers, 1):
        copies = [Copy(local.output, "/" + src, _dest(dest, src)) for src in layer.sources]
        name = text if len(layers) == 1 else f"layer {number}/{len(layers)} {layer.label}: {_count(layer)}"
        base = State.scratch(platform=platform) if merge else top
        top = base.file(*copies, name=vertex_name(StepKind.FILES, name))
        built.append(top)
    return built


def _dest(dest: str, src: str) -> str:
    return f"{dest.rstrip('/')}/{src}" if src else dest


def _count(layer: FileLayer) -> str:
    n = len(layer)
    return f"copy {n} file{'s' if n != 1 else ''}"


def convert_runtime(state: State, step: Step, b: _Build) -> State:
    """The runtime's server files, written by one FileOp into their own layer."""
    spec = runtime_files(step)
    b.commands[step.id] = spec.label
    return state.file(
        Mkdir(spec.directory),
        *(Mkfile(path, data) for path, data in spec.files),
        name=vertex_name(step.id, spec.label),
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


def convert_dockerfile(state: State, step: Step, b: _Build) -> State:
    raise EngineUnsupported(
        "builder build does not build runtime.custom.dockerfile_path apps yet",
        hint="build the Dockerfile with `docker build`, or remove dockerfile_path to use builder's steps",
    )


CONVERTERS: dict[StepKind, Callable[[State, Step, _Build], State]] = {
    StepKind.BASE: convert_base,
    StepKind.PYTHON: convert_run,
    StepKind.PRE_BUILD: convert_run,
    StepKind.APT: convert_run,
    StepKind.CONDA: convert_run,
    StepKind.PIP: convert_run,
    StepKind.FILES: convert_files,
    StepKind.SHELL: convert_run,
    StepKind.RUNTIME: convert_runtime,
    StepKind.DOCKERFILE: convert_dockerfile,
    StepKind.CONFIG: convert_config,
}


def convert_plan(plan: Plan, options: ConvertOptions | None = None) -> Converted:
    """Turn ``plan`` into one LLB graph (deterministic; raises EngineUnsupported for unsupported steps)."""
    b = _Build(options or ConvertOptions(), RecipeContext.of(plan))
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
        b.files_state,
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
