"""Put ``cerebrium.toml`` on top of a frontend's result, as the ``config`` step's own layer.

The dockerfile.v0 frontend returns its result with the LLB ``Definition``
that produces it.  :func:`with_config_file` appends one FileOp (mkdir the
parent, write the file) on the result's final vertex and a new terminal op, so
a second ``LLBBridge/Solve`` builds the same image plus the config layer — the
layer a ``builder build`` of builder's own steps ends with.
"""

from __future__ import annotations

import hashlib
import posixpath

from builder.engines.buildkit._pb import ops_pb2

NAME_KEY = "llb.customname"
_UNSET_TIME = -1


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def with_config_file(
    definition: ops_pb2.Definition, path: str, text: str, name: str = "[config] /app/cerebrium.toml"
) -> ops_pb2.Definition | None:
    """``definition`` with ``path`` (absolute) holding ``text`` added last; None when it has no single result."""
    ops = list(getattr(definition, "def"))
    if not ops:
        return None
    terminal = ops_pb2.Op.FromString(ops[-1])
    if terminal.WhichOneof("op") is not None or len(terminal.inputs) != 1:
        return None
    final = terminal.inputs[0]
    mkdir = ops_pb2.FileAction(
        input=0,
        secondaryInput=-1,
        output=-1,
        mkdir=ops_pb2.FileActionMkDir(
            path=posixpath.dirname(path) or "/", mode=0o755, makeParents=True, timestamp=_UNSET_TIME
        ),
    )
    mkfile = ops_pb2.FileAction(
        input=1,
        secondaryInput=-1,
        output=0,
        mkfile=ops_pb2.FileActionMkFile(path=path, mode=0o644, data=text.encode("utf-8"), timestamp=_UNSET_TIME),
    )
    file_op = ops_pb2.Op(
        inputs=[ops_pb2.Input(digest=final.digest, index=final.index)], file=ops_pb2.FileOp(actions=[mkdir, mkfile])
    )
    source = _op_by_digest(ops, final.digest)
    if source is not None and source.HasField("platform"):
        file_op.platform.CopyFrom(source.platform)
    file_bytes = file_op.SerializeToString(deterministic=True)
    file_digest = _digest(file_bytes)
    new_terminal = ops_pb2.Op(inputs=[ops_pb2.Input(digest=file_digest, index=0)]).SerializeToString(deterministic=True)
    out = ops_pb2.Definition()
    getattr(out, "def").extend([*ops[:-1], file_bytes, new_terminal])
    for digest, meta in definition.metadata.items():
        out.metadata[digest].CopyFrom(meta)
    out.metadata[file_digest].description[NAME_KEY] = name
    out.metadata[file_digest].caps["file.base"] = True
    return out


def _op_by_digest(ops: list[bytes], digest: str) -> ops_pb2.Op | None:
    for raw in ops:
        if _digest(raw) == digest:
            op: ops_pb2.Op = ops_pb2.Op.FromString(raw)
            return op
    return None
