"""The fleet's own infrastructure: the local registries and the two runners the fleet tests use.

``scripts/registry-up`` (plain and ``REGISTRY_AUTH=1``) and ``make fleet-up`` must give: a registry that
answers the distribution API, one that refuses anonymous and wrong credentials over TLS with its own CA,
and two independent dockerd engines with the containerd image store that got the base image from the
registry, so both hold the very same manifest digest (what makes a shared cache hit possible).
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.integration.fleet import AuthRegistry, docker_api, unique_repository
from tests.integration.targets import ENGINE_DIR, EngineTarget, read_env

pytestmark = pytest.mark.fleet

BASE_REPO, BASE_TAG = "debian", "bookworm-slim"  # scripts/engine-up's BASE_IMAGE
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
SNAPSHOTTER_DRIVER = ["driver-type", "io.containerd.snapshotter.v1"]
CLASSIC = ("dockerd20", "dockerd26")  # the matrix engines that keep the classic image store


def _get(
    url: str, *, context: ssl.SSLContext | None = None, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    """Status and headers of a HEAD/GET on the registry (errors are statuses, not exceptions)."""
    request = urllib.request.Request(url, headers={"Accept": MANIFEST_TYPES})
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers)


def _info(target: EngineTarget) -> dict[str, object]:
    status, body = docker_api(target).request("GET", "/info", timeout=30)
    assert status == 200, body
    info: dict[str, object] = json.loads(body)
    return info


def test_registry_answers_the_distribution_api(registry: str, unique_repo: str) -> None:
    status, headers = _get(f"http://{registry}/v2/")
    assert status == 200 and headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    # A fresh repository name per test: nothing is there yet, whatever earlier runs pushed.
    assert unique_repo.startswith("builder-test/") and unique_repo == unique_repo.lower()
    assert unique_repo != unique_repository("test_registry_answers_the_distribution_api")
    assert _get(f"http://{registry}/v2/{unique_repo}/manifests/latest")[0] == 404


def test_auth_registry_wants_tls_with_its_ca_and_a_password(auth_registry: AuthRegistry) -> None:
    base = f"https://{auth_registry.address}/v2/"
    ours = ssl.create_default_context(cafile=str(auth_registry.ca))
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(base, context=ssl.create_default_context())  # the system's CAs do not know it
    status, headers = _get(base, context=ours)
    assert status == 401 and headers.get("Www-Authenticate", "").startswith("Basic realm=")
    assert _get(base, context=ours, auth=(auth_registry.user, auth_registry.password + "x"))[0] == 401
    assert _get(base, context=ours, auth=(auth_registry.user, auth_registry.password))[0] == 200
    assert auth_registry.password and auth_registry.password not in repr(auth_registry)


def test_fleet_runners_are_two_engines_with_the_containerd_image_store(
    runner_a: EngineTarget, runner_b: EngineTarget
) -> None:
    info_a, info_b = _info(runner_a), _info(runner_b)
    assert info_a["ID"] and info_a["ID"] != info_b["ID"]
    assert info_a["DockerRootDir"] != info_b["DockerRootDir"]
    assert runner_a.address != runner_b.address
    for info in (info_a, info_b):
        assert SNAPSHOTTER_DRIVER in info["DriverStatus"], info["DriverStatus"]  # type: ignore[operator]


def test_matrix_engines_keep_the_classic_image_store() -> None:
    local = [EngineTarget(n, read_env(ENGINE_DIR / n / "env")) for n in CLASSIC if (ENGINE_DIR / n / "env").is_file()]
    assert local, "neither dockerd20 nor dockerd26 is up: run `make engine-up`"
    for target in local:
        assert SNAPSHOTTER_DRIVER not in _info(target)["DriverStatus"], target.name  # type: ignore[operator]


def test_both_runners_hold_the_registry_base_image_by_one_digest(
    registry: str, runner_a: EngineTarget, runner_b: EngineTarget
) -> None:
    status, headers = _get(f"http://{registry}/v2/{BASE_REPO}/manifests/{BASE_TAG}")
    assert status == 200, f"{registry} has no {BASE_REPO}:{BASE_TAG}: run `make engine-up` (it pushes the base image)"
    digest = headers["Docker-Content-Digest"]
    for runner in (runner_a, runner_b):
        image = docker_api(runner).inspect_image(f"{BASE_REPO}:{BASE_TAG}")
        assert f"{registry}/{BASE_REPO}@{digest}" in image["RepoDigests"], (runner.name, image["RepoDigests"])
