"""What the connected engine can do, detected once per connection.

BuildKit >= 0.11 answers ``Control/Info`` with its version; older ones (dockerd 20.10
embeds 0.8) return UNIMPLEMENTED. Every version answers ``LLBBridge/Ping`` with its LLB
and frontend capabilities, but only inside a build: the probe starts an empty
``Control/Solve`` (no definition, no frontend), pings the bridge with that build's id and
returns an empty result, which ends the build without exporting anything.

Request shapes that depend on the engine are decided here, from facts, never guessed
per call: whether the ``Exporters`` list (SolveRequest field 13) is read, how image
config reaches the image, which cache exporters exist, whether MergeOp exists.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import grpc

from builder.engines.buildkit._pb import control_pb2, control_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from builder.engines.buildkit.errors import engine_errors, rpc_code
from builder.errors import EngineError, EngineUnsupported

EngineKind = Literal["buildkitd", "dockerd"]
#: dockerd's image store: the classic graphdriver one, or containerd's (``features.containerd-snapshotter``).
ImageStore = Literal["classic", "containerd"]
ImageConfigRoute = Literal["gateway", "exporter-attr"]

_BUILD_ID_KEY = "buildkit-controlapi-buildid"
_PROBE_TIMEOUT = 20.0
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> tuple[int, int, int] | None:
    """``"v0.13.2"`` → ``(0, 13, 2)``; None when there is no version number in the text."""
    if not text:
        return None
    m = _VERSION.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The capabilities of one engine connection (see module docstring for how they are found).

    ``buildkit_version`` is None when the engine has no ``Info`` (BuildKit < 0.11);
    ``daemon_version`` is dockerd's own version for dockerd engines.
    """

    kind: EngineKind
    buildkit_version: str | None
    daemon_version: str | None
    has_info: bool
    llb_caps: frozenset[str]
    frontend_caps: frozenset[str]
    exporters: frozenset[str]
    cache_export_types: frozenset[str]
    exporters_list_field: bool
    image_config_route: ImageConfigRoute
    entitlements_default: frozenset[str] = field(default=frozenset({"network.host"}))
    #: Cache import (``--cache-from``) types; see :func:`derive_capabilities`.
    cache_import_types: frozenset[str] = frozenset({"registry", "local"})
    #: dockerd's image store (None on buildkitd, which has its own).
    image_store: ImageStore | None = None

    @property
    def supports_mergeop(self) -> bool:
        """True when MergeOp can be used (cap ``mergeop``, BuildKit >= 0.10)."""
        return "mergeop" in self.llb_caps

    @property
    def supports_diffop(self) -> bool:
        """True when DiffOp can be used (cap ``diffop``)."""
        return "diffop" in self.llb_caps

    def has(self, cap: str) -> bool:
        """True when the engine reports the LLB or frontend capability ``cap`` as enabled."""
        return cap in self.llb_caps or cap in self.frontend_caps

    def describe(self) -> str:
        """A short human name for the engine, e.g. ``dockerd 20.10.24 (BuildKit < 0.11)``."""
        if not self.has_info:
            bk = "BuildKit < 0.11, no Info API"
        elif parse_version(self.buildkit_version) in {None, (0, 0, 0)}:
            bk = f"BuildKit of unknown version {self.buildkit_version!r}, >= 0.11"
        else:
            bk = f"BuildKit {self.buildkit_version}"
        if self.kind == "dockerd":
            return f"dockerd {self.daemon_version or '(unknown version)'} ({bk})"
        return f"buildkitd ({bk})"

    def require(self, cap: str, feature: str) -> None:
        """Raise EngineUnsupported naming the engine when ``cap`` is missing.

        >>> caps.require("mergeop", "independent file layers")  # doctest: +SKIP
        """
        if not self.has(cap):
            raise EngineUnsupported(
                f"{feature} needs the BuildKit capability {cap!r}, which this engine ({self.describe()}) does not have",
                hint="use a newer engine (e.g. `ENGINE=dockerd26 scripts/engine-up`, BuildKit 0.13) or drop the option",
            )

    def require_exporter(self, exporter: str, feature: str) -> None:
        """Raise EngineUnsupported when the engine has no exporter of that type."""
        if exporter not in self.exporters:
            raise EngineUnsupported(
                f"{feature} needs the {exporter!r} exporter, which this engine ({self.describe()}) does not have; "
                f"it has: {', '.join(sorted(self.exporters))}",
            )

    def require_cache_export(self, cache_type: str, feature: str) -> None:
        """Raise EngineUnsupported when the engine cannot export cache of that type."""
        if cache_type not in self.cache_export_types:
            raise EngineUnsupported(
                f"{feature} needs cache export type {cache_type!r}, which this engine ({self.describe()}) "
                f"does not support; it supports: {', '.join(sorted(self.cache_export_types)) or 'none'}",
            )

    def to_json(self) -> dict[str, object]:
        """A stable JSON-ready mapping (sorted lists)."""
        return {
            "kind": self.kind,
            "buildkit_version": self.buildkit_version,
            "daemon_version": self.daemon_version,
            "has_info": self.has_info,
            "supports_mergeop": self.supports_mergeop,
            "exporters_list_field": self.exporters_list_field,
            "image_config_route": self.image_config_route,
            "exporters": sorted(self.exporters),
            "cache_export_types": sorted(self.cache_export_types),
            "cache_import_types": sorted(self.cache_import_types),
            "image_store": self.image_store,
            "llb_caps": sorted(self.llb_caps),
            "frontend_caps": sorted(self.frontend_caps),
        }


def derive_capabilities(
    *,
    kind: EngineKind,
    buildkit_version: str | None,
    daemon_version: str | None,
    llb_caps: Iterable[str],
    frontend_caps: Iterable[str] = (),
    worker_labels: Mapping[str, str] | None = None,
) -> Capabilities:
    """Decide the request shapes from the detected facts (pure; unit-tested).

    Cache backends (measured on this project's engines, see README "Shared build caches"):
    dockerd with its classic store exports ``inline`` only (moby's own cache
    manager has no remote-cache exporter) and imports ``registry``/``local``;
    dockerd with the containerd image store (its worker reports a containerd
    ``snapshotter`` label) and buildkitd export ``inline``, ``registry`` and ``local``.
    """
    llb = frozenset(llb_caps)
    version = parse_version(buildkit_version)
    has_info = buildkit_version is not None
    # Caps first: distro builds report version "v0.0.0+unknown" (Debian's dockerd 26 does).
    exporters_list = "exporter.multiple" in llb or (version is not None and version >= (0, 13, 0))
    if kind == "dockerd":
        # moby's exporter: image config only reaches the image through a gateway result (wire sheet §3.1).
        exporters = frozenset({"moby", "local", "tar"})
        store: ImageStore | None = image_store_of(worker_labels or {})
        cache_types = frozenset({"inline", "registry", "local"} if store == "containerd" else {"inline"})
        route: ImageConfigRoute = "gateway"
    else:
        exporters = frozenset({"image", "oci", "docker", "local", "tar"})
        cache_types = frozenset({"inline", "registry", "local"}) | frozenset(
            c.removeprefix("cache.") for c in llb if c in {"cache.gha", "cache.s3", "cache.azblob"}
        )
        route = "exporter-attr"
        store = None
    return Capabilities(
        kind=kind,
        buildkit_version=buildkit_version,
        daemon_version=daemon_version,
        has_info=has_info,
        llb_caps=llb,
        frontend_caps=frozenset(frontend_caps),
        exporters=exporters,
        cache_export_types=cache_types,
        exporters_list_field=exporters_list,
        image_config_route=route,
        image_store=store,
    )


def image_store_of(worker_labels: Mapping[str, str]) -> ImageStore:
    """dockerd's image store, from its BuildKit worker's labels.

    With the containerd image store, moby runs BuildKit's containerd worker, which labels
    itself with its snapshotter (``org.mobyproject.buildkit.worker.snapshotter``); the
    classic store's worker has no such label.
    """
    containerd = any(k.endswith((".worker.snapshotter", ".worker.containerd.namespace")) for k in worker_labels)
    return "containerd" if containerd else "classic"


def query_info(control: control_pb2_grpc.ControlStub, address: str) -> str | None:
    """BuildKit's version from ``Control/Info``, or None when the engine has no Info (UNIMPLEMENTED)."""
    try:
        response = control.Info(control_pb2.InfoRequest(), timeout=_PROBE_TIMEOUT)
    except grpc.RpcError as exc:
        if rpc_code(exc) == grpc.StatusCode.UNIMPLEMENTED:
            return None
        with engine_errors(address, "Info"):
            raise
    version = response.buildkitVersion.version
    return version or None


def query_worker_labels(control: control_pb2_grpc.ControlStub, address: str) -> dict[str, str]:
    """The labels of the engine's workers (``Control/ListWorkers``), merged."""
    with engine_errors(address, "ListWorkers"):
        response = control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=_PROBE_TIMEOUT)
    return {k: v for record in response.record for k, v in record.Labels.items()}


def ping_caps(
    control: control_pb2_grpc.ControlStub,
    bridge: gateway_pb2_grpc.LLBBridgeStub,
    address: str,
) -> gateway_pb2.PongResponse:
    """``LLBBridge/Ping`` inside an empty gateway build (the bridge answers only within a build)."""
    ref = f"builder-caps-{uuid.uuid4().hex}"
    outcome: dict[str, BaseException] = {}

    def solve() -> None:
        try:
            # Internal: a probe is no build of the user's, so it stays out of the engine's build history.
            control.Solve(control_pb2.SolveRequest(Ref=ref, Internal=True), timeout=_PROBE_TIMEOUT)
        except grpc.RpcError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=solve, name="builder-caps-probe", daemon=True)
    thread.start()
    metadata = ((_BUILD_ID_KEY, ref),)
    try:
        with engine_errors(address, "LLBBridge/Ping"):
            pong = bridge.Ping(
                gateway_pb2.PingRequest(), metadata=metadata, timeout=_PROBE_TIMEOUT, wait_for_ready=True
            )
    finally:
        # An empty result ends the build without exporting; errors here only mean the build already ended.
        with contextlib.suppress(grpc.RpcError):
            bridge.Return(
                gateway_pb2.ReturnRequest(result=gateway_pb2.Result()), metadata=metadata, timeout=_PROBE_TIMEOUT
            )
        thread.join(_PROBE_TIMEOUT)
    if "error" in outcome and not pong.LLBCaps:
        with engine_errors(address, "capability probe"):
            raise outcome["error"]
    return pong


def detect_capabilities(
    control: control_pb2_grpc.ControlStub,
    bridge: gateway_pb2_grpc.LLBBridgeStub,
    *,
    address: str,
    kind: EngineKind,
    daemon_version: str | None = None,
) -> Capabilities:
    """Ask the engine (Info and the Ping probe, concurrently) and derive its :class:`Capabilities`."""
    info: list[str | BaseException | None] = []
    labels: dict[str, str] = {}

    def ask_info() -> None:
        try:
            info.append(query_info(control, address))
            if kind == "dockerd":  # the worker's labels tell dockerd's image store
                labels.update(query_worker_labels(control, address))
        except BaseException as exc:
            info.append(exc)

    thread = threading.Thread(target=ask_info, name="builder-info", daemon=True)
    thread.start()
    try:
        pong = ping_caps(control, bridge, address)
    except EngineError as exc:
        raise EngineError(f"cannot detect the capabilities of the engine at {address}: {exc.message}") from exc
    finally:
        thread.join()
    error = next((item for item in info if isinstance(item, BaseException)), None)
    if error is not None:
        raise error
    version = info[0]
    assert not isinstance(version, BaseException)
    return derive_capabilities(
        kind=kind,
        buildkit_version=version,
        daemon_version=daemon_version,
        llb_caps=(c.ID for c in pong.LLBCaps if c.Enabled),
        frontend_caps=(c.ID for c in pong.FrontendAPICaps if c.Enabled),
        worker_labels=labels,
    )
