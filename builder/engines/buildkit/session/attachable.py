"""What a session serves: each attachable contributes gRPC method handlers by full method path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from urllib.parse import unquote_plus

import grpc


class Attachable(Protocol):
    """A service the client offers the daemon inside a session (FileSync, FileSend, Secrets...)."""

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """Handlers keyed by full method path, e.g. ``/moby.filesync.v1.FileSync/DiffCopy``."""


def metadata_values(context: grpc.ServicerContext, key: str) -> list[str]:
    """Every value of gRPC metadata ``key`` on the call, URL-unescaped when ``<key>-encoded`` is ``1``."""
    pairs = context.invocation_metadata() or ()
    values = [str(v) for k, v in pairs if k.lower() == key]
    encoded = any(k.lower() == f"{key}-encoded" and str(v) == "1" for k, v in pairs)
    return [unquote_plus(v) for v in values] if encoded else values


def first_value(context: grpc.ServicerContext, key: str) -> str | None:
    """The first value of gRPC metadata ``key``, or None."""
    values = metadata_values(context, key)
    return values[0] if values else None


class MethodTable(grpc.GenericRpcHandler):
    """A grpc generic handler over a flat ``{method path: handler}`` table."""

    def __init__(self, attachables: Sequence[Attachable]) -> None:
        table: dict[str, grpc.RpcMethodHandler] = {}
        for attachable in attachables:
            for path, handler in attachable.handlers().items():
                if path in table:
                    raise ValueError(f"two session attachables both serve {path}")
                table[path] = handler
        self.table = table

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self.table.get(handler_call_details.method)
