"""What engines say about registries becomes RegistryAuthError (exit 6) or RegistryUnavailable (exit 7)."""

from __future__ import annotations

import pytest

from builder.engines.registry_errors import registry_error, registry_host_in
from builder.errors import RegistryAuthError, RegistryUnavailable

REG = "127.0.0.1:5001"


@pytest.mark.parametrize(
    "text",
    [
        f"failed to resolve source metadata for {REG}/base:1: unexpected status code [manifests 1]: 401 Unauthorized",
        f"failed to push {REG}/app:dev: failed to authorize: failed to fetch oauth token: 401 Unauthorized",
        f"pushing {REG}/app: no basic auth credentials",
        "unauthorized: authentication required",
        f"failed to copy: httpReadSeeker: failed open: unexpected status code https://{REG}/v2/app/blobs/x: 403 Forbidden",
    ],
)
def test_refusals_are_auth_errors_naming_the_registry(text: str) -> None:
    found = registry_error(text, (REG,))
    assert isinstance(found, RegistryAuthError)
    assert found.host == REG
    assert f"registry {REG} needs credentials (none were found)" in found.message
    refused = registry_error(text, (REG,), logged_in=(REG,))
    assert refused is not None and f"registry {REG} refused the credentials" in refused.message
    assert found.hint is not None and f"docker login {REG}" in found.hint


@pytest.mark.parametrize(
    "text",
    [
        'failed to do request: Head "https://127.0.0.1:59999/v2/app/manifests/1": dial tcp 127.0.0.1:59999: connect: connection refused',
        'Get "https://127.0.0.1:59999/v2/": http: server gave HTTP response to HTTPS client',
        "dial tcp: lookup nowhere.invalid: no such host",
    ],
)
def test_unreachable_registries(text: str) -> None:
    found = registry_error(text, ("127.0.0.1:59999",))
    assert isinstance(found, RegistryUnavailable)
    assert found.host == "127.0.0.1:59999"
    assert found.message.startswith("cannot reach registry 127.0.0.1:59999")


def test_the_host_comes_from_the_text_when_it_names_another_registry() -> None:
    found = registry_error('Head "https://10.1.2.3:443/v2/x/manifests/y": dial tcp 10.1.2.3:443: i/o timeout', (REG,))
    assert found is not None and found.host == "10.1.2.3:443"
    assert registry_host_in("dial tcp 10.0.0.9:80: connect: connection refused") == "10.0.0.9:80"
    assert registry_host_in("failed to resolve source metadata for reg.example.com/app:1: x") == "reg.example.com"


def test_other_failures_are_not_registry_errors() -> None:
    assert registry_error('process "/bin/sh -c false" did not complete successfully: exit code: 1', (REG,)) is None
    assert registry_error("no space left on device", (REG,)) is None
    assert registry_error("401 Unauthorized", ()) is None  # no registry to name: left to the caller


def test_plain_http_to_an_https_registry_is_unreachable_with_the_engine_explained() -> None:
    text = "pulling from host 127.0.0.1:5001 failed with status code [manifests 1]: 400 Bad Request"
    found = registry_error(text, (REG,))
    assert isinstance(found, RegistryUnavailable) and found.host == REG
    assert found.hint is not None and "plain HTTP" in found.hint
