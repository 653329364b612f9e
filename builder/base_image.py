"""Resolve ``docker_base_image_url`` to what its tag points at, before planning (planning does no I/O).

The answer (:class:`builder.plan.images.ResolvedBase`: manifest digest + layer ChainID) keys the
``base`` step and pins the image in the LLB and the Dockerfile export, so a re-tag upstream is a
predicted full rebuild, and the same image under another name is a predicted hit.  Where from:

1. a stored resolution younger than the TTL (``$BUILDER_RESOLVE_TTL`` seconds, default 3600;
   the same policy as pip resolution: ``--refresh`` asks now, ``--offline`` takes the last one);
2. the image's registry (:class:`builder.registry.RegistryClient`, credentials from the caller's
   hook); when the stored digest is still current one ``HEAD`` renews it;
3. when no registry answers (or has no such tag), the engine's image store
   (``GET /images/NAME/json``: ``RootFS.Layers`` and ``RepoDigests``);
4. failing all three, the last stored resolution whatever its age, else nothing: the step is
   then keyed by the reference as written, with a note saying so (and that outcome is stored for the
   TTL too, so an unreachable registry costs one timeout per TTL, not one per plan).

A reference pinned ``@sha256:…`` needs no resolution.  Resolutions are JSON values in the
step cache's resolution store (``cache.resolutions``), never pickled.

>>> # found = resolve_base("127.0.0.1:5000/debian:bookworm-slim", policy, store, warnings)
>>> # found.digest, found.layers  →  ('sha256:…', 'sha256:…')
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from builder.diagnostics import Diagnostic
from builder.errors import ConfigError, EngineError, RegistryError
from builder.plan.images import ImageRef, ResolvedBase, parse_image
from builder.registry.client import RegistryClient, chain_id
from builder.registry.transport import CredentialsHook

KEY_PATH = "cerebrium.deployment.docker_base_image_url"
_PREFIX = "base-image-"
_SCHEMA = 1


class Policy(Protocol):
    """When a stored resolution may answer (``builder.deps.lock.uv.ResolutionPolicy`` fits)."""

    offline: bool
    refresh: bool

    def fresh(self, stored: dict[str, Any]) -> bool:
        """Whether ``stored`` (with its ``resolved_at``) may be used without asking."""


class Store(Protocol):
    """JSON values under string keys (``cache.resolutions``, or ``MemoryResolutionStore``)."""

    def get(self, key: str) -> dict[str, Any] | None: ...
    def put(self, key: str, value: dict[str, Any]) -> None: ...


class EngineImages(Protocol):
    """The engine's image store: ``inspect`` is ``GET /images/NAME/json`` (None when it has no such image)."""

    def inspect(self, ref: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Resolver:
    """Where answers come from; every part is injectable (tests pass fakes, the CLI passes nothing)."""

    registry: RegistryClient | None = None
    engine: EngineImages | None = None
    clock: Any = time.time


def resolve_base(
    image: str, policy: Policy, store: Store | None, warnings: list[Diagnostic], resolver: Resolver | None = None
) -> ResolvedBase | None:
    """The resolution of ``image`` (see the module docstring), or None when unresolved or pinned already."""
    try:
        ref = parse_image(image)
    except ConfigError:
        return None  # make_plan reports the bad reference, with its key path
    if ref.digest:
        return None
    resolver = resolver or Resolver()
    key = _PREFIX + hashlib.sha256(f"{ref}|linux/amd64".encode()).hexdigest()
    stored = _stored(store, key)
    if stored is not None and policy.fresh(stored):
        return _value(stored, ref, warnings)
    found = None if policy.offline else _ask(ref, stored, resolver, warnings)
    if found is None and policy.offline:
        found = _from_engine(ref, resolver.engine) if stored is None else None
    if found is None and stored is not None and not stored.get("unresolved"):
        return _value(stored, ref, warnings)
    # Nothing answered is remembered too (for the TTL): an unreachable registry must not cost every plan a timeout.
    record = {"schema": _SCHEMA, "reference": str(ref), "resolved_at": float(resolver.clock())}
    record.update(found if found is not None else {"unresolved": True})
    if store is not None and not (found is None and policy.offline):
        try:
            store.put(key, record)
        except Exception as exc:  # a read-only cache costs the TTL, not the plan
            warnings.append(Diagnostic("warning", "cache", f"could not store the base image resolution ({exc})"))
    return _value(record, ref, warnings)


def _ask(ref: ImageRef, stored: dict[str, Any] | None, resolver: Resolver, warnings: list[Diagnostic]) -> Any:
    """Ask the registry (one HEAD when the stored digest is current), then the engine's image store."""
    client = resolver.registry or RegistryClient()
    try:
        if stored is not None and stored.get("digest") and client.head_digest(ref) == stored["digest"]:
            return {k: stored[k] for k in ("digest", "layers", "source")}
        answer = client.resolve(ref)
        return {"digest": answer.digest, "layers": answer.layers, "source": "registry"}
    except RegistryError as exc:
        found = _from_engine(ref, resolver.engine)
        where = "the engine's image store" if found else "the last resolution" if stored else "nothing"
        warnings.append(Diagnostic("note", KEY_PATH, f"base image {ref}: {exc.message}; using {where}", hint=exc.hint))
        return found


def _from_engine(ref: ImageRef, engine: EngineImages | None) -> dict[str, Any] | None:
    """The image as the engine's store knows it: ChainID of ``RootFS.Layers``, digest from ``RepoDigests``."""
    if engine is None:
        engine = DockerImages.from_env(os.environ)
    if engine is None:
        return None
    try:
        data = engine.inspect(str(ref))
    except EngineError:
        return None
    rootfs = data.get("RootFS") if data else None
    layers = rootfs.get("Layers") if isinstance(rootfs, Mapping) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, str) for x in layers):
        return None
    return {"digest": _repo_digest(ref, data or {}), "layers": chain_id(layers), "source": "engine"}


def _repo_digest(ref: ImageRef, data: Mapping[str, Any]) -> str | None:
    """The manifest digest the engine pulled ``ref``'s repository by (``RepoDigests``), if any."""
    names = {f"{ref.registry}/{ref.repository}"}
    if ref.registry == "docker.io":
        names |= {ref.repository, ref.repository.removeprefix("library/")}
    for entry in data.get("RepoDigests") or ():
        name, _, digest = str(entry).partition("@")
        if name in names and digest.startswith("sha256:"):
            return digest
    return None


def _stored(store: Store | None, key: str) -> dict[str, Any] | None:
    if store is None:
        return None
    try:
        value = store.get(key)
    except Exception:
        return None
    if not isinstance(value, dict) or value.get("schema") != _SCHEMA or not isinstance(value.get("reference"), str):
        return None
    if not value.get("unresolved") and not isinstance(value.get("layers"), str):
        return None
    return value


def _value(record: Mapping[str, Any], ref: ImageRef, warnings: list[Diagnostic]) -> ResolvedBase | None:
    """The resolution a record holds; None (and a note saying what that means) when nothing had answered."""
    if record.get("unresolved"):
        warnings.append(
            Diagnostic(
                "note",
                KEY_PATH,
                f"base image {ref} could not be resolved to a digest: its step is keyed by the tag as written",
                hint="start the registry (or pull the image into the engine) and plan with --refresh, "
                "or pin it name@sha256:…",
            )
        )
        return None
    digest = record.get("digest")
    return ResolvedBase(str(record["reference"]), digest if isinstance(digest, str) else None, str(record["layers"]))


class DockerImages:
    """:class:`EngineImages` over a Docker daemon's API (its unix socket)."""

    def __init__(self, socket_path: str, timeout: float = 5.0) -> None:
        self._path = socket_path
        self._timeout = timeout

    @classmethod
    def for_engine(cls, address: str | None, env: Mapping[str, str]) -> DockerImages | None:
        """The daemon of the engine ``address`` (``docker://PATH`` or ``unix://PATH``), else :meth:`from_env`."""
        for prefix in ("docker://", "unix://"):
            if address and address.startswith(prefix) and len(address) > len(prefix):
                return cls(address[len(prefix) :])
        return None if address else cls.from_env(env)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DockerImages | None:
        """The daemon ``$DOCKER_HOST`` (``unix://``) or ``$BUILDKIT_HOST`` (``docker://PATH``) names, else the
        default socket when it exists; None when there is none to ask (TCP daemons are not asked)."""
        for name, prefix in (("DOCKER_HOST", "unix://"), ("BUILDKIT_HOST", "docker://")):
            value = env.get(name, "")
            if value.startswith(prefix) and len(value) > len(prefix):
                return cls(value[len(prefix) :])
            if value:
                return None
        return cls("/var/run/docker.sock") if os.path.exists("/var/run/docker.sock") else None

    def inspect(self, ref: str) -> Mapping[str, Any] | None:
        from builder.engines.docker_api import DockerAPI, DockerNotFound

        try:
            found = DockerAPI(path=self._path, timeout=self._timeout).inspect_image(ref)
        except DockerNotFound:
            return None
        return found if isinstance(found, Mapping) else None


def registry_client(credentials: CredentialsHook | None = None) -> RegistryClient:
    """The client resolution uses by default: 5 s timeouts, docker's CA folders, ``credentials`` hook."""
    return RegistryClient(credentials=credentials)
