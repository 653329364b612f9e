"""A small OCI distribution (v2) client, standard library only: what planning needs from a registry.

:class:`~builder.registry.client.RegistryClient` resolves an image reference
(``builder.plan.images.ImageRef``) to its manifest digest and to the identity of
its layers (their ChainID), the way BuildKit keys an image source:

>>> # from builder.plan.images import parse_image
>>> # RegistryClient().resolve(parse_image("127.0.0.1:5000/debian:bookworm-slim")).digest
>>> # 'sha256:…'

Credentials come from a hook (``host -> Credentials | None``) given by the
caller: :func:`builder.registry.credentials.lookup` reads them the way docker
does (config file, credsStore, credHelpers).  Every failure is a
:class:`builder.errors.RegistryError` (``RegistryUnavailable``,
``RegistryAuthError``, ``ImageNotFound``), never a raw socket or HTTP error.
"""

from __future__ import annotations

from builder.registry.client import RegistryClient, ResolvedImage
from builder.registry.transport import Credentials, CredentialsHook

__all__ = ["Credentials", "CredentialsHook", "RegistryClient", "ResolvedImage"]
