"""The LLB ops builder emits: source, exec, file and merge vertices as frozen values.

Each op knows its ordered, de-duplicated ``inputs()`` (outputs of other
vertices), turns itself into a ``pb.Op`` given the digests of those inputs
(:meth:`to_op`), declares the capabilities it needs (wire sheet §2.7) and
checks its own invariants in :meth:`validate`.  Display names live in
``name`` and go to ``OpMetadata``, never into the op bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

from builder.engines.buildkit._pb import ops_pb2

Network = Literal["default", "host", "none"]
Sharing = Literal["shared", "private", "locked"]
MountKind = Literal["bind", "cache", "secret", "tmpfs"]

_NETWORK = {"default": ops_pb2.UNSET, "host": ops_pb2.HOST, "none": ops_pb2.NONE}
_SHARING = {
    "shared": ops_pb2.SHARED,
    "private": ops_pb2.PRIVATE,
    "locked": ops_pb2.LOCKED,
}
_MOUNT = {
    "bind": ops_pb2.BIND,
    "cache": ops_pb2.CACHE,
    "secret": ops_pb2.SECRET,
    "tmpfs": ops_pb2.TMPFS,
}
_UNSET_TIME = -1


class LLBError(ValueError):
    """An op was built with invalid values (a bug in the converter, not user input)."""


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/arch[/variant]`` of an op (sets ``Op.platform``)."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise LLBError(f"invalid platform {text!r} (expected os/arch[/variant])")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def to_pb(self) -> ops_pb2.Platform:
        return ops_pb2.Platform(OS=self.os, Architecture=self.architecture, Variant=self.variant)


@dataclass(frozen=True, slots=True)
class Output:
    """Output ``index`` of ``vertex`` (what a State points at)."""

    vertex: Vertex
    index: int = 0


def _unique(outputs: Sequence[Output | None]) -> tuple[Output, ...]:
    seen: dict[Output, None] = {}
    for out in outputs:
        if out is not None:
            seen.setdefault(out, None)
    return tuple(seen)


def _input_pb(inputs: tuple[Output, ...], digests: Sequence[str]) -> list[ops_pb2.Input]:
    return [ops_pb2.Input(digest=d, index=o.index) for o, d in zip(inputs, digests, strict=True)]


@dataclass(frozen=True, slots=True)
class SourceOp:
    """``docker-image://``, ``local://`` (or any other) source identifier plus attrs."""

    identifier: str
    attrs: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    name: str = ""

    def inputs(self) -> tuple[Output, ...]:
        return ()

    def validate(self) -> None:
        if "://" not in self.identifier:
            raise LLBError(f"source identifier {self.identifier!r} has no scheme")

    def caps(self) -> frozenset[str]:
        scheme = self.identifier.split("://", 1)[0]
        if scheme == "docker-image":
            return frozenset({"source.image"})
        if scheme == "local":
            caps = {"source.local"}
            for key, _ in self.attrs:
                caps.add(
                    {
                        "local.sharedkeyhint": "source.local.sharedkeyhint",
                        "local.includepattern": "source.local.includepatterns",
                        "local.excludepatterns": "source.local.excludepatterns",
                        "local.followpaths": "source.local.followpaths",
                        "local.unique": "source.local.unique",
                        "local.session": "source.local.sessionid",
                    }.get(key, "source.local")
                )
            return frozenset(caps)
        return frozenset({f"source.{scheme}"})

    def to_op(self, digests: Sequence[str]) -> ops_pb2.Op:
        op = ops_pb2.Op(source=ops_pb2.SourceOp(identifier=self.identifier, attrs=dict(self.attrs)))
        if self.platform is not None:
            op.platform.CopyFrom(self.platform.to_pb())
        return op


@dataclass(frozen=True, slots=True)
class Mount:
    """One exec mount.  ``source`` None is scratch; only the root bind mount produces an output."""

    dest: str
    kind: MountKind = "bind"
    source: Output | None = None
    selector: str = ""
    readonly: bool = False
    cache_id: str = ""
    sharing: Sharing = "shared"
    secret_id: str = ""
    mode: int = 0o444
    #: A secret mount the engine skips when the session has no such secret (else the exec fails).
    optional: bool = False

    def validate(self) -> None:
        if not self.dest.startswith("/"):
            raise LLBError(f"mount destination {self.dest!r} is not absolute")
        if self.kind == "cache" and not self.cache_id:
            raise LLBError(f"cache mount at {self.dest} has no id")
        if self.kind == "secret" and (not self.secret_id or self.source is not None):
            raise LLBError(f"secret mount at {self.dest} needs an id and no source")

    def caps(self) -> frozenset[str]:
        caps = {
            "bind": {"exec.mount.bind"},
            "cache": {"exec.mount.cache", "exec.mount.cache.sharing"},
            "secret": {"exec.mount.secret"},
            "tmpfs": {"exec.mount.tmpfs"},
        }[self.kind]
        if self.selector:
            caps = caps | {"exec.mount.selector"}
        if self.kind == "bind" and self.dest != "/" and not self.readonly:
            caps = caps | {"exec.mount.bind.readwrite-nooutput"}
        return frozenset(caps)


@dataclass(frozen=True, slots=True)
class ExecOp:
    """Run ``args`` with the given mounts; output 0 is the root filesystem afterwards."""

    args: tuple[str, ...]
    mounts: tuple[Mount, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    network: Network = "default"
    platform: Platform | None = None
    name: str = ""
    #: Run again whatever the engine's cache holds (OpMetadata, not the op bytes; see State.marshal).
    ignore_cache: bool = False

    def sorted_mounts(self) -> tuple[Mount, ...]:
        return tuple(sorted(self.mounts, key=lambda m: m.dest))

    def inputs(self) -> tuple[Output, ...]:
        return _unique([m.source for m in self.sorted_mounts()])

    def validate(self) -> None:
        if not self.args:
            raise LLBError("exec needs at least one argument")
        if not self.cwd.startswith("/"):
            raise LLBError(f"exec working directory {self.cwd!r} is not absolute")
        dests = [m.dest for m in self.mounts]
        if len(set(dests)) != len(dests):
            raise LLBError(f"duplicate mount destinations in {dests}")
        roots = [m for m in self.mounts if m.dest == "/"]
        if len(roots) != 1 or roots[0].kind != "bind":
            raise LLBError("exec needs exactly one bind mount at /")
        for m in self.mounts:
            m.validate()

    def caps(self) -> frozenset[str]:
        caps = {"exec.meta.base"}
        if self.network != "default":
            caps.add("exec.meta.network")
        for m in self.mounts:
            caps |= m.caps()
        return frozenset(caps)

    def to_op(self, digests: Sequence[str]) -> ops_pb2.Op:
        inputs = self.inputs()
        position = {o: i for i, o in enumerate(inputs)}
        mounts = []
        for m in self.sorted_mounts():
            pb = ops_pb2.Mount(
                dest=m.dest,
                selector=m.selector,
                readonly=m.readonly,
                mountType=_MOUNT[m.kind],
                input=position[m.source] if m.source is not None else -1,
                output=0 if m.dest == "/" else -1,
            )
            if m.kind == "cache":
                pb.cacheOpt.CopyFrom(ops_pb2.CacheOpt(ID=m.cache_id, sharing=_SHARING[m.sharing]))
            elif m.kind == "secret":
                pb.secretOpt.CopyFrom(ops_pb2.SecretOpt(ID=m.secret_id, mode=m.mode, optional=m.optional))
            mounts.append(pb)
        meta = ops_pb2.Meta(args=list(self.args), env=list(self.env), cwd=self.cwd, user=self.user)
        op = ops_pb2.Op(
            inputs=_input_pb(inputs, digests),
            exec=ops_pb2.ExecOp(meta=meta, mounts=mounts, network=_NETWORK[self.network]),
        )
        if self.platform is not None:
            op.platform.CopyFrom(self.platform.to_pb())
        return op


@dataclass(frozen=True, slots=True)
class Mkdir:
    path: str
    mode: int = 0o755
    parents: bool = True


@dataclass(frozen=True, slots=True)
class Mkfile:
    path: str
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True, slots=True)
class Rm:
    path: str
    allow_not_found: bool = True
    allow_wildcard: bool = False


@dataclass(frozen=True, slots=True)
class Copy:
    """Copy ``src`` of ``source`` (None: scratch) to ``dest``; directory contents when ``contents``."""

    source: Output | None
    src: str
    dest: str
    contents: bool = True
    create_parents: bool = True
    follow_symlinks: bool = False


FileAction = Union[Mkdir, Mkfile, Rm, Copy]  # noqa: UP007 - a runtime alias


@dataclass(frozen=True, slots=True)
class FileOp:
    """File actions applied in order on ``base`` (None: scratch); the last action is output 0."""

    base: Output | None
    actions: tuple[FileAction, ...]
    platform: Platform | None = None
    name: str = ""

    def inputs(self) -> tuple[Output, ...]:
        return _unique([self.base, *(a.source for a in self.actions if isinstance(a, Copy))])

    def validate(self) -> None:
        if not self.actions:
            raise LLBError("a file op needs at least one action")
        for a in self.actions:
            paths = [a.dest] if isinstance(a, Copy) else [a.path]
            if isinstance(a, Copy):
                paths.append(a.src)
            for p in paths:
                if not p.startswith("/"):
                    raise LLBError(f"file action path {p!r} is not absolute")

    def caps(self) -> frozenset[str]:
        return frozenset({"file.base"})

    def to_op(self, digests: Sequence[str]) -> ops_pb2.Op:
        inputs = self.inputs()
        position = {o: i for i, o in enumerate(inputs)}
        actions = []
        for j, action in enumerate(self.actions):
            if j == 0:
                current = position[self.base] if self.base is not None else -1
            else:
                current = len(inputs) + j - 1
            output = 0 if j == len(self.actions) - 1 else -1
            pb = ops_pb2.FileAction(input=current, secondaryInput=-1, output=output)
            _fill_action(pb, action, position)
            actions.append(pb)
        op = ops_pb2.Op(inputs=_input_pb(inputs, digests), file=ops_pb2.FileOp(actions=actions))
        if self.platform is not None:
            op.platform.CopyFrom(self.platform.to_pb())
        return op


def _fill_action(pb: ops_pb2.FileAction, action: FileAction, position: dict[Output, int]) -> None:
    if isinstance(action, Mkdir):
        pb.mkdir.CopyFrom(
            ops_pb2.FileActionMkDir(
                path=action.path,
                mode=action.mode,
                makeParents=action.parents,
                timestamp=_UNSET_TIME,
            )
        )
    elif isinstance(action, Mkfile):
        pb.mkfile.CopyFrom(
            ops_pb2.FileActionMkFile(
                path=action.path,
                mode=action.mode,
                data=action.data,
                timestamp=_UNSET_TIME,
            )
        )
    elif isinstance(action, Rm):
        pb.rm.CopyFrom(
            ops_pb2.FileActionRm(
                path=action.path,
                allowNotFound=action.allow_not_found,
                allowWildcard=action.allow_wildcard,
            )
        )
    else:
        pb.secondaryInput = position[action.source] if action.source is not None else -1
        pb.copy.CopyFrom(
            ops_pb2.FileActionCopy(
                src=action.src,
                dest=action.dest,
                mode=-1,
                followSymlink=action.follow_symlinks,
                dirCopyContents=action.contents,
                createDestPath=action.create_parents,
                allowWildcard=True,
                allowEmptyWildcard=True,
                timestamp=_UNSET_TIME,
            )
        )


@dataclass(frozen=True, slots=True)
class MergeOp:
    """Layer ``layers`` on each other, later ones winning (BuildKit >= 0.10, cap ``mergeop``)."""

    layers: tuple[Output, ...]
    name: str = ""

    def inputs(self) -> tuple[Output, ...]:
        return _unique(list(self.layers))

    def validate(self) -> None:
        if len(self.layers) < 2:
            raise LLBError("a merge needs at least two layers")

    def caps(self) -> frozenset[str]:
        return frozenset({"mergeop"})

    def to_op(self, digests: Sequence[str]) -> ops_pb2.Op:
        inputs = self.inputs()
        position = {o: i for i, o in enumerate(inputs)}
        merge = ops_pb2.MergeOp(inputs=[ops_pb2.MergeInput(input=position[o]) for o in self.layers])
        return ops_pb2.Op(inputs=_input_pb(inputs, digests), merge=merge)


Vertex = Union[SourceOp, ExecOp, FileOp, MergeOp]  # noqa: UP007 - a runtime alias
