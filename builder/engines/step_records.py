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
as a secret, and never a pickle.  Registry requests carry no credentials: a registry that
asks for them (401) is "not available", said as a warning by the caller.

>>> # write_records(spec, document)  /  read_records(spec) → document or None
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import BuilderError

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
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
TAG_SUFFIX = ".builder-steps"
LOCAL_NAME = "builder-steps.json"
SCHEMA = "builder-steps/1"
MAX_BYTES = 1024 * 1024
TIMEOUT = 5.0
_EMPTY = b"{}"
_ACCEPT = ", ".join(
    (
        MANIFEST_TYPE,
        INDEX_TYPE,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
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


def write_records(spec: Any, document: Mapping[str, Any]) -> str:
    """Write ``document`` next to the cache ``spec`` exports to; returns where (a reference or a path)."""
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
        _Registry(ref.host, bool(spec.registry_insecure)).push_artifact(target, data)
        return f"{target.host}/{target.repository}:{target.tag}"
    raise RecordsUnavailable(f"{spec.format()}: step records travel only with registry and local caches")


def read_records(spec: Any) -> dict[str, Any] | None:
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
        pulled = _Registry(ref.host, bool(spec.registry_insecure)).pull_artifact(target)
        return None if pulled is None else decode(pulled, f"{target.host}/{target.repository}:{target.tag}")
    return None


def cache_manifest(spec: Any, *, exporting: bool) -> str | None:
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
        return _Registry(ref.host, bool(spec.registry_insecure)).manifest_digest(ref)
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


# -- a minimal registry client (stdlib, no credentials) -----------------------------------------------------


def _plain_http(host: str, insecure: bool) -> bool:
    """Plain HTTP for loopback registries (as docker does) and for ``registry.insecure=true`` caches."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return insecure or name in ("localhost", "[::1]") or name.startswith("127.")


class _Registry:
    """Just enough of the distribution v2 API for one small artifact."""

    def __init__(self, host: str, insecure: bool) -> None:
        self.host = host
        self.scheme = "http" if _plain_http(host, insecure) else "https"

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        parsed = urllib.parse.urlsplit(path)
        target = path if not parsed.scheme else urllib.parse.urlunsplit(("", "", parsed.path, parsed.query, ""))
        conn_type = http.client.HTTPConnection if self.scheme == "http" else http.client.HTTPSConnection
        conn = conn_type(self.host, timeout=TIMEOUT)
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            data = response.read(MAX_BYTES + 1)
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except (OSError, http.client.HTTPException) as exc:
            raise RecordsUnavailable(f"registry {self.host}: {method} failed ({exc})") from exc
        finally:
            conn.close()

    def _check(self, status: int, what: str, ok: tuple[int, ...]) -> None:
        if status in ok:
            return
        if status in (401, 403):
            raise RecordsUnavailable(f"registry {self.host}: {what} needs credentials (HTTP {status})")
        raise RecordsUnavailable(f"registry {self.host}: {what} answered HTTP {status}")

    def _put_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _, _ = self._request("HEAD", f"/v2/{repository}/blobs/{digest}")
        if status == 200:
            return digest
        status, headers, _ = self._request("POST", f"/v2/{repository}/blobs/uploads/", b"")
        self._check(status, "starting a blob upload", (202,))
        location = headers.get("location", "")
        joiner = "&" if "?" in location else "?"
        status, _, _ = self._request(
            "PUT",
            f"{location}{joiner}digest={urllib.parse.quote(digest)}",
            data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        self._check(status, "uploading a blob", (201,))
        return digest

    def push_artifact(self, ref: _Ref, data: bytes) -> None:
        layer = self._put_blob(ref.repository, data)
        empty = self._put_blob(ref.repository, _EMPTY)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": EMPTY_TYPE, "digest": empty, "size": len(_EMPTY)},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer, "size": len(data)}],
        }
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        status, _, _ = self._request(
            "PUT", f"/v2/{ref.repository}/manifests/{ref.tag}", body, {"Content-Type": MANIFEST_TYPE}
        )
        self._check(status, f"pushing {ref.repository}:{ref.tag}", (201,))

    def pull_artifact(self, ref: _Ref) -> bytes | None:
        status, _, body = self._request(
            "GET", f"/v2/{ref.repository}/manifests/{ref.tag}", headers={"Accept": MANIFEST_TYPE}
        )
        if status == 404:
            return None
        self._check(status, f"reading {ref.repository}:{ref.tag}", (200,))
        try:
            manifest = json.loads(body)
            layer = manifest["layers"][0]
            digest, size = str(layer["digest"]), int(layer["size"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RecordsUnavailable(
                f"registry {self.host}: {ref.repository}:{ref.tag} is not a step-records artifact"
            ) from exc
        if manifest.get("artifactType") != ARTIFACT_TYPE or size > MAX_BYTES:
            raise RecordsUnavailable(f"registry {self.host}: {ref.repository}:{ref.tag} is not a step-records artifact")
        status, _, data = self._request("GET", f"/v2/{ref.repository}/blobs/{digest}")
        self._check(status, f"reading the records of {ref.repository}:{ref.tag}", (200,))
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RecordsUnavailable(
                f"registry {self.host}: the records of {ref.repository}:{ref.tag} do not match their digest"
            )
        return data

    def manifest_digest(self, ref: _Ref) -> str | None:
        status, headers, _body = self._request(
            "HEAD", f"/v2/{ref.repository}/manifests/{ref.tag}", headers={"Accept": _ACCEPT}
        )
        if status == 404:
            return None
        self._check(status, f"looking up {ref.repository}:{ref.tag}", (200,))
        return headers.get("docker-content-digest") or None
