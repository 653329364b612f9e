"""Shared caches without an engine: capability decisions per engine, request entries, index.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.engines import BuildOptions
from builder.engines.buildkit._pb import control_pb2, gateway_pb2
from builder.engines.buildkit.caps import derive_capabilities, image_store_of
from builder.engines.buildkit.export import plan_export
from builder.engines.buildkit.remote_cache import (
    CachePlan,
    index_digest,
    plan_cache,
    put_index_entry,
    record_local_exports,
    resolve_local_imports,
)
from builder.engines.buildkit.solve import SolveSpec, _control_request, with_cache_imports
from builder.errors import ConfigError, EngineUnsupported
from builder.plan.cache_specs import parse_cache_spec

CONTAINERD_LABELS = {
    "org.mobyproject.buildkit.worker.executor": "containerd",
    "org.mobyproject.buildkit.worker.snapshotter": "overlayfs",
}
CAPS = ["exec.meta.base", "file.base", "mergeop", "exporter.multiple", "cache.gha"]
DOCKERD20 = derive_capabilities(
    kind="dockerd", buildkit_version=None, daemon_version="20.10.24", llb_caps=["file.base"]
)
CLASSIC26 = derive_capabilities(
    kind="dockerd",
    buildkit_version="v0.0.0+unknown",
    daemon_version="26.1.5",
    llb_caps=CAPS,
    worker_labels={"org.mobyproject.buildkit.worker.moby.host-gateway-ip": "<nil>"},
)
CONTAINERD26 = derive_capabilities(
    kind="dockerd",
    buildkit_version="v0.0.0+unknown",
    daemon_version="26.1.5",
    llb_caps=CAPS,
    worker_labels=CONTAINERD_LABELS,
)
BUILDKITD = derive_capabilities(kind="buildkitd", buildkit_version="v0.13.2", daemon_version=None, llb_caps=CAPS)
DIGEST = "sha256:" + "ab" * 32


def to(text: str):  # type: ignore[no-untyped-def]
    return parse_cache_spec(text, flag="--cache-to")


def frm(text: str):  # type: ignore[no-untyped-def]
    return parse_cache_spec(text, flag="--cache-from")


def test_image_store_comes_from_the_worker_labels() -> None:
    assert image_store_of(CONTAINERD_LABELS) == "containerd"
    assert image_store_of({"org.mobyproject.buildkit.worker.containerd.namespace": "moby"}) == "containerd"
    assert image_store_of({}) == "classic"
    assert (CLASSIC26.image_store, CONTAINERD26.image_store, BUILDKITD.image_store) == ("classic", "containerd", None)


@pytest.mark.parametrize(
    ("caps", "exports"),
    [
        (DOCKERD20, {"inline"}),
        (CLASSIC26, {"inline"}),
        (CONTAINERD26, {"inline", "registry", "local"}),
        (BUILDKITD, {"inline", "registry", "local", "gha"}),
    ],
)
def test_cache_backends_per_engine(caps, exports) -> None:  # type: ignore[no-untyped-def]
    assert caps.cache_export_types == exports
    assert caps.cache_import_types == {"registry", "local"}
    assert caps.to_json()["cache_export_types"] == sorted(exports)


@pytest.mark.parametrize("caps", [DOCKERD20, CLASSIC26])
@pytest.mark.parametrize("spec", ["type=registry,ref=h.io/a:c", "type=local,dest=out"])
def test_classic_store_refuses_remote_export_naming_engine_and_fix(caps, spec: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineUnsupported) as caught:
        plan_export(caps, BuildOptions(tag="app:1", cache_to=(to(spec),)), None)
    message = str(caught.value)
    assert f"--cache-to type={spec.split(',')[0].split('=')[1]} is not supported on dockerd" in message
    assert "it can export inline" in message and "with the classic image store" in message
    assert "type=inline" in (caught.value.hint or "") and "containerd-snapshotter" in (caught.value.hint or "")


def test_inline_needs_an_image() -> None:
    with pytest.raises(ConfigError, match="type=inline needs an image") as caught:
        plan_export(CLASSIC26, BuildOptions(cache_to=(to("type=inline"),)), None)
    assert caught.value.key_path == "--cache-to"
    plan = plan_export(CLASSIC26, BuildOptions(tag="app:1", cache_to=(to("type=inline"),)), None)
    assert [(e.type, e.attrs) for e in plan.cache.exports] == [("inline", ())]


def test_one_cache_export_before_buildkit_013() -> None:
    assert plan_export(DOCKERD20, BuildOptions(tag="a:1", cache_to=(to("type=inline,"),)), None).cache.exports
    old = derive_capabilities(kind="buildkitd", buildkit_version="v0.12.5", daemon_version=None, llb_caps=["file.base"])
    two = [to("type=inline"), to("type=registry,ref=h.io/x:c")]
    with pytest.raises(EngineUnsupported, match="exports one cache per build"):
        plan_cache(old, two, [], has_image=True)
    assert len(plan_cache(BUILDKITD, two, [], has_image=True).exports) == 2


def test_registry_and_local_entries(tmp_path: Path) -> None:
    plan = plan_cache(
        CONTAINERD26,
        [to("type=registry,ref=h.io/a:c,mode=max"), to("type=local,dest=out,tag=v1")],
        [frm("h.io/a:c"), frm("type=local,src=in")],
        has_image=False,
        cwd=tmp_path,
    )
    assert [(e.type, dict(e.attrs)) for e in plan.exports] == [
        ("registry", {"ref": "h.io/a:c", "mode": "max"}),
        ("local", {"dest": str(tmp_path / "out"), "tag": "v1"}),
    ]
    assert [(e.type, dict(e.attrs)) for e in plan.imports] == [
        ("registry", {"ref": "h.io/a:c"}),
        ("local", {"src": str(tmp_path / "in")}),
    ]
    stores = {s.store_id: (s.path, s.tag, s.writable) for s in plan.stores}
    assert stores == {
        f"local:{tmp_path / 'out'}": (tmp_path / "out", "v1", True),
        f"local:{tmp_path / 'in'}": (tmp_path / "in", "latest", False),
    }
    assert json.loads(plan.imports_json()) == [
        {"Attrs": {"ref": "h.io/a:c"}, "Type": "registry"},
        {"Attrs": {"src": str(tmp_path / "in")}, "Type": "local"},
    ]


def test_control_request_carries_the_cache_entries() -> None:
    options = BuildOptions(cache_to=(to("type=registry,ref=h.io/a:c,mode=max"),), cache_from=(frm("h.io/b:c"),))
    export = plan_export(CONTAINERD26, options, None)
    from builder.engines.buildkit.llb import State

    request = _control_request(
        "ref", SolveSpec(export, None, definition=State.image("docker.io/library/debian:bookworm-slim").marshal())
    )
    assert [(e.Type, dict(e.Attrs)) for e in request.Cache.Exports] == [
        ("registry", {"ref": "h.io/a:c", "mode": "max"})
    ]
    assert [(e.Type, dict(e.Attrs)) for e in request.Cache.Imports] == [("registry", {"ref": "h.io/b:c"})]
    assert not request.Cache.ExportRefDeprecated and not request.Cache.ImportRefsDeprecated
    empty = _control_request(
        "ref",
        SolveSpec(
            plan_export(CONTAINERD26, BuildOptions(), None),
            None,
            definition=State.image("docker.io/library/debian:bookworm-slim").marshal(),
        ),
    )
    assert not empty.HasField("Cache")


def test_bridge_solves_get_the_imports_as_field_or_frontend_option() -> None:
    cache = CachePlan(imports=plan_cache(BUILDKITD, [], [frm("h.io/b:c")], has_image=False).imports)
    llb = with_cache_imports(gateway_pb2.SolveRequest(), cache)
    assert [(e.Type, dict(e.Attrs)) for e in llb.CacheImports] == [("registry", {"ref": "h.io/b:c"})]
    frontend = with_cache_imports(gateway_pb2.SolveRequest(Frontend="dockerfile.v0"), cache)
    assert json.loads(frontend.FrontendOpt["cache-imports"]) == [{"Type": "registry", "Attrs": {"ref": "h.io/b:c"}}]
    assert not frontend.CacheImports
    untouched = with_cache_imports(gateway_pb2.SolveRequest(Frontend="dockerfile.v0"), CachePlan())
    assert "cache-imports" not in untouched.FrontendOpt


def test_local_import_digest_comes_from_index_json(tmp_path: Path) -> None:
    plan = plan_cache(
        BUILDKITD, [], [frm("type=local,src=c"), frm("type=local,src=empty")], has_image=False, cwd=tmp_path
    )
    put_index_entry(
        tmp_path / "c", {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": DIGEST, "size": 3}, "latest"
    )
    resolved, notes = resolve_local_imports(plan)
    assert [dict(e.attrs) for e in resolved.imports] == [{"src": str(tmp_path / "c"), "digest": DIGEST}]
    assert [s.path for s in resolved.stores] == [tmp_path / "c"]
    assert len(notes) == 1 and "no cache there yet" in notes[0] and "empty" in notes[0]


def test_index_json_keeps_other_tags_and_replaces_the_same_tag(tmp_path: Path) -> None:
    other = "sha256:" + "cd" * 32
    put_index_entry(tmp_path, {"digest": DIGEST, "size": 1}, "latest")
    put_index_entry(tmp_path, {"digest": other, "size": 2}, "v1")
    put_index_entry(tmp_path, {"digest": other, "size": 2}, "latest")
    assert index_digest(tmp_path, "latest") == other
    assert index_digest(tmp_path, "v1") == other
    assert index_digest(tmp_path, "nope") is None
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 2
    (tmp_path / "index.json").write_text("not json")
    assert index_digest(tmp_path, "latest") is None


def test_exported_manifest_is_recorded_in_writable_stores_only(tmp_path: Path) -> None:
    plan = plan_cache(BUILDKITD, [to("type=local,dest=out")], [frm("type=local,src=in")], has_image=False, cwd=tmp_path)
    descriptor = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": DIGEST, "size": 9}
    record_local_exports(plan, {"cache.manifest": json.dumps(descriptor)})
    assert index_digest(tmp_path / "out", "latest") == DIGEST
    assert not (tmp_path / "in").exists()
    record_local_exports(plan, {})  # nothing exported: index left alone
    assert index_digest(tmp_path / "out", "latest") == DIGEST


def test_cache_options_message_is_the_wire_shape() -> None:
    entry = control_pb2.CacheOptionsEntry(Type="registry", Attrs={"ref": "x"})
    assert entry.SerializeToString(deterministic=True) == b"\n\x08registry\x12\x08\n\x03ref\x12\x01x"
