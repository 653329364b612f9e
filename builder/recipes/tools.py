"""Fixed paths and pinned tool versions the recipes share (one place for each).

The tools a build needs but the image must not keep (uv, py-rattler) live in cache mounts
under :data:`TOOLS_DIR`, one folder per pinned version, so an upgraded pin never runs the old
tool left in the mount.  A change of a version changes the steps' scripts and so their LLB:
bump the revisions of the steps that use it in :mod:`builder.plan.recipes`.
"""

from __future__ import annotations

#: Where the optional extra CA bundle is mounted (a secret mount: never in a layer).
CA_PATH = "/run/secrets/builder-ca"
#: The id the session's secrets provider serves the CA bundle under.
CA_SECRET_ID = "ca-bundle"
#: Variables that point the installers (pip, uv, requests, curl) at the CA bundle.
CA_ENV = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
#: Where the pip step finds index credentials (user:password taken out of the project's URLs), as a netrc
#: secret mount read by pip, uv and git; only when the project's URLs carry any.
NETRC_PATH = "/root/.netrc"
NETRC_SECRET_ID = "builder-netrc"
TOOLS_DIR = "/opt/builder-tools"
UV_VERSION = "0.13.9"
RATTLER_VERSION = "0.28.0"
PYYAML_VERSION = "6.0.4"
#: The PATH of a Linux image without one (BuildKit's and Docker's default); the steps prepend to it.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
