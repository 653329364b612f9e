"""The marshalled LLB graph: a :class:`Definition` value with digests, names and caps.

``ops`` are the serialized ``pb.Op`` bytes, inputs before the ops that use
them, the terminal op last; ``metadata`` maps each op digest to its
``OpMetadata`` (vertex name, caps), kept apart from the op bytes so names
never change a cache key.

>>> from builder.engines.buildkit.llb import State
>>> d = State.image("docker.io/library/debian:bookworm-slim").run(["true"], name="t").marshal()
>>> d == Definition.from_pb(d.to_pb())
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from builder.engines.buildkit._pb import ops_pb2

NAME_KEY = "llb.customname"


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of serialized op bytes: the id BuildKit gives the vertex."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Definition:
    """A complete LLB definition, compared by value (equal definitions are byte-identical)."""

    ops: tuple[bytes, ...]
    metadata: tuple[tuple[str, bytes], ...]  # (digest, serialized OpMetadata), sorted by digest

    @property
    def digests(self) -> tuple[str, ...]:
        """The digest of every op, in ``ops`` order (the terminal op last)."""
        return tuple(digest_of(b) for b in self.ops)

    @property
    def result(self) -> str:
        """Digest of the op whose output is the result (the terminal op's input)."""
        terminal = ops_pb2.Op.FromString(self.ops[-1])
        return str(terminal.inputs[0].digest)

    def op(self, digest: str) -> ops_pb2.Op:
        """The decoded op with this digest (KeyError when absent)."""
        for data in self.ops:
            if digest_of(data) == digest:
                return ops_pb2.Op.FromString(data)
        raise KeyError(digest)

    def op_metadata(self) -> dict[str, ops_pb2.OpMetadata]:
        """Decoded ``OpMetadata`` by digest."""
        return {d: ops_pb2.OpMetadata.FromString(m) for d, m in self.metadata}

    def names(self) -> dict[str, str]:
        """Vertex display names (``llb.customname``) by digest."""
        return {d: str(m.description[NAME_KEY]) for d, m in self.op_metadata().items() if NAME_KEY in m.description}

    def caps(self) -> frozenset[str]:
        """Every capability any op declares."""
        return frozenset(c for m in self.op_metadata().values() for c, on in m.caps.items() if on)

    def to_pb(self) -> ops_pb2.Definition:
        """The protobuf message to put in ``SolveRequest.Definition``."""
        message = ops_pb2.Definition()
        getattr(message, "def").extend(self.ops)
        for digest, data in self.metadata:
            message.metadata[digest].CopyFrom(ops_pb2.OpMetadata.FromString(data))
        return message

    @classmethod
    def from_pb(cls, message: ops_pb2.Definition) -> Definition:
        """Read a protobuf Definition back (metadata re-serialized deterministically)."""
        meta = tuple(sorted((d, m.SerializeToString(deterministic=True)) for d, m in message.metadata.items()))
        return cls(tuple(bytes(b) for b in getattr(message, "def")), meta)

    def to_bytes(self) -> bytes:
        """Deterministic serialization of the whole Definition."""
        return bytes(self.to_pb().SerializeToString(deterministic=True))

    def write_to(self, stream: BinaryIO) -> None:
        """Write :meth:`to_bytes` to a binary stream (what ``buildctl build`` reads from stdin)."""
        stream.write(self.to_bytes())

    @classmethod
    def build(cls, ops: tuple[bytes, ...], metadata: Mapping[str, ops_pb2.OpMetadata]) -> Definition:
        """Assemble from op bytes and metadata messages (used by :func:`~.state.marshal`)."""
        meta = tuple(sorted((d, m.SerializeToString(deterministic=True)) for d, m in metadata.items()))
        return cls(ops, meta)
