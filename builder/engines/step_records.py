"""Step records that travel with a shared cache: written next to it, read by runners that import it.

A fresh CI runner has an empty step cache, so without help its plan says "not built before"
for every step that BuildKit will then take from the imported cache.  After a build that
exports a cache, builder writes the records of the plan's steps beside it:

- ``type=registry,ref=HOST/REPO:TAG``: an OCI artifact at ``HOST/REPO:TAG.builder-steps`` (an
  image manifest with ``artifactType`` :data:`ARTIFACT_TYPE`, the empty config and one JSON
  layer), pushed over the registry's v2 API;
- ``type=local,dest=DIR``: ``DIR/builder-steps.json``.

The document is strict JSON of at most :data:`MAX_BYTES`, read and written with
:data:`TIMEOUT` seconds per request; it holds step ids, keys, recipe revisions, durations and
the digest of the cache manifest it was written for — nothing an engine or a user supplies
as a secret, and never a pickle.  Registry requests go through :class:`builder.registry.RegistryClient`,
as base-image resolution does: docker's per-registry CAs, the loopback rules, and Basic or Bearer
auth with the caller's credentials hook (default :func:`builder.registry.credentials.lookup`).  A
registry that cannot be read or written is "not available", said as a warning by the caller.

>>> # write_records(spec, document)  /  read_records(spec) → document or None
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError, ConfigError, ImageNotFound, RegistryError
from builder.registry.client import RegistryClient
from builder.registry.credentials import lookup as docker_credentials
from builder.registry.transport import CredentialsHook

__all__ = [
    "ARTIFACT_TYPE",
    "LOCAL_NAME",
    "MAX_BYTES",
    "RecordsUnavailable",
    "cache_manifest",
    "read_records",
    "write_records",
]

ARTIFACT_TYPE = "application/vnd.builder.steps.v1+json"
LAYER_TYPE = "application/vnd.builder.steps.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
TAG_SUFFIX = ".builder-steps"
LOCAL_NAME = "builder-steps.json"
SCHEMA = "builder-steps/1"
MAX_BYTES = 1024 * 1024
TIMEOUT = 5.0
_EMPTY = b"{}"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RecordsUnavailable(BuilderError):
    """The step records (or the cache they describe) cannot be read or written; callers warn and go on."""


@dataclass(frozen=True, slots=True)
class _Ref:
    """``host/repository:tag`` split for the v2 API."""

    host: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> _Ref:
        host, sep, rest = ref.partition("/")
        if not sep or not rest:
            raise RecordsUnavailable(f"{ref}: not a registry reference (HOST/REPOSITORY:TAG)")
        rest = rest.split("@", 1)[0]
        last = rest.rsplit("/", 1)[-1]
        repository, tag = (rest.rsplit(":", 1)) if ":" in last else (rest, "latest")
        return cls(host, repository, tag)

    def with_tag(self, tag: str) -> _Ref:
        if not _TAG.match(tag):
            raise RecordsUnavailable(f"{self.host}/{self.repository}: {tag!r} is not a valid tag")
        return _Ref(self.host, self.repository, tag)


def encode(document: Mapping[str, Any]) -> bytes:
    """The document's bytes (sorted keys, UTF-8); RecordsUnavailable when over :data:`MAX_BYTES`."""
    data = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(data) > MAX_BYTES:
        raise RecordsUnavailable(f"the step records are {len(data)} bytes, over the {MAX_BYTES} byte limit")
    return data


def decode(data: bytes, where: str) -> dict[str, Any]:
    """A document from its bytes: strict JSON object of schema :data:`SCHEMA`, else RecordsUnavailable."""
    if len(data) > MAX_BYTES:
        raise RecordsUnavailable(f"{where}: the step records are over the {MAX_BYTES} byte limit")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RecordsUnavailable(f"{where}: the step records are not valid JSON ({exc})") from exc
    if not isinstance(value, dict) or value.get("schema") != SCHEMA or not isinstance(value.get("steps"), list):
        raise RecordsUnavailable(f"{where}: not a builder step-records document of schema {SCHEMA}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# -- where the records live ---------------------------------------------------------------------------------


def write_records(spec: Any, document: Mapping[str, Any], credentials: CredentialsHook | None = None) -> str:
    """Write ``document`` next to the cache ``spec`` exports to; returns where (a reference or a path).

    ``credentials`` (``host -> Credentials | None``, default docker's logins) answers a registry's challenge.
    """
    data = encode(document)
    if spec.type == "local" and spec.dest:
        path = Path(spec.dest) / LOCAL_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{LOCAL_NAME}.{os.getpid()}")
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            raise RecordsUnavailable(f"{path}: cannot write the step records ({exc.strerror or exc})") from exc
        return str(path)
    if spec.type == "registry" and spec.ref:
        ref = _Ref.parse(spec.ref)
        target = ref.with_tag(ref.tag + TAG_SUFFIX)
        try:
            _push_artifact(_registry(spec, ref.host, credentials), target, data)
        except (RegistryError, ConfigError) as exc:
            raise _unavailable(exc) from exc
        return f"{target.host}/{target.repository}:{target.tag}"
    raise RecordsUnavailable(f"{spec.format()}: step records travel only with registry and local caches")


def read_records(spec: Any, credentials: CredentialsHook | None = None) -> dict[str, Any] | None:
    """The document written next to the cache ``spec`` imports from; None when there is none."""
    if spec.type == "local" and spec.src:
        path = Path(spec.src) / LOCAL_NAME
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RecordsUnavailable(f"{path}: cannot read the step records ({exc.strerror or exc})") from exc
        return decode(data, str(path))
    if spec.type == "registry" and spec.ref:
        ref = _Ref.parse(spec.ref)
        target = ref.with_tag(ref.tag + TAG_SUFFIX)
        try:
            pulled = _pull_artifact(_registry(spec, ref.host, credentials), target)
        except (RegistryError, ConfigError) as exc:
            raise _unavailable(exc) from exc
        return None if pulled is None else decode(pulled, f"{target.host}/{target.repository}:{target.tag}")
    return None


def cache_manifest(spec: Any, *, exporting: bool, credentials: CredentialsHook | None = None) -> str | None:
    """The digest of the cache's manifest as it is now (None when the cache is gone)."""
    if spec.type == "local":
        folder = Path((spec.dest if exporting else spec.src) or "")
        try:
            index = json.loads((folder / "index.json").read_bytes()[:MAX_BYTES])
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RecordsUnavailable(f"{folder}/index.json: cannot read the cache index ({exc})") from exc
        return _local_manifest(folder, index, spec.tag or "latest")
    if spec.type == "registry" and spec.ref:
        ref = _Ref.parse(spec.ref)
        try:
            return _registry(spec, ref.host, credentials).manifest_digest(ref.host, ref.repository, ref.tag)
        except (RegistryError, ConfigError) as exc:
            raise _unavailable(exc) from exc
    return None


def _local_manifest(folder: Path, index: Any, tag: str) -> str | None:
    """The digest ``index.json`` names for ``tag`` whose blob is present (None when none is)."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    for entry in manifests if isinstance(manifests, list) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        name = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
        digest = entry["digest"]
        if name in (None, tag) and (folder / "blobs" / digest.replace(":", "/", 1)).is_file():
            return str(digest)
    return None


# -- the registry side: builder.registry's client (docker's CAs, loopback rules, credentials) ---------------


def _registry(spec: Any, host: str, credentials: CredentialsHook | None) -> RegistryClient:
    """The client for the cache's registry: the credentials hook (default: docker's logins), its insecure flag."""
    return RegistryClient(
        credentials=credentials if credentials is not None else docker_credentials,
        timeout=TIMEOUT,
        insecure=(host,) if spec.registry_insecure else (),
    )


def _unavailable(exc: BuilderError) -> RecordsUnavailable:
    return RecordsUnavailable(exc.message, hint=exc.hint)


def _push_artifact(client: RegistryClient, ref: _Ref, data: bytes) -> None:
    layer = client.put_blob(ref.host, ref.repository, data)
    empty = client.put_blob(ref.host, ref.repository, _EMPTY)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": empty, "size": len(_EMPTY)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer, "size": len(data)}],
    }
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    client.put_manifest(ref.host, ref.repository, ref.tag, body, MANIFEST_TYPE)


def _pull_artifact(client: RegistryClient, ref: _Ref) -> bytes | None:
    try:
        manifest = client.manifest(ref.host, ref.repository, ref.tag)
    except ImageNotFound:
        return None
    name = f"registry {ref.host}: {ref.repository}:{ref.tag} is not a step-records artifact"
    try:
        layer = manifest.body["layers"][0]
        digest, size = str(layer["digest"]), int(layer["size"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise RecordsUnavailable(name) from exc
    if manifest.body.get("artifactType") != ARTIFACT_TYPE or size > MAX_BYTES:
        raise RecordsUnavailable(name)
    return client.blob(ref.host, ref.repository, digest)  # checked against its digest
