"""Shared build caches on the wire: ``--cache-to`` / ``--cache-from`` as Solve's cache entries.

:func:`plan_cache` decides, from the engine's capabilities and before anything is
solved, what the request carries; an engine that cannot honour a type is an
:class:`~builder.errors.EngineUnsupported` naming the engine and what would work.

=====================  ======================  =======================  =================
cache type             dockerd, classic store  dockerd, containerd      buildkitd
                                               image store
=====================  ======================  =======================  =================
``--cache-to inline``  yes (needs ``--tag``)   yes (needs ``--tag``)    yes
``--cache-to registry``  no                    yes                      yes
``--cache-to local``   no                      yes                      yes
``--cache-from registry``  yes                 yes                      yes
``--cache-from local`` yes                     yes                      yes
=====================  ======================  =======================  =================

Where the entries go (one request shape for plan builds and ``dockerfile_path``
builds): ``SolveRequest.Cache.Exports`` / ``Imports`` on ``Control/Solve`` (the
controller exports the cache of the final result, whatever the route); on the
gateway route every ``LLBBridge/Solve`` also carries the imports, as
``CacheImports`` beside a Definition or as the frontend option ``cache-imports``
(JSON) for ``dockerfile.v0``.

``type=local`` directories are OCI image layouts the *client* owns: the engine
writes and reads their blobs through the session's content store (store id
``local:<dir>``, see :mod:`builder.engines.buildkit.session.content`), and the
client records the exported cache manifest in ``index.json`` under the tag
(default ``latest``), or reads the digest to import from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.engines.buildkit.caps import Capabilities
from builder.errors import ConfigError, EngineUnsupported
from builder.plan.cache_specs import CacheSpec

#: Exporter response key holding the exported cache manifest's descriptor (JSON).
CACHE_MANIFEST_KEY = "cache.manifest"
#: OCI annotation naming a manifest in ``index.json``.
REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_TAG = "latest"
LOCAL_STORE_PREFIX = "local:"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One ``CacheOptionsEntry``: BuildKit's cache type and attributes."""

    type: str
    attrs: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, object]:
        """The JSON form the dockerfile frontend reads from ``cache-imports``."""
        return {"Type": self.type, "Attrs": dict(self.attrs)}


@dataclass(frozen=True, slots=True)
class LocalStore:
    """A ``type=local`` directory served over the session (``writable`` for ``--cache-to``)."""

    store_id: str
    path: Path
    tag: str
    writable: bool


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What a solve sends for shared caches; empty when no cache option was given."""

    exports: tuple[CacheEntry, ...] = ()
    imports: tuple[CacheEntry, ...] = ()
    stores: tuple[LocalStore, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exports or self.imports)

    def imports_json(self) -> str:
        """The ``cache-imports`` frontend option (compact JSON list)."""
        return json.dumps([e.to_json() for e in self.imports], separators=(",", ":"), sort_keys=True)


def plan_cache(
    caps: Capabilities,
    cache_to: Sequence[CacheSpec],
    cache_from: Sequence[CacheSpec],
    *,
    has_image: bool,
    cwd: str | os.PathLike[str] | None = None,
) -> CachePlan:
    """Check the specs against the engine, then build the entries (no I/O but ``os.path.abspath``).

    ``has_image`` says whether the build exports an image (``--tag``/``--push``/``--output``):
    ``type=inline`` rides in it.  Relative ``dest``/``src`` paths are resolved against ``cwd``.
    """
    for spec in cache_to:
        _check_export(caps, spec, has_image)
    if len(cache_to) > 1 and not caps.exporters_list_field:
        raise EngineUnsupported(
            f"{caps.describe()} exports one cache per build; {len(cache_to)} --cache-to values were given",
            hint="keep one --cache-to (type=registry reaches every runner), or use an engine with BuildKit >= 0.13",
        )
    for spec in cache_from:
        if spec.type not in caps.cache_import_types:
            raise EngineUnsupported(
                f"--cache-from type={spec.type} is not supported on {_engine(caps)}",
                hint=f"it can import: {', '.join(sorted(caps.cache_import_types))}",
            )
    base = Path(cwd) if cwd is not None else Path.cwd()
    exports, imports, stores = [], [], []
    for spec in cache_to:
        entry, store = _entry(spec, spec.dest, base, writable=True)
        exports.append(entry)
        stores += [store] if store else []
    for spec in cache_from:
        entry, store = _entry(spec, spec.src, base, writable=False)
        imports.append(entry)
        stores += [store] if store else []
    return CachePlan(tuple(exports), tuple(imports), tuple(stores))


def _check_export(caps: Capabilities, spec: CacheSpec, has_image: bool) -> None:
    if spec.type not in caps.cache_export_types:
        raise EngineUnsupported(
            f"--cache-to type={spec.type} is not supported on {_engine(caps)}: "
            f"it can export {', '.join(sorted(caps.cache_export_types)) or 'no cache'}",
            hint=_export_hint(caps),
        )
    if spec.type == "inline" and not has_image:
        raise ConfigError(
            "type=inline needs an image to ride in: give --tag NAME (or --output type=oci|docker)",
            key_path="--cache-to",
            hint="add --tag REGISTRY/REPO:TAG --push, or use --cache-to type=registry,ref=…",
        )


def _engine(caps: Capabilities) -> str:
    """The engine's name, with dockerd's image store (it decides the cache backends)."""
    store = f" with the {caps.image_store} image store" if caps.image_store else ""
    return caps.describe() + store


def _export_hint(caps: Capabilities) -> str:
    if caps.kind == "dockerd" and caps.image_store == "classic":
        return (
            "on this engine use --cache-to type=inline with --tag (other runners import it with "
            "--cache-from type=registry,ref=IMAGE), or run dockerd with the containerd image store "
            '(daemon.json: {"features": {"containerd-snapshotter": true}}) or a standalone buildkitd'
        )
    return "use one of the types listed, or another engine"


def _entry(
    spec: CacheSpec, directory: str | None, base: Path, *, writable: bool
) -> tuple[CacheEntry, LocalStore | None]:
    attrs = spec.attrs()
    store = None
    if spec.type == "local" and directory is not None:
        path = Path(os.path.abspath(base / Path(directory).expanduser()))
        key = "dest" if writable else "src"
        attrs[key] = str(path)  # BuildKit only uses it as the store's name: local:<path>
        store = LocalStore(LOCAL_STORE_PREFIX + str(path), path, spec.tag or DEFAULT_TAG, writable)
    return CacheEntry(spec.type, tuple(attrs.items())), store


# --- the client's side of type=local (I/O) ---------------------------------


def resolve_local_imports(plan: CachePlan) -> tuple[CachePlan, tuple[str, ...]]:
    """Fill in ``digest`` for local imports from their ``index.json``; drop those with no cache yet.

    Returns the plan to send and one note per dropped import (a first CI run has no cache:
    that is not an error, as in buildx).
    """
    imports, notes, kept_ids = [], [], set()
    for entry in plan.imports:
        attrs = dict(entry.attrs)
        if entry.type != "local" or "digest" in attrs:
            imports.append(entry)
            kept_ids.add(LOCAL_STORE_PREFIX + attrs.get("src", ""))
            continue
        src, tag = Path(attrs["src"]), attrs.get("tag", DEFAULT_TAG)
        digest = index_digest(src, tag)  # BuildKit's local importer wants the manifest digest itself
        if digest is None:
            notes.append(f"type=local,src={src}: no cache there yet (no index.json entry {tag!r}); built without it")
            continue
        attrs["digest"] = digest
        imports.append(CacheEntry(entry.type, tuple(attrs.items())))
        kept_ids.add(LOCAL_STORE_PREFIX + str(src))
    stores = tuple(s for s in plan.stores if s.writable or s.store_id in kept_ids)
    return CachePlan(plan.exports, tuple(imports), stores), tuple(notes)


def index_digest(layout: Path, tag: str) -> str | None:
    """The digest ``index.json`` in ``layout`` names ``tag`` by, or None when there is none."""
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    for m in manifests if isinstance(manifests, list) else ():
        if isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) == tag:
            digest = m.get("digest")
            return digest if isinstance(digest, str) else None
    return None


def record_local_exports(plan: CachePlan, response: Mapping[str, str]) -> None:
    """After the solve: name the exported cache manifest in each writable store's ``index.json``."""
    text = response.get(CACHE_MANIFEST_KEY)
    writable = [s for s in plan.stores if s.writable]
    if not text or not writable:
        return
    descriptor = json.loads(text)
    for store in writable:
        put_index_entry(store.path, descriptor, store.tag)


def put_index_entry(layout: Path, descriptor: Mapping[str, object], tag: str) -> None:
    """Add ``descriptor`` to ``layout/index.json`` under ``tag`` (replacing that tag's entry), atomically."""
    path = layout / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    if not isinstance(index, dict):
        index = {}
    manifests = [
        m
        for m in index.get("manifests") or []
        if isinstance(m, dict) and (m.get("annotations") or {}).get(REF_NAME) != tag
    ]
    entry = dict(descriptor)
    annotations = entry.get("annotations")
    entry["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), REF_NAME: tag}
    manifests.append(entry)
    index.update({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
    layout.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".index.json.{os.getpid()}")
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
