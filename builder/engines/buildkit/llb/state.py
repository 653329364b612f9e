"""An immutable, fluent LLB ``State``: every method returns a new State.

A State is a pointer to one vertex output (None = scratch) plus the defaults
later ``run`` calls use (env, working dir, user, network, platform, extra
mounts).  Nothing talks to an engine; :meth:`State.marshal` walks the graph
inputs-first and returns a deterministic :class:`Definition`.

>>> base = State.image("docker.io/library/debian:bookworm-slim")
>>> built = base.env("A", "1").dir("/app").run(["/bin/sh", "-c", "echo hi > f"], name="[shell] echo")
>>> built.marshal() == built.marshal()
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from builder.engines.buildkit._pb import ops_pb2
from builder.engines.buildkit.llb.definition import NAME_KEY, Definition, digest_of
from builder.engines.buildkit.llb.ops import (
    ExecOp,
    FileAction,
    FileOp,
    LLBError,
    MergeOp,
    Mount,
    Network,
    Output,
    Platform,
    SourceOp,
    Vertex,
)
from builder.recipes.tools import DEFAULT_PATH

_TERMINAL_CAPS = ("constraints", "platform", "meta.description")


@dataclass(frozen=True, slots=True)
class State:
    """A filesystem state in the build graph plus run defaults (frozen; compared by value)."""

    output: Output | None = None
    env_vars: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    cwd: str = "/"
    user: str = ""
    network: Network = "default"
    platform: Platform | None = None
    mounts: tuple[Mount, ...] = ()

    # --- sources -------------------------------------------------------------------------------

    @classmethod
    def scratch(cls, *, platform: Platform | None = None) -> State:
        """The empty filesystem."""
        return cls(platform=platform)

    @classmethod
    def image(cls, ref: str, *, platform: Platform | None = None, name: str = "") -> State:
        """A ``docker-image://`` source; ``ref`` must be fully qualified (``docker.io/library/x:tag``)."""
        plat = platform or Platform()
        return cls(
            Output(SourceOp(f"docker-image://{ref}", (), plat, name or ref)),
            platform=plat,
        )

    @classmethod
    def local(cls, dir_name: str, attrs: Iterable[tuple[str, str]] = (), *, name: str = "") -> State:
        """A ``local://<dir_name>`` source served over the build session."""
        return cls(
            Output(
                SourceOp(
                    f"local://{dir_name}",
                    tuple(sorted(attrs)),
                    None,
                    name or f"local://{dir_name}",
                )
            )
        )

    # --- defaults ------------------------------------------------------------------------------

    def env(self, key: str, value: str) -> State:
        """Set one environment variable for later runs (replacing an earlier value in place)."""
        if not key or "=" in key:
            raise LLBError(f"invalid environment variable name {key!r}")
        pairs = [(k, value if k == key else v) for k, v in self.env_vars]
        if all(k != key for k, _ in self.env_vars):
            pairs.append((key, value))
        return replace(self, env_vars=tuple(pairs))

    def get_env(self, key: str) -> str | None:
        """The value later runs will see for ``key``."""
        return next((v for k, v in self.env_vars if k == key), None)

    def dir(self, path: str) -> State:
        """Working directory for later runs (absolute)."""
        if not path.startswith("/"):
            raise LLBError(f"working directory {path!r} is not absolute")
        return replace(self, cwd=path)

    def with_user(self, user: str) -> State:
        """User for later runs."""
        return replace(self, user=user)

    def with_network(self, network: Network) -> State:
        """Network mode for later runs."""
        return replace(self, network=network)

    def with_mount(self, mount: Mount) -> State:
        """An extra mount every later run gets (replaces one at the same destination)."""
        kept = tuple(m for m in self.mounts if m.dest != mount.dest)
        return replace(self, mounts=(*kept, mount))

    # --- operations ----------------------------------------------------------------------------

    def run(
        self,
        args: Sequence[str],
        *,
        name: str,
        mounts: Sequence[Mount] = (),
        env: Sequence[tuple[str, str]] = (),
        ignore_cache: bool = False,
    ) -> State:
        """Execute ``args`` (argv, never a shell string unless args says ``sh -c``) on this state.

        With ``ignore_cache`` the command runs again whatever the engine's cache holds, and so does
        every vertex built on its result (their cache keys alone would hand back the old results)."""
        state = self
        for key, value in env:
            state = state.env(key, value)
        extra = {m.dest: m for m in (*self.mounts, *mounts)}
        root = Mount("/", "bind", self.output)
        op = ExecOp(
            tuple(args),
            (root, *(m for d, m in sorted(extra.items()) if d != "/")),
            tuple(f"{k}={v}" for k, v in state.env_vars),
            self.cwd,
            self.user,
            self.network,
            self.platform,
            name,
            ignore_cache,
        )
        op.validate()
        return replace(self, output=Output(op))

    def file(self, *actions: FileAction, name: str) -> State:
        """Apply file actions (one FileOp vertex) on this state."""
        op = FileOp(self.output, tuple(actions), self.platform, name)
        op.validate()
        return replace(self, output=Output(op))

    @staticmethod
    def merge(states: Sequence[State], *, name: str) -> State:
        """Layer ``states`` on each other (later wins); the result keeps the first state's defaults."""
        layers = tuple(s.output for s in states if s.output is not None)
        if len(layers) == 1:
            return replace(states[0], output=layers[0])
        op = MergeOp(layers, name)
        op.validate()
        return replace(states[0], output=Output(op))

    @property
    def vertex(self) -> Vertex | None:
        """The vertex this state points at (None for scratch)."""
        return self.output.vertex if self.output is not None else None

    def digest(self) -> str:
        """The digest of this state's vertex (what Status reports for it)."""
        return _Marshaller().visit(_require(self.output).vertex)

    def marshal(self) -> Definition:
        """The deterministic Definition whose result is this state (inputs first, deduplicated by digest)."""
        return self.marshal_with_digests(())[0]

    def marshal_with_digests(self, states: Iterable[State]) -> tuple[Definition, tuple[str, ...]]:
        """``marshal()`` plus the vertex digests of ``states`` from the same pass (each op is encoded once).

        States outside this state's graph are marshalled too but add nothing to the Definition.
        """
        output = _require(self.output)
        m = _Marshaller()
        root = m.visit(output.vertex)
        ops_before, meta_before = dict(m.ops), dict(m.meta)
        digests = tuple(m.visit(_require(s.output).vertex) for s in states)
        m.ops, m.meta = ops_before, meta_before  # only this state's graph belongs to the Definition
        definition = self._finish(m, root, output)
        return definition, digests

    def _finish(self, m: _Marshaller, root: str, output: Output) -> Definition:
        terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=root, index=output.index)])
        data = terminal.SerializeToString(deterministic=True)
        digest = m.add(data)
        meta = m.meta.setdefault(digest, ops_pb2.OpMetadata())
        for cap in _TERMINAL_CAPS:
            meta.caps[cap] = True
        return Definition.build(tuple(m.ops.values()), m.meta)


def _require(output: Output | None) -> Output:
    if output is None:
        raise LLBError("cannot marshal the scratch state: it has no vertex")
    return output


class _Marshaller:
    """One marshal pass: op bytes by digest (insertion = inputs-first order) and their metadata."""

    def __init__(self) -> None:
        self.ops: dict[str, bytes] = {}
        self.meta: dict[str, ops_pb2.OpMetadata] = {}
        self._seen: dict[int, str] = {}
        self._ignored: set[str] = set()

    def add(self, data: bytes) -> str:
        digest = digest_of(data)
        self.ops.setdefault(digest, data)
        return digest

    def visit(self, vertex: Vertex) -> str:
        known = self._seen.get(id(vertex))
        if known is not None:
            return known
        vertex.validate()
        digests = [self.visit(o.vertex) for o in vertex.inputs()]
        digest = self.add(vertex.to_op(digests).SerializeToString(deterministic=True))
        meta = self.meta.setdefault(digest, ops_pb2.OpMetadata())
        for cap in sorted(vertex.caps()):
            meta.caps[cap] = True
        if vertex.name:
            meta.description[NAME_KEY] = vertex.name
        if (isinstance(vertex, ExecOp) and vertex.ignore_cache) or self._ignored.intersection(digests):
            meta.ignore_cache = True
            self._ignored.add(digest)
        self._seen[id(vertex)] = digest
        return digest
