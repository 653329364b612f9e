"""Push and registry credentials against the real registries and engines (no mocks).

Engines are chosen per behaviour, to keep the run short: dockerd 26 with the classic image store
pushes through the Engine API; fleet runner A (containerd image store) pushes from BuildKit's
exporter; dockerd 20.10 shows its known limit (its BuildKit speaks plain HTTP to 127.0.0.1).
Private base images come from the TLS + htpasswd registry through the build session's Auth
service.  Every command's output, the plan JSON and the step cache are searched for the password.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.engines.buildkit.push import registry_auth_header
from builder.registry.credentials import Credentials
from tests.integration.fleet import AuthRegistry, docker_api, unique_repository
from tests.integration.targets import ENGINE_DIR, REPO_ROOT, EngineTarget, read_env

pytestmark = pytest.mark.fleet

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LOCAL_BASE = "debian:bookworm-slim"  # in every engine's image store (scripts/engine-up)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def _engine(name: str) -> EngineTarget:
    path = ENGINE_DIR / name / "env"
    if not path.is_file():
        pytest.fail(f"engine {name} is not up: run `make engine-up`")
    return EngineTarget(name, read_env(path))


@pytest.fixture(scope="module")
def dockerd26() -> EngineTarget:
    return _engine("dockerd26")


@pytest.fixture(scope="module")
def dockerd20() -> EngineTarget:
    return _engine("dockerd20")


@pytest.fixture(scope="module")
def private_base(auth_registry: AuthRegistry, dockerd26: EngineTarget) -> Iterator[str]:
    """``debian:bookworm-slim`` pushed to the auth registry under a fresh name, untagged locally again.

    No engine holds it under that name, so a build naming it pulls it through the registry.
    """
    api = docker_api(dockerd26)
    repository = f"{auth_registry.address}/{unique_repository('private-base')}"
    status, body = api.request("POST", f"/images/{LOCAL_BASE}/tag", query={"repo": repository, "tag": "1"})
    assert status == 201, body
    login = Credentials(auth_registry.address, auth_registry.user, auth_registry.password)
    path = f"/images/{urllib.parse.quote(repository, safe='/:')}/push"
    messages = list(
        api.stream("POST", path, query={"tag": "1"}, headers={"X-Registry-Auth": registry_auth_header(login)})
    )
    assert not [m for m in messages if "error" in m], messages
    status, body = api.request("DELETE", f"/images/{repository}:1", query={"noprune": "1"})
    assert status == 200, body
    yield f"{repository}:1"


def _app(root: Path, base: str | None = None) -> Path:
    """A tiny app (Debian's Python, no dependencies) whose shell step is new to every engine."""
    root.mkdir(parents=True)
    base_line = f'docker_base_image_url = "{base}"\n' if base else ""
    (root / "cerebrium.toml").write_text(
        "[cerebrium.deployment]\n"
        f'name = "registry-auth"\n{base_line}python_version = "3.11"\n'
        'include = ["*"]\nexclude = [".*"]\n'
        f'shell_commands = ["echo {uuid.uuid4().hex} > /tmp/nonce"]\n\n'
        '[cerebrium.runtime.custom]\nport = 8765\nentrypoint = ["python", "main.py"]\n',
        encoding="utf-8",
    )
    (root / "main.py").write_text("print('hi')\n", encoding="utf-8")
    return root


def _docker_config(folder: Path, content: dict[str, object]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(content), encoding="utf-8")
    return folder


def _auths(registry: AuthRegistry, password: str) -> dict[str, object]:
    token = base64.b64encode(f"{registry.user}:{password}".encode()).decode()
    return {"auths": {registry.address: {"auth": token}}}


class Runs:
    """``builder`` command runs of one test, every byte of their output kept for the password search."""

    def __init__(self, tmp: Path, docker_config: Path, path_prefix: str | None = None) -> None:
        self.cache = tmp / "step-cache"
        self.outputs: list[str] = []
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "DOCKER_CONFIG": str(docker_config),
            "BUILDER_CACHE_DIR": str(self.cache),
        }
        if path_prefix:
            self.env["PATH"] = f"{path_prefix}:{self.env.get('PATH', '/usr/bin:/bin')}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "builder", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def build(self, app: Path, engine: EngineTarget, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("build", str(app), *engine.cli_args, "--ca-bundle", CA_BUNDLE, "--progress", "plain", *extra)

    def assert_secret_nowhere(self, secret: str, app: Path) -> None:
        """The secret (and its base64 forms) is in no output, no plan JSON and no step cache file."""
        plan = self.run("plan", str(app), "--format", "json", "--no-record")
        assert plan.returncode == 0, plan.stderr
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        for text in self.outputs:
            assert not any(f in text for f in forms)
        assert self.cache.is_dir()
        for file in self.cache.rglob("*"):
            if file.is_file():
                data = file.read_bytes()
                assert not any(f.encode() in data for f in forms), file


def _pushed(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if line.startswith("pushed: ")]
    assert len(lines) == 1, done.stdout[-2000:]
    return lines[0].removeprefix("pushed: ")


def _manifest_digest(
    url: str, *, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None
) -> str | None:
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_TYPES})
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=20, context=context) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError:
        return None


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fails(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert done.returncode == code, done.stdout[-2000:] + done.stderr[-2000:]
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_push_to_the_plain_registry_and_pull_the_digest_back(
    registry: str, unique_repo: str, dockerd26: EngineTarget, runner_b: EngineTarget, tmp_path: Path
) -> None:
    runs = Runs(tmp_path, _docker_config(tmp_path / "docker", {}))
    pushed = _pushed(runs.build(_app(tmp_path / "app"), dockerd26, "--tag", f"{registry}/{unique_repo}:1", "--push"))
    repository, digest = pushed.split("@")
    assert repository == f"{registry}/{unique_repo}"
    assert _manifest_digest(f"http://{registry}/v2/{unique_repo}/manifests/1") == digest
    # Another engine pulls the image back by that digest.
    api = docker_api(runner_b)
    messages = list(api.stream("POST", "/images/create", query={"fromImage": repository, "tag": digest}))
    assert not [m for m in messages if "error" in m], messages
    assert pushed in api.inspect_image(pushed)["RepoDigests"]


def test_private_base_and_push_through_the_auth_registry_with_a_config_file(
    auth_registry: AuthRegistry, private_base: str, unique_repo: str, dockerd26: EngineTarget, tmp_path: Path
) -> None:
    runs = Runs(tmp_path, _docker_config(tmp_path / "docker", _auths(auth_registry, auth_registry.password)))
    app = _app(tmp_path / "app", private_base)
    pushed = _pushed(runs.build(app, dockerd26, "--tag", f"{auth_registry.address}/{unique_repo}:1", "--push"))
    context = ssl.create_default_context(cafile=str(auth_registry.ca))
    url = f"https://{auth_registry.address}/v2/{unique_repo}/manifests/1"
    assert (
        _manifest_digest(url, context=context, auth=(auth_registry.user, auth_registry.password))
        == pushed.split("@")[1]
    )
    runs.assert_secret_nowhere(auth_registry.password, app)


def test_credential_helper_and_exporter_push_on_the_containerd_store(
    auth_registry: AuthRegistry, private_base: str, unique_repo: str, runner_a: EngineTarget, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-testhelper"
    answer = json.dumps(
        {"ServerURL": auth_registry.address, "Username": auth_registry.user, "Secret": auth_registry.password}
    )
    helper.write_text(
        f"#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat >/dev/null\ncat <<'EOF'\n{answer}\nEOF\n", encoding="utf-8"
    )
    helper.chmod(0o700)
    config = _docker_config(tmp_path / "docker", {"credHelpers": {auth_registry.address: "testhelper"}})
    runs = Runs(tmp_path, config, path_prefix=str(bin_dir))
    app = _app(tmp_path / "app", private_base)
    pushed = _pushed(runs.build(app, runner_a, "--tag", f"{auth_registry.address}/{unique_repo}:1", "--push"))
    context = ssl.create_default_context(cafile=str(auth_registry.ca))
    url = f"https://{auth_registry.address}/v2/{unique_repo}/manifests/1"
    assert (
        _manifest_digest(url, context=context, auth=(auth_registry.user, auth_registry.password))
        == pushed.split("@")[1]
    )
    runs.assert_secret_nowhere(auth_registry.password, app)


def test_wrong_or_missing_credentials_exit_6_and_an_unreachable_registry_exit_7(
    auth_registry: AuthRegistry, private_base: str, dockerd26: EngineTarget, tmp_path: Path
) -> None:
    host = auth_registry.address
    wrong = Runs(
        tmp_path / "wrong", _docker_config(tmp_path / "wrong-docker", _auths(auth_registry, "not-the-password"))
    )
    _fails(
        wrong.build(_app(tmp_path / "a1", private_base), dockerd26),
        6,
        f"registry {host} refused the credentials",
        f"docker login {host}",
    )
    anonymous = Runs(tmp_path / "none", _docker_config(tmp_path / "none-docker", {}))
    _fails(
        anonymous.build(_app(tmp_path / "a2", private_base), dockerd26),
        6,
        f"registry {host} needs credentials",
        f"docker login {host}",
    )
    port = _closed_port()
    _fails(
        anonymous.build(_app(tmp_path / "a3", f"127.0.0.1:{port}/nothing:1"), dockerd26),
        7,
        f"cannot reach registry 127.0.0.1:{port}",
    )
    for runs in (wrong, anonymous):
        assert not any(auth_registry.password in text for text in runs.outputs)


def test_dockerd20_cannot_pull_from_the_tls_registry_and_says_why(
    auth_registry: AuthRegistry, private_base: str, dockerd20: EngineTarget, tmp_path: Path
) -> None:
    runs = Runs(tmp_path, _docker_config(tmp_path / "docker", _auths(auth_registry, auth_registry.password)))
    _fails(
        runs.build(_app(tmp_path / "app", private_base), dockerd20),
        7,
        f"cannot reach registry {auth_registry.address}",
        "plain HTTP",
    )
