"""``grpc.health.v1.Health/Check``: the daemon pings every session and drops it on failure."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from builder.engines.buildkit._pb import health_pb2

CHECK = "/grpc.health.v1.Health/Check"


class HealthService:
    """Always answers SERVING; it must never block (v0.8 pings every second with a 10 s timeout).

    ``checks`` counts the checks answered.
    """

    def __init__(self) -> None:
        self.checks = 0

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """The Check handler."""
        return {
            CHECK: grpc.unary_unary_rpc_method_handler(
                self._check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        }

    def _check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        self.checks += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
