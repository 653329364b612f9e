"""What one install step runs, as data both lowerings translate: :class:`RunSpec`.

The LLB converter (``engines/buildkit/convert.py``) and the Dockerfile exporter
(``engines/dockerfile_export.py``) read a RunSpec and decide nothing about the step
themselves: the argv, every mount, the secret, the environment during and after the
run, the generated input files and the working directory are all here.  What differs
between the lowerings is only *where* things come from: LLB carries a script inline
(``/bin/sh -c TEXT ARG0 ARGS...``) and generated files as a FileOp, the export ships
both as files in ``.builder/`` of the build context.

>>> spec = RunSpec(kind=StepKind.APT, script="apt.sh", arg0="apt", args=("curl",), label="apt-get install curl")
>>> spec.argv()[3:]
('apt', 'curl')
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.plan.model import CacheMount, FileManifest, StepKind
from builder.plan.secret_ids import secret_path
from builder.recipes.script_text import script_text
from builder.recipes.tools import CA_ENV, CA_PATH, CA_SECRET_ID, NETRC_PATH, NETRC_SECRET_ID


@dataclass(frozen=True, slots=True)
class GeneratedFiles:
    """Files builder writes for a step (requirements, a conda spec), mounted read-only at ``target``.

    ``name`` is the folder's name in the Dockerfile export (``.builder/<name>``); ``label``
    names the LLB vertex that writes them.
    """

    target: str
    name: str
    files: tuple[tuple[str, bytes], ...]
    label: str


@dataclass(frozen=True, slots=True)
class ProjectFiles:
    """Project files a step reads while it runs, bind-mounted writable at ``target`` (pip's local requirements).

    ``session`` is the name of the session directory that serves them to BuildKit.
    """

    target: str
    session: str
    manifest: FileManifest


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret mounted while the step runs (never in a layer), and the variables that point at it.

    ``optional``: the step runs without it when the build was given none.
    ``user``: a build secret of the user's (``--secret``): its id is in the plan, so both lowerings always
    mount it, as an optional mount (a secret given with ``required=false`` and no value leaves no file).
    """

    id: str
    target: str
    env: tuple[str, ...] = ()
    mode: int = 0o444
    optional: bool = True
    user: bool = False


#: The extra CA bundle: installers read it through the standard variables.
CA_BUNDLE = Secret(CA_SECRET_ID, CA_PATH, CA_ENV)
#: Index credentials as a netrc file (pip, uv and git read it through NETRC).
INDEX_CREDENTIALS = Secret(NETRC_SECRET_ID, NETRC_PATH, ("NETRC",), mode=0o400)


def build_secrets(ids: tuple[str, ...]) -> tuple[Secret, ...]:
    """The user's build secrets ``ids`` as mounts at ``/run/secrets/ID``, readable by root only."""
    return tuple(Secret(i, secret_path(i), mode=0o400, user=True) for i in ids)


@dataclass(frozen=True, slots=True)
class ToolsRun:
    """The run before a step's own that alone may write the tools cache mounts, and runs no project code.

    It runs builder's own ``script`` (``shell + [text, arg0, *args]``) on the same root filesystem as
    the step, with only ``caches`` (the tools mounts, read-write) and ``secrets`` (the CA bundle):
    no project files, no requirements, no generated inputs.  It checks the pinned tools in the mount
    against their sha256 (fetching them again when missing or wrong) and leaves checked copies in
    ``output`` of its own root filesystem; the step's run sees that folder read-only at ``target``
    and never mounts the cache.  ``label`` names its vertex (LLB) and stage (export).
    """

    script: str
    arg0: str
    args: tuple[str, ...]
    caches: tuple[CacheMount, ...]
    output: str
    target: str
    secrets: tuple[Secret, ...] = ()
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    label: str = ""

    def argv(self) -> tuple[str, ...]:
        """The argv with the script's text inline (what ``builder build`` runs)."""
        return (*self.shell, script_text(self.script), self.arg0, *self.args)

    def file_argv(self, script_path: str) -> tuple[str, ...]:
        """The argv when the script is a file at ``script_path``."""
        return (self.shell[0], script_path, *self.args)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One step's run: ``shell + [script text, arg0, *args]`` with its mounts and environment.

    * ``script``: a file of ``builder/recipes/scripts`` (see :func:`script_text`);
      ``arg0``/``args``: its ``$0`` and positional parameters (user data only ever here);
    * ``caches``: cache mounts (ids, sharing); ``generated``/``project``: bind mounts;
      ``secrets``: secret mounts, each with the variables set to its path;
    * ``env``: variables during the run; ``workdir``: the working directory of the run
      (None: unchanged, ``/``); ``user``: None runs as the image's user;
    * ``env_after``: variables every later step and the image see;
    * ``tools``: the :class:`ToolsRun` that prepares the step's tools (None: the step needs none);
    * ``label``: the one-line text of the run (vertex names, export comments);
      ``command``: what a failure report says the step ran.
    """

    kind: StepKind
    script: str
    arg0: str
    args: tuple[str, ...] = ()
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    caches: tuple[CacheMount, ...] = ()
    generated: tuple[GeneratedFiles, ...] = ()
    project: ProjectFiles | None = None
    secrets: tuple[Secret, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    env_after: tuple[tuple[str, str], ...] = ()
    label: str = ""
    command: str = ""
    tools: ToolsRun | None = None

    def argv(self) -> tuple[str, ...]:
        """The argv with the script's text inline (what ``builder build`` runs)."""
        return (*self.shell, script_text(self.script), self.arg0, *self.args)

    def file_argv(self, script_path: str) -> tuple[str, ...]:
        """The argv when the script is a file at ``script_path`` (``$0`` is then its path)."""
        return (self.shell[0], script_path, *self.args)

    def scripts(self) -> tuple[str, ...]:
        """The script files this run needs (the one it runs; fragments are already inline)."""
        return (self.script,)
