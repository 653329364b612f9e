"""uv's pip step on the real engine: after one pin changes, only that requirement is resolved with the index.

Each requirement line carries a nonce in an always-true marker, so both lines are new to the
engine's shared uv cache (and to the record the pip step keeps there) at the first build; the
second build changes one pin.  Tiny pure-python wheels keep it quick.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from builder.api import build
from builder.engines.events import Event, StepLog
from builder.recipes import tools
from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"
MARKERS = ("UV_PIP_INSTALL_STARTED", "PIP_INSTALL_STARTED")


def write_requirements(app: Path, nonce: int, six: str) -> None:
    marker = f'python_version > "2.{nonce}"'  # always true, but makes the line new to the engine
    (app / "requirements.txt").write_text(f"six=={six}; {marker}\nidna==3.7; {marker}\n")
    text = (app / "cerebrium.toml").read_text().replace('[cerebrium.dependencies.pip]\nsix = "==1.16.0"\n', "")
    if "[cerebrium.dependencies.paths]" not in text:
        text += '\n[cerebrium.dependencies.paths]\npip = "requirements.txt"\n'
    (app / "cerebrium.toml").write_text(text)


def pip_log(app: Path, target: EngineTarget, cache: Path, rerun: tuple[str, ...] = ()) -> list[str]:
    events: list[Event] = []
    result, _, _ = build(
        app,
        engine=target.address,
        tls=target.tls,
        cache_dir=cache,
        ca_bundle=CA,
        on_event=events.append,
        rerun=rerun,
    )
    assert not result.step("pip").cached
    lines = [e.line for e in events if isinstance(e, StepLog) and e.step == "pip"]
    # The step's tools run (which fetches and checks uv) logs under the pip step before the install starts.
    assert [ln for ln in lines if ln in MARKERS] == ["UV_PIP_INSTALL_STARTED"]  # exactly once
    return lines


def summary(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("uv: ") and not ln.startswith("uv: installed uv ")]


def drop_cache_mounts(engine_target: EngineTarget, target: str) -> int:
    """Remove the engine's cache mounts at ``target`` (not in use): the next step finds them empty."""
    from builder.engines.buildkit._pb import control_pb2
    from builder.engines.buildkit.client import open_engine

    with open_engine(engine_target.address, env=engine_target.env) as engine:
        usage = engine.control.DiskUsage(control_pb2.DiskUsageRequest(filter=["type==exec.cachemount"]), timeout=60)
        ids = [r.ID for r in usage.record if r.Description.startswith(f"cached mount {target} from ")]
        for record_id in ids:
            for _ in engine.control.Prune(control_pb2.PruneRequest(filter=[f"id=={record_id}"], all=True), timeout=120):
                pass
    return len(ids)


def test_empty_tools_mount_gets_uv_from_its_wheel(
    app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path
) -> None:
    """On a fresh engine the pip step fetches the pinned uv itself (uv_boot.py), through the CA bundle."""
    drop_cache_mounts(engine_target, f"{tools.TOOLS_DIR}/uv")
    write_requirements(app_build_basic, uuid.uuid4().int % 10**9, six="1.16.0")
    # --rerun pip: the step's tools run (cached by the engine from any earlier build on this python step)
    # runs again, now on the emptied tools mount.
    lines = pip_log(app_build_basic, engine_target, tmp_path / "cache", rerun=("pip",))
    fetched = [i for i, ln in enumerate(lines) if ln.startswith(f"uv: installed uv {tools.UV_VERSION} from https://")]
    assert fetched and fetched[0] < lines.index("UV_PIP_INSTALL_STARTED"), lines[:5]
    assert not [ln for ln in lines if "quick install" in ln or "using pip" in ln]
    assert "uv: 2 of 2 requirements are new here: resolving them with the index" in lines


def test_changed_pin_is_the_only_requirement_resolved_online(
    app_build_basic: Path, engine_target: EngineTarget, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().int % 10**9
    cache = tmp_path / "cache"
    write_requirements(app_build_basic, nonce, six="1.16.0")
    first = pip_log(app_build_basic, engine_target, cache)
    assert summary(first) == ["uv: 2 of 2 requirements are new here: resolving them with the index"]

    write_requirements(app_build_basic, nonce, six="1.17.0")
    second = pip_log(app_build_basic, engine_target, cache)
    assert summary(second) == [
        "uv: 1 of 2 requirements installed from the cache (offline)",
        "uv: 1 of 2 requirements are new here: resolving them with the index",
    ]
    offline_done = second.index("uv: 1 of 2 requirements installed from the cache (offline)")
    installed = [ln.strip() for ln in second if ln.strip().startswith("+ ")]
    assert installed == ["+ idna==3.7", "+ six==1.17.0"]  # idna once (offline), six once (online)
    assert any(ln.strip() == "+ idna==3.7" for ln in second[:offline_done])
