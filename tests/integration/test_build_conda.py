"""The conda step against a local channel served over loopback (the build uses the host network)."""

from __future__ import annotations

import functools
import http.server
import json
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.api import build
from builder.engines.events import Event, StepLog
from builder.errors import SolveFailed
from tests.deps.deps_helpers import load_channel_module
from tests.integration.conda_server import served_channel
from tests.integration.conftest import EngineTarget

CA = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(scope="module")
def channel_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    module = load_channel_module()
    channel = Path(module.build_channel(tmp_path_factory.mktemp("channel"), module.DEFAULT_PACKAGES))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(channel))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_conda_packages_install_into_the_prefix(channel_url: str, engine_target: EngineTarget, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    nonce = uuid.uuid4().hex[:8]
    (app / "cerebrium.toml").write_text(
        '[cerebrium.deployment]\nname = "conda-build"\npython_version = "3.11"\n'
        f'shell_commands = ["ls /opt/conda/conda-meta > conda-meta-{nonce}.txt"]\n\n'
        '[cerebrium.dependencies.paths]\nconda = "conda_pkglist.txt"\n'
    )
    (app / "conda_pkglist.txt").write_text(f"-c {channel_url}\nalpha\n")
    (app / "main.py").write_text("print('conda')\n")
    events: list[Event] = []
    out = tmp_path / "rootfs.tar"
    try:
        result, _, _ = build(
            app,
            engine=engine_target.address,
            tls=engine_target.tls,
            cache_dir=tmp_path / "cache",
            ca_bundle=CA,
            on_event=events.append,
            output=f"type=tar,dest={out}",
        )
    except SolveFailed as exc:
        tail = "\n".join(exc.failure.log_tail) if exc.failure else ""
        pytest.fail(f"{exc.message}\n{tail}")
    import tarfile

    with tarfile.open(out) as tar:
        names = {n.lstrip("./") for n in tar.getnames()}
    assert any(n.startswith("opt/conda/conda-meta/alpha-") for n in names), sorted(n for n in names if "conda" in n)
    assert (
        any(e.line.startswith("conda: installing") for e in events if isinstance(e, StepLog))
        or result.step("conda").cached
    )


def test_channel_credentials_reach_the_conda_step_only_as_a_secret(engine_target: EngineTarget, tmp_path: Path) -> None:
    """A channel behind basic auth, written as http://user:token@host: the install authenticates (py-rattler reads
    the netrc secret) and the token is in no plan, log line, step cache file or image file."""
    from builder.api import plan_project

    token = f"T0K{uuid.uuid4().hex}"
    app = tmp_path / "app"
    app.mkdir()
    with served_channel(tmp_path / "channel", auth=("alice", token)) as (url, seen):
        authed = url.replace("http://", f"http://alice:{token}@")
        (app / "cerebrium.toml").write_text(
            # only main.py ships: the pkglist itself is the project's file, shipped as written when selected
            '[cerebrium.deployment]\nname = "conda-build"\npython_version = "3.11"\ninclude = ["main.py"]\n\n'
            '[cerebrium.dependencies.paths]\nconda = "conda_pkglist.txt"\n'
        )
        (app / "conda_pkglist.txt").write_text(f"-c {authed}\nalpha\n")
        (app / "main.py").write_text("print('conda')\n")
        events: list[Event] = []
        out = tmp_path / "rootfs.tar"
        try:
            result, _, _ = build(
                app,
                engine=engine_target.address,
                tls=engine_target.tls,
                cache_dir=tmp_path / "cache",
                ca_bundle=CA,
                on_event=events.append,
                output=f"type=tar,dest={out}",
            )
        except SolveFailed as exc:
            tail = "\n".join(exc.failure.log_tail) if exc.failure else ""
            pytest.fail(f"{exc.message}\n{tail}")
    assert not result.step("conda").cached
    assert "ok" in seen  # the channel answered an authenticated request
    plan, _, _ = plan_project(app, record=False)
    assert url in plan.step("conda").inputs.channels
    assert token not in json.dumps(plan.to_json())
    assert token not in repr(events)
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    with tarfile.open(out) as tar:
        for member in tar:
            data = tar.extractfile(member) if member.isfile() else None
            if data is not None:
                assert token.encode() not in data.read(), member.name
