"""A step that fails TLS verification (an intercepting proxy) hints at --ca-bundle / BUILDER_CA_BUNDLE."""

from __future__ import annotations

import pytest

from builder.engines.buildkit.solve import failure_hint


@pytest.mark.parametrize(
    "line",
    [
        "pip._vendor.urllib3.exceptions.SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
        "error: Request failed after 3 retries: invalid peer certificate: UnknownIssuer",
        "fatal: unable to access 'https://x/': SSL certificate problem: self signed certificate in certificate chain",
        "curl: (60) SSL certificate problem: unable to get local issuer certificate",
        "x509: certificate signed by unknown authority",
    ],
)
def test_tls_failures_name_the_ca_bundle_options(line: str) -> None:
    hint = failure_hint(("step pip failed: exit code 1", "Collecting six", line))
    assert "--ca-bundle" in hint and "BUILDER_CA_BUNDLE" in hint


def test_unrecognised_failures_keep_the_plain_hint() -> None:
    hint = failure_hint(("step pip failed: exit code 1", "ValueError: the user's own error"))
    assert hint == "fix the command or dependency named above and build again"


def test_a_missing_distribution_names_the_package_and_what_to_check() -> None:
    hint = failure_hint(("step pip failed: exit code 1", "ERROR: No matching distribution found for nosuchpkg"))
    assert hint.startswith("no release of nosuchpkg can be installed here: check its name and version")
