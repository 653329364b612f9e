"""A real engine: connect, list workers, disk usage, capability detection, raw upgrades, CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest

from builder.cli import main
from builder.engines.buildkit._pb import control_pb2
from builder.engines.buildkit.caps import parse_version
from builder.engines.buildkit.client import EngineClient, open_engine
from builder.errors import EngineUnavailable
from tests.integration.conftest import EngineTarget


def test_list_workers(engine: EngineClient) -> None:
    workers = engine.workers()
    assert workers, "the engine reports no worker"
    assert any(p.startswith("linux/") for w in workers for p in w.platforms)


def test_disk_usage(engine: EngineClient) -> None:
    response = engine.control.DiskUsage(control_pb2.DiskUsageRequest(), timeout=60)
    assert all(r.ID for r in response.record)
    kinds = {r.RecordType for r in response.record}
    assert kinds <= {"", "regular", "internal", "frontend", "source.local", "source.git.checkout", "exec.cachemount"}


def test_capabilities_match_the_engine_version(engine: EngineClient) -> None:
    caps = engine.capabilities
    assert caps is engine.capabilities  # detected once per connection
    assert {"source.image", "exec.meta.base", "exec.mount.cache", "file.base"} <= caps.llb_caps
    if engine.kind == "dockerd" and (caps.daemon_version or "").startswith("20.10"):
        with pytest.raises(grpc.RpcError) as info:
            engine.control.Info(control_pb2.InfoRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert not caps.has_info and caps.buildkit_version is None  # the Ping route was used
        assert not caps.supports_mergeop
        assert not caps.exporters_list_field
        assert caps.image_config_route == "gateway"
    if caps.has_info:
        # BuildKit >= 0.11; a distro build may report "v0.0.0+unknown", so decisions follow caps.
        assert caps.buildkit_version
        info = engine.control.Info(control_pb2.InfoRequest(), timeout=10)
        assert info.buildkitVersion.version == caps.buildkit_version
        assert caps.exporters_list_field is (
            "exporter.multiple" in caps.llb_caps or parse_version(caps.buildkit_version) >= (0, 13, 0)
        )
        assert caps.supports_mergeop is ("mergeop" in caps.llb_caps)
    if engine.kind == "dockerd" and (caps.daemon_version or "").startswith("26."):
        assert caps.has_info
        assert caps.exporters_list_field  # dockerd 26.1 embeds BuildKit 0.13 (cap exporter.multiple)
        assert caps.image_config_route == "gateway"
    if engine.kind == "dockerd":
        assert caps.exporters == {"moby", "local", "tar"}


def test_info_value(engine: EngineClient) -> None:
    info = engine.info()
    assert info.address == str(engine.address)
    assert info.platforms
    assert info.to_json()["capabilities"]["kind"] == engine.kind


@pytest.mark.remote  # the tls engine runs it too: the session upgrade through a TLS connection
def test_session_upgrade_makes_the_daemon_the_http2_client(engine: EngineClient) -> None:
    if engine.kind != "dockerd":
        pytest.skip("POST /session exists only on dockerd")
    sid = uuid.uuid4().hex
    headers = [
        ("X-Docker-Expose-Session-Uuid", sid),
        ("X-Docker-Expose-Session-Name", "builder-test"),
        ("X-Docker-Expose-Session-Sharedkey", "builder-test"),
        ("X-Docker-Expose-Session-Grpc-Method", "/grpc.health.v1.Health/Check"),
    ]
    sock, early = engine.open_raw_stream("/session", headers)
    with sock:
        sock.settimeout(10)
        data = early
        while len(data) < 24:
            chunk = sock.recv(64)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def test_unreachable_address_names_what_was_tried(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/no-engine.sock"
    with pytest.raises(EngineUnavailable) as info:
        open_engine(missing, env={})
    assert info.value.tried == (missing,)
    assert missing in str(info.value)
    assert "scripts/engine-up" in (info.value.hint or "")


@pytest.mark.remote  # the tls engine runs it too: the --tls-* flags of the CLI
def test_cli_engine_info_json(
    engine: EngineClient, engine_target: EngineTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    tls = engine_target.cli_args[2:]  # the --tls-* flags of a TCP engine
    code = main(["engine", "info", "--engine", str(engine.address), *tls, "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == engine.kind
    assert data["address"] == str(engine.address)
    assert data["workers"] and data["platforms"]


def test_cli_engine_info_unreachable_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["engine", "info", "--engine", f"unix://{tmp_path}/none.sock"])
    err = capsys.readouterr().err
    assert code == 4
    assert "none.sock" in err and "hint:" in err


def test_disk_usage_and_a_prune_that_matches_nothing_work_on_every_engine(engine: EngineClient) -> None:
    # Shared engines: only a prune whose filter matches no record is safe here (test_remote_engine prunes for real).
    from builder.engines.buildkit.housekeeping import PruneOptions, disk_usage, prune

    before = disk_usage(engine)
    assert before.total >= before.reclaimable >= 0
    assert sum(size for _, size in before.by_type().values()) == before.total
    freed = prune(engine, PruneOptions(all=True, filters=(f"id==builder-no-such-record-{uuid.uuid4().hex}",)))
    assert freed == []
