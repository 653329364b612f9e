"""Resolve an image reference against its registry: manifest digest, config digest, layer ChainID.

The client speaks the OCI distribution API (v2): ``HEAD``/``GET /v2/NAME/manifests/REF`` with
the Accept headers of the four manifest kinds (OCI index and manifest, docker manifest list and
v2 manifest), ``GET /v2/NAME/blobs/DIGEST`` for the image config, and the auth challenge dance of
:mod:`builder.registry.challenge` with credentials from the caller's hook.

>>> # client = RegistryClient(credentials=lambda host: None)
>>> # client.resolve(parse_image("127.0.0.1:5000/debian:bookworm-slim"))
>>> # ResolvedImage(reference='127.0.0.1:5000/debian:bookworm-slim', digest='sha256:…', config='sha256:…',
>>> #               layers='sha256:…')
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from builder.errors import BuilderError, ImageNotFound, RegistryAuthError, RegistryError, RegistryUnavailable
from builder.plan.images import ImageRef
from builder.registry.challenge import Challenge, basic_header, parse_challenge, token_from, token_request
from builder.registry.transport import CERTS_DIR, DEFAULT_TIMEOUT, CredentialsHook, Response, Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


@dataclass(frozen=True, slots=True)
class Manifest:
    """A manifest as served: its digest, media type and parsed body."""

    digest: str
    media_type: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """What a tag points at: the manifest ``digest`` (index or manifest), and for the chosen platform
    the image ``config`` digest and ``layers`` (the ChainID of its uncompressed layers)."""

    reference: str
    digest: str
    config: str
    layers: str


def chain_id(diff_ids: Sequence[str]) -> str:
    """The ChainID of layers given by their DiffIDs (OCI image spec), what engines key layer stacks by.

    >>> chain_id(["sha256:a"])
    'sha256:a'
    """
    if not diff_ids:
        raise ValueError("an image without layers has no ChainID")
    chain = diff_ids[0]
    for diff in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256(f"{chain} {diff}".encode()).hexdigest()
    return chain


class RegistryClient:
    """Reads manifests and configs from registries; ``credentials`` is a hook ``host -> Credentials|None``."""

    def __init__(
        self,
        *,
        credentials: CredentialsHook | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        certs_dir: Any = CERTS_DIR,
        transport: Transport | None = None,
        insecure: Iterable[str] = (),
    ) -> None:
        self._credentials = credentials
        self._transport = transport or Transport(timeout=timeout, certs_dir=certs_dir, insecure=frozenset(insecure))
        self._auth: dict[tuple[str, str], str] = {}  # (registry, repository) → Authorization header

    def resolve(self, ref: ImageRef, platform: str = "linux/amd64") -> ResolvedImage:
        """The digest ``ref`` points at now, and its ``platform`` image's config and layer ChainID."""
        top = self.manifest(ref.registry, ref.repository, ref.digest or ref.tag or "latest")
        image = top
        if top.media_type in INDEX_TYPES:
            image = self.manifest(ref.registry, ref.repository, _pick_platform(top, platform, ref))
        config_digest = _config_digest(image, ref)
        config = self.blob(ref.registry, ref.repository, config_digest)
        diff_ids = _diff_ids(config, ref)
        name = str(ImageRef(ref.registry, ref.repository, ref.tag, None)) if ref.tag else str(ref)
        return ResolvedImage(name, top.digest, config_digest, chain_id(diff_ids))

    def head_digest(self, ref: ImageRef) -> str:
        """The digest the tag points at, asked with HEAD (GET when the registry sends no digest header)."""
        path = f"/v2/{ref.repository}/manifests/{ref.digest or ref.tag or 'latest'}"
        response = self._call("HEAD", ref.registry, ref.repository, path, {"Accept": ACCEPT})
        found = response.headers.get("docker-content-digest", "")
        if found.startswith("sha256:"):
            return found
        return self.manifest(ref.registry, ref.repository, ref.digest or ref.tag or "latest").digest

    def manifest(self, registry: str, repository: str, reference: str) -> Manifest:
        """The manifest ``reference`` (tag or digest) of ``repository``; its digest checked against the body."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._call("GET", registry, repository, path, {"Accept": ACCEPT})
        digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
        stated = response.headers.get("docker-content-digest", "")
        expected = reference if reference.startswith("sha256:") else stated
        if expected.startswith("sha256:") and expected != digest:
            raise RegistryError(
                f"registry {registry}: the manifest of {repository}:{reference} does not match its digest "
                f"({expected} stated, {digest} received)",
                registry=registry,
            )
        body = _json_object(response.body, registry, f"manifest {repository}:{reference}")
        media_type = str(body.get("mediaType") or response.headers.get("content-type", "").split(";")[0])
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            raise RegistryError(
                f"registry {registry}: {repository}:{reference} is a {media_type or 'untyped'} manifest, "
                "which builder cannot read",
                registry=registry,
                hint="push the image again with a current docker or buildkit (OCI or docker v2 schema 2)",
            )
        return Manifest(digest, media_type, body)

    def blob(self, registry: str, repository: str, digest: str) -> bytes:
        """The blob ``digest`` of ``repository`` (a config: small), checked against its digest."""
        response = self._call("GET", registry, repository, f"/v2/{repository}/blobs/{digest}", {})
        if "sha256:" + hashlib.sha256(response.body).hexdigest() != digest:
            raise RegistryError(
                f"registry {registry}: blob {digest} of {repository} does not match its digest", registry=registry
            )
        return response.body

    def manifest_digest(self, registry: str, repository: str, reference: str) -> str | None:
        """The digest ``reference`` points at (HEAD), or None when the registry has no such manifest."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = self._call("HEAD", registry, repository, path, {"Accept": ACCEPT}, allow=(404,))
        if response.status == 404:
            return None
        found = response.headers.get("docker-content-digest", "")
        return found if found.startswith("sha256:") else self.manifest(registry, repository, reference).digest

    def put_blob(self, registry: str, repository: str, data: bytes) -> str:
        """Upload ``data`` as a blob of ``repository`` (monolithic; skipped when present); its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = f"/v2/{repository}/blobs/{digest}"
        if self._call("HEAD", registry, repository, path, {}, allow=(404,)).status != 404:
            return digest
        started = self._call("POST", registry, repository, f"/v2/{repository}/blobs/uploads/", {}, body=b"")
        location = started.headers.get("location", "")
        if not location:
            raise RegistryError(
                f"registry {registry}: a blob upload to {repository} got no Location", registry=registry
            )
        joiner = "&" if "?" in location else "?"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        self._call("PUT", registry, repository, f"{location}{joiner}digest={digest}", headers, body=data)
        return digest

    def put_manifest(self, registry: str, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store manifest ``body`` under ``reference`` (a tag); its digest."""
        headers = {"Content-Type": media_type}
        self._call("PUT", registry, repository, f"/v2/{repository}/manifests/{reference}", headers, body=body)
        return "sha256:" + hashlib.sha256(body).hexdigest()

    # --- requests and authentication -------------------------------------------------------------

    def _url(self, registry: str, path: str) -> str:
        """``path`` on the registry, or as given when it is a full URL (an upload's Location)."""
        if path.startswith(("http://", "https://")):
            return path
        return self._transport.base_url(registry) + path

    def _call(
        self,
        method: str,
        registry: str,
        repository: str,
        path: str,
        headers: Mapping[str, str],
        *,
        body: bytes | None = None,
        allow: tuple[int, ...] = (),
    ) -> Response:
        """Send one request, answering an auth challenge once; statuses in ``allow`` are returned, not raised."""
        sent = dict(headers)
        known = self._auth.get((registry, repository))
        if known:
            sent["Authorization"] = known
        response = self._transport.request(method, self._url(registry, path), sent, registry, body)
        if response.status == 401:
            header = self._authorize(registry, repository, response)
            self._auth[(registry, repository)] = header
            authorized = {**headers, "Authorization": header}
            response = self._transport.request(method, self._url(registry, path), authorized, registry, body)
        if response.status in allow:
            return response
        return _checked(response, registry, repository, path)

    def _authorize(self, registry: str, repository: str, response: Response) -> str:
        """The Authorization header that answers the registry's challenge (a token fetched when Bearer)."""
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        creds = self._lookup(registry)
        user = getattr(creds, "username", None) or None
        password = getattr(creds, "password", None) or None
        identity = getattr(creds, "identitytoken", None) or None
        if challenge is not None and challenge.scheme == "bearer":
            return "Bearer " + self._token(registry, repository, challenge, user, password, identity)
        if challenge is not None and challenge.scheme == "basic" and user:
            return basic_header(user, password or "")
        raise _unauthorized(registry, repository, bool(creds))

    def _token(
        self, registry: str, repository: str, challenge: Challenge, user: str | None, pw: str | None, ident: str | None
    ) -> str:
        scope = challenge.get("scope") or f"repository:{repository}:pull"
        try:
            method, url, headers, body = token_request(challenge, scope, user, pw, ident)
        except ValueError as exc:
            raise RegistryError(f"registry {registry}: {exc}", registry=registry) from exc
        answer = self._transport.request(method, url, headers, registry, body)
        if answer.status in (401, 403):
            raise _unauthorized(registry, repository, bool(user or ident))
        token = token_from(answer.body) if answer.status == 200 else None
        if token is None:
            raise RegistryError(
                f"registry {registry}: its token server answered HTTP {answer.status} without a token",
                registry=registry,
            )
        return token

    def _lookup(self, registry: str) -> Any:
        if self._credentials is None:
            return None
        try:
            return self._credentials(registry)
        except BuilderError:
            raise
        except Exception as exc:  # a credential helper's failure must not become a traceback
            raise RegistryAuthError(
                f"registry {registry}: could not read its credentials ({type(exc).__name__})",
                registry=registry,
                hint=f"check the credential helper for {registry}, or run `docker login {registry}`",
            ) from exc


def _unauthorized(registry: str, repository: str, had_credentials: bool) -> RegistryAuthError:
    why = "refused the credentials" if had_credentials else "requires credentials, and none are configured"
    return RegistryAuthError(
        f"registry {registry} {why} for {repository}",
        registry=registry,
        hint=f"run `docker login {registry}` (builder reads docker's config.json)",
    )


def _checked(response: Response, registry: str, repository: str, path: str) -> Response:
    status = response.status
    if 200 <= status < 300:
        return response
    if status in (401, 403):
        raise _unauthorized(registry, repository, True)
    if status == 404:
        what = path.rsplit("/", 1)[-1]
        raise ImageNotFound(
            f"registry {registry} has no {repository}:{what}"
            if not what.startswith("sha256:")
            else f"registry {registry} has no {what} in {repository}",
            registry=registry,
            hint="check the repository and tag (and that the image was pushed)",
        )
    if status >= 500 or status == 429:
        raise RegistryUnavailable(
            f"registry {registry} answered HTTP {status}",
            registry=registry,
            hint="the registry is failing or rate-limiting; try again later",
        )
    raise RegistryError(f"registry {registry} answered HTTP {status} for {path}", registry=registry)


def _json_object(body: bytes, registry: str, what: str) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RegistryError(f"registry {registry}: {what} is not JSON ({exc})", registry=registry) from exc
    if not isinstance(data, dict):
        raise RegistryError(f"registry {registry}: {what} is not a JSON object", registry=registry)
    return data


def _pick_platform(index: Manifest, platform: str, ref: ImageRef) -> str:
    os_name, _, arch = platform.partition("/")
    arch, _, variant = arch.partition("/")
    for entry in index.body.get("manifests") or ():
        found = entry.get("platform") or {} if isinstance(entry, dict) else {}
        if found.get("os") == os_name and found.get("architecture") == arch:
            if variant and found.get("variant") not in (None, variant):
                continue
            digest = entry.get("digest")
            if isinstance(digest, str) and digest.startswith("sha256:"):
                return digest
    raise ImageNotFound(
        f"{ref} has no image for {platform}", registry=ref.registry, hint=f"use an image built for {platform}"
    )


def _config_digest(image: Manifest, ref: ImageRef) -> str:
    config = image.body.get("config")
    digest = config.get("digest") if isinstance(config, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise RegistryError(f"registry {ref.registry}: the manifest of {ref} names no config", registry=ref.registry)
    return digest


def _diff_ids(config: bytes, ref: ImageRef) -> list[str]:
    data = _json_object(config, ref.registry, f"the image config of {ref}")
    rootfs = data.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not diff_ids or not all(isinstance(d, str) for d in diff_ids):
        raise RegistryError(
            f"registry {ref.registry}: the image config of {ref} lists no layers", registry=ref.registry
        )
    return diff_ids
