"""``moby.buildkit.secrets.v1.Secrets/GetSecret``: secret mounts, e.g. the extra CA bundle.

Secrets reach a step only through a secret mount (a tmpfs file for the
duration of one exec), so they never end up in an image layer or a cache key.

    >>> provider = SecretsProvider.with_ca_bundle("corp-ca.pem")   # doctest: +SKIP
    >>> CA_BUNDLE_SECRET_ID
    'ca-bundle'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import grpc

from builder.engines.buildkit._pb import secrets_pb2
from builder.errors import ConfigError
from builder.recipes.tools import CA_SECRET_ID

GET_SECRET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
#: Secret ID under which ``--ca-bundle`` / ``BUILDER_CA_BUNDLE`` is offered to install steps.
CA_BUNDLE_SECRET_ID = CA_SECRET_ID  # the id the recipes mount the CA bundle under
#: PEM private keys of any kind ("PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ...).
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_MAX_SECRET = 500 * 1024  # BuildKit's own limit for one secret


class SecretsProvider:
    """Serve fixed secrets by ID; unknown IDs get ``NOT_FOUND`` (the daemon's "secret not found")."""

    def __init__(self, secrets: Mapping[str, bytes]) -> None:
        for key, value in secrets.items():
            if len(value) > _MAX_SECRET:
                raise ConfigError(f"secret {key!r} is {len(value)} bytes; BuildKit accepts at most {_MAX_SECRET}")
        self._secrets = dict(secrets)
        self.requested: list[str] = []

    @classmethod
    def with_ca_bundle(cls, path: str | os.PathLike[str], extra: Mapping[str, bytes] | None = None) -> SecretsProvider:
        """Offer the PEM file at ``path`` as secret :data:`CA_BUNDLE_SECRET_ID` (plus ``extra``)."""
        name = os.fspath(path)
        try:
            with open(name, "rb") as fh:
                data = fh.read(_MAX_SECRET + 1)
        except OSError as exc:
            raise ConfigError(
                f"cannot read the CA bundle {name}: {exc.strerror}",
                file=name,
                key_path="--ca-bundle",
                hint="pass a readable PEM file with --ca-bundle or BUILDER_CA_BUNDLE",
            ) from exc
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ConfigError(
                f"the CA bundle {name} holds no PEM certificate",
                file=name,
                key_path="--ca-bundle",
                hint="the file must contain '-----BEGIN CERTIFICATE-----' blocks",
            )
        if _PRIVATE_KEY.search(data):
            # The bundle is offered to every install step that asks; a key in it would reach their processes.
            raise ConfigError(
                f"the CA bundle {name} holds a private key",
                file=name,
                key_path="--ca-bundle",
                hint="pass a file of certificates only (e.g. /etc/ssl/certs/ca-certificates.crt)",
            )
        return cls({**(extra or {}), CA_BUNDLE_SECRET_ID: data})

    def handlers(self) -> Mapping[str, grpc.RpcMethodHandler]:
        """The GetSecret handler."""
        return {
            GET_SECRET: grpc.unary_unary_rpc_method_handler(
                self._get,
                request_deserializer=secrets_pb2.GetSecretRequest.FromString,
                response_serializer=secrets_pb2.GetSecretResponse.SerializeToString,
            )
        }

    def _get(
        self, request: secrets_pb2.GetSecretRequest, context: grpc.ServicerContext
    ) -> secrets_pb2.GetSecretResponse:
        self.requested.append(request.ID)
        data = self._secrets.get(request.ID)
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"secret {request.ID} not found")
        return secrets_pb2.GetSecretResponse(data=data)
