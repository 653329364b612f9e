"""Where the built image goes, decided from the engine's capabilities (pure; unit-tested).

=================  =========================================  ===========================================
option             dockerd (moby exporter, BuildKit 0.8/0.13)   buildkitd
=================  =========================================  ===========================================
``--tag NAME``     ``moby`` exporter, config via a gateway      ``image`` exporter with the
                   result (LLBBridge Return metadata)           ``containerimage.config`` attr
``--push``         containerd store: ``moby`` ``push=true``;    ``image`` exporter ``push=true``
                   classic store: ``moby``, then Engine API
                   push (see :mod:`.push`)
``--output oci``   EngineUnsupported (no ``oci`` exporter)      ``oci`` exporter over FileSend
``--output tar``   ``tar`` exporter: a *root filesystem* tar    ``tar`` exporter (root filesystem)
nothing            solve only (the result stays in the cache)   solve only
=================  =========================================  ===========================================

On BuildKit 0.8 one solve has one exporter; newer engines read the
``Exporters`` list (cap ``exporter.multiple``) and can tag and write a
tarball in one build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from builder.engines import BuildOptions, OutputSpec
from builder.engines.buildkit.caps import Capabilities
from builder.engines.buildkit.remote_cache import CachePlan, plan_cache
from builder.errors import EngineUnsupported

Route = Literal["direct", "gateway"]
#: Exporters whose output is an image (an inline cache rides in its config).
_IMAGE_EXPORTERS = frozenset({"moby", "image", "oci", "docker"})


@dataclass(frozen=True, slots=True)
class ExporterSpec:
    """One exporter entry: type and attrs."""

    type: str
    attrs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """How the solve request is shaped: route, exporters and whether they go in the list field."""

    route: Route
    exporters: tuple[ExporterSpec, ...]
    use_list: bool
    tarball: OutputSpec | None
    #: Shared cache exports/imports (``--cache-to`` / ``--cache-from``), see remote_cache.
    cache: CachePlan = field(default_factory=CachePlan)

    @property
    def image_name(self) -> str | None:
        for e in self.exporters:
            name = dict(e.attrs).get("name")
            if name:
                return name
        return None


def plan_export(
    caps: Capabilities, options: BuildOptions, config_json: bytes | None, *, exporter_pushes: bool = True
) -> ExportPlan:
    """Decide the request shape; EngineUnsupported names the engine when an option cannot be honoured.

    ``exporter_pushes`` False (dockerd's classic image store) leaves ``--push`` to the Engine API
    after the build: the exporter then only writes the tagged image into the store.
    """
    exporters: list[ExporterSpec] = []
    config = config_json.decode("utf-8") if config_json else None
    if options.tag or options.push:
        if options.push and not options.tag:
            raise EngineUnsupported("--push needs --tag NAME (the registry reference to push to)")
        push = options.push and exporter_pushes
        if caps.kind == "dockerd":
            exporters.append(ExporterSpec("moby", (("name", str(options.tag)), *((("push", "true"),) if push else ()))))
        else:
            attrs = {"name": str(options.tag)}
            if push:
                attrs["push"] = "true"
            if config:
                attrs["containerimage.config"] = config
            exporters.append(ExporterSpec("image", tuple(sorted(attrs.items()))))
    if options.output is not None:
        exporters.append(_tarball(caps, options.output, config))
    if len(exporters) > 1 and not caps.exporters_list_field:
        raise EngineUnsupported(
            f"{caps.describe()} exports one output per build; --tag and --output cannot be combined",
            hint="run two builds (the second is fully cached), or use an engine with BuildKit >= 0.13",
        )
    moby = any(e.type == "moby" for e in exporters)
    route: Route = "gateway" if moby and caps.image_config_route == "gateway" else "direct"
    has_image = any(e.type in _IMAGE_EXPORTERS for e in exporters)
    cache = plan_cache(caps, options.cache_to, options.cache_from, has_image=has_image)
    return ExportPlan(route, tuple(exporters), len(exporters) > 1, options.output, cache)


def _tarball(caps: Capabilities, output: OutputSpec, config: str | None) -> ExporterSpec:
    if output.type != "tar" and output.type not in caps.exporters:
        raise EngineUnsupported(
            f"--output type={output.type} needs the {output.type!r} exporter, which {caps.describe()} does not have "
            f"(it has: {', '.join(sorted(caps.exporters))})",
            hint="use --output type=tar,dest=FILE for a root-filesystem tar, or a standalone buildkitd for OCI",
        )
    attrs: dict[str, str] = {}
    if output.type in ("oci", "docker") and config:
        attrs["containerimage.config"] = config
    return ExporterSpec(output.type, tuple(sorted(attrs.items())))
