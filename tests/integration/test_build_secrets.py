"""Build secrets (``--secret``) against the real engines.

A secret is mounted at ``/run/secrets/ID`` while the steps run and leaves no trace: its value is in no
layer of the image (every layer tar of ``docker save`` is searched), the plan JSON, the LLB, the build's
output or the step cache.  Changing its value changes no key; ``--rerun STEP`` runs the step again and
the next plain build reuses that result.  A private basic-auth index is reached with pip and with uv
through a ``pip_index_url`` secret holding the credentials, or with them in a ``netrc`` secret.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from builder.api import build, plan_project
from builder.cli import main
from builder.engines import BuildOptions
from builder.engines.buildkit.client import EngineClient
from builder.engines.buildkit.convert import ConvertOptions, convert_plan
from builder.engines.buildkit.dockerfile_build import DockerfileSource, build_dockerfile
from builder.engines.events import Event, StepLog
from tests.integration.conftest import EngineTarget
from tests.integration.local_index import LocalIndex, write_wheel

pytestmark = pytest.mark.network

CA = "/etc/ssl/certs/ca-certificates.crt"
DOCKER = "/usr/local/bin/docker"
CHECK = "cat /run/secrets/token > /dev/null && test -s /run/secrets/token"


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(c) for c in items) + "]"


def _app(root: Path, shell: list[str], *, marker: str, extra: str = "", use_uv: bool = False) -> Path:
    root.mkdir(parents=True)
    # A unique main.py: the files step, and so the shell step after it, are new in every test run.
    (root / "main.py").write_text(f"print({marker!r}, {uuid.uuid4().hex!r})\n")
    (root / "cerebrium.toml").write_text(
        "[cerebrium.deployment]\n"
        'name = "builder-secrets-test"\n'  # one name: the base and python steps are reused across the tests
        f'python_version = "3.11"\ninclude = ["*.py"]\nuse_uv = {str(use_uv).lower()}\n'
        f"shell_commands = {_toml_list(shell)}\n"
        '[cerebrium.runtime.custom]\nport = 8000\nentrypoint = ["python", "main.py"]\n' + extra
    )
    return root


def _docker(env: dict[str, str], *args: str) -> bytes:
    done = subprocess.run([DOCKER, *args], env=env, check=True, capture_output=True, timeout=180)
    return done.stdout


def _layer_texts(env: dict[str, str], image: str) -> dict[str, bytes]:
    """Every member of ``docker save IMAGE``, with the files inside each layer tar listed one by one."""
    saved = tarfile.open(fileobj=io.BytesIO(_docker(env, "save", image)))
    found: dict[str, bytes] = {}
    for member in saved.getmembers():
        handle = saved.extractfile(member) if member.isfile() else None
        if handle is None:
            continue
        data = handle.read()
        found[member.name] = data
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            layer = tarfile.open(fileobj=io.BytesIO(data))
            for inner in layer.getmembers():
                body = layer.extractfile(inner) if inner.isfile() else None
                if body is not None:
                    found[f"{member.name}!{inner.name}"] = body.read()
        except tarfile.TarError:
            pass  # a manifest or config, searched as it is
    return found


def _logs(events: list[Event]) -> list[str]:
    return [e.line for e in events if isinstance(e, StepLog)]


def _places(plan_json: str, definition: bytes, events: list[Event], result: object, cache: Path) -> dict[str, bytes]:
    places = {
        "plan JSON": plan_json.encode(),
        "LLB": definition,
        "events": "\n".join(repr(e) for e in events).encode(),
        "build result": repr(result).encode(),
    }
    for path in cache.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes()
    return places


def test_a_secret_is_mounted_in_the_steps_and_left_in_no_layer_plan_llb_output_or_cache(
    tmp_path: Path, engine_target: EngineTarget, engine_env: dict[str, str]
) -> None:
    nonce = uuid.uuid4().hex[:10]
    value = f"S3CRET-{uuid.uuid4().hex}"
    (tmp_path / "token").write_text(value + "\n")
    app = _app(
        tmp_path / "app",
        [CHECK, 'test "$(stat -c %a:%u /run/secrets/token)" = 400:0', "test ! -e /run/secrets/other"],
        marker=f"marker-{nonce}",
    )
    tag, cache = f"builder-secrets:{nonce}", tmp_path / "cache"
    secret = [f"id=token,src={tmp_path / 'token'}"]
    events: list[Event] = []
    result, _, _ = build(
        app,
        engine=engine_target.address,
        tls=engine_target.tls,
        tag=tag,
        cache_dir=cache,
        ca_bundle=CA,
        secrets=secret,
        on_event=events.append,
    )
    assert not result.step("shell").cached  # the commands checking the mount ran and passed
    try:
        layers = _layer_texts(engine_env, tag)
    finally:
        _docker(engine_env, "image", "rm", "-f", tag)
    # The search sees the layers' files (the project's main.py is there); the secret is nowhere.
    assert any(f"marker-{nonce}".encode() in data for data in layers.values())
    assert [name for name, data in layers.items() if value.encode() in data] == []

    plan, _, _ = plan_project(app, cache_dir=cache, record=False, secrets=secret)
    assert plan.step("shell").inputs.secrets == ("token",)
    definition = convert_plan(plan, ConvertOptions(ca_bundle=True)).definition.to_pb().SerializeToString()
    assert b"token" in definition  # the mount names the id
    places = _places(json.dumps(plan.to_json()), definition, events, result, cache)
    assert [where for where, text in places.items() if value.encode() in text] == []


def test_a_new_value_changes_no_key_and_rerun_rebuilds_for_the_next_plain_builds_too(
    tmp_path: Path, engine_target: EngineTarget, engine_env: dict[str, str]
) -> None:
    app = _app(tmp_path / "app", [CHECK, "date +%s%N > /stamp"], marker="rerun")
    cache, tag = tmp_path / "cache", f"builder-secrets-rerun:{uuid.uuid4().hex[:10]}"

    def run(value: str, rerun: tuple[str, ...] = (), *, exact: bool = True) -> tuple[dict[str, bool], str, str]:
        result, analysis, _ = build(
            app,
            engine=engine_target.address,
            tls=engine_target.tls,
            tag=tag,
            cache_dir=cache,
            ca_bundle=CA,
            secrets={"token": value},
            rerun=rerun,
        )
        assert result.mismatches == () or not exact  # a fresh step cache predicts what the engine may hold
        stamp = _docker(engine_env, "run", "--rm", "--network", "host", "--entrypoint", "/bin/cat", tag, "/stamp")
        return {s.step: s.cached for s in result.steps}, analysis.status("shell").reason, stamp.decode()

    try:
        first, _, built = run("one", exact=False)
        assert not first["shell"]
        again, _, stamp = run("two")  # another value: the same keys, everything served from the cache
        assert all(again.values()) and stamp == built, again
        rerun, reason, rebuilt = run("two", ("shell",))
        assert not rerun["shell"] and rerun["files"] and reason == "--rerun" and rebuilt != built
        after, _, stamp = run("two")  # the keys now stand for the rerun's layer
        assert all(after.values()) and stamp == rebuilt, after
    finally:
        _docker(engine_env, "image", "rm", "-f", tag)


def test_the_dockerfile_export_mounts_the_secret_for_the_dockerfile_frontend(
    tmp_path: Path, engine_target: EngineTarget, engine: EngineClient
) -> None:
    app = _app(tmp_path / "app", [CHECK], marker="export")
    cache = tmp_path / "cache"
    argv = ["dockerfile", str(app), "-o", str(app), "--cache-dir", str(cache), "--secret", "id=token,env=UNUSED"]
    assert main(argv) == 0
    assert "--mount=type=secret,id=token,target=/run/secrets/token,mode=0400" in (app / "Dockerfile").read_text()
    tag = f"builder-secrets-export:{uuid.uuid4().hex[:10]}"
    options = BuildOptions(tag=tag, ca_bundle=Path(CA), secrets={"token": b"from-export"})
    build_dockerfile(engine, DockerfileSource.directory(app), options)


@pytest.mark.parametrize("use_uv", [False, True], ids=["pip", "uv"])
@pytest.mark.parametrize("credentials", ["in-url", "netrc"])
def test_a_private_index_is_reached_through_a_pip_index_url_secret(
    tmp_path: Path, engine_target: EngineTarget, use_uv: bool, credentials: str
) -> None:
    nonce = uuid.uuid4().hex[:10]
    password = f"PW{uuid.uuid4().hex}"
    name = f"secretpkg-{nonce}"
    module = name.replace("-", "_")
    served = tmp_path / "served"
    with LocalIndex(served, auth=("bob", password)) as index:
        write_wheel(served / "files", name, "1.0", f"VALUE = 'from-private-{nonce}'\n")
        app = _app(
            tmp_path / "app",
            [f"python -c 'import {module}; print({module}.VALUE)'"],
            marker="index",
            extra=f'[cerebrium.dependencies.pip]\n"{name}" = "==1.0"\n',
            use_uv=use_uv,
        )
        # The credentials in the URL, or the URL plain and the credentials in a netrc secret.
        (tmp_path / "index-url").write_text(index.url("simple/", credentials=credentials == "in-url") + "\n")
        secret = [f"id=pip_index_url,src={tmp_path / 'index-url'}"]
        if credentials == "netrc":
            (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login bob password {password}\n")
            secret.append(f"id=netrc,src={tmp_path / 'netrc'}")
        cache = tmp_path / "cache"
        events: list[Event] = []
        result, _, _ = build(
            app,
            engine=engine_target.address,
            tls=engine_target.tls,
            cache_dir=cache,
            ca_bundle=CA,
            secrets=secret,
            on_event=events.append,
            resolve=False,
        )
        assert index.authorized > 0  # the installer used the credentials from the secret
    assert f"from-private-{nonce}" in _logs(events)
    plan, _, _ = plan_project(app, cache_dir=cache, record=False, secrets=secret, resolve=False)
    definition = convert_plan(plan, ConvertOptions(ca_bundle=True)).definition.to_pb().SerializeToString()
    places = _places(json.dumps(plan.to_json()), definition, events, result, cache)
    assert [where for where, text in places.items() if password.encode() in text] == []
