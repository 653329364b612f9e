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
#: Where a tools run leaves the checked tools in its own root filesystem (never part of the image): the step's
#: own run sees that folder read-only at ``TOOLS_DIR/<tool>`` instead of the writable cache mount.
TOOLS_OUT = "/run/builder-tools-checked"
UV_VERSION = "0.13.9"
RATTLER_VERSION = "0.28.0"
#: The PATH of a Linux image without one (BuildKit's and Docker's default); the steps prepend to it.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: sha256 of the ``uv`` executable in each Linux wheel of uv :data:`UV_VERSION` on PyPI (from the wheels'
#: RECORD files, which the index's wheel sha256 covers).  A step runs uv only as a private copy whose digest
#: is one of these: a uv in the (shared, writable) tools mount that is not is removed and fetched again.
#: A new :data:`UV_VERSION` needs this table redone.
UV_SHA256 = (
    "0bab0eba17b82b117ef87a70e8868973fc62cb51f9c4c9900d519feece38971b",  # manylinux_2_17 armv7l + musllinux
    "3e020ca1e7eb3847223d73e7e2a128336e38f97ab531c0dd0ad664914bd281e2",  # manylinux_2_17 i686
    "4a591d1b2ab23d90d790cacd340f30f479829bc325af887e42287e9cfae4c7fc",  # linux armv6l
    "5a79e319d808a91a66b54c98c384ea87bed4b821a6088315f4e06609d10312ec",  # manylinux_2_17 ppc64le
    "6109e47a75f2380d1cc90b00a6ee82b7b5792ddf66588625ec168545ae17512e",  # manylinux_2_28 aarch64
    "7044f2d032f71c063417bb3aed7f20ad9eb02e8c643bae0c2f02987aa436e3f6",  # manylinux_2_17 armv7l
    "7a1d34ac77b2d89fa7cd72a78ed331aa19701e41ce21a0b3f7686729724c2e8e",  # manylinux_2_31 riscv64
    "a1748a5f3e763805315002d65dd64de14d11fa7cb22372de1cc012efc86a88e9",  # manylinux_2_31 riscv64 + musllinux
    "a9bc459c45e1db54291da5fed244781912e845f74384ed02c474620a663fa065",  # manylinux_2_17 s390x
    "b73acdf73b96c3ac9e56d2fa933427b3ee6a901e3cce6ba1e3ecb3f91ca0d86a",  # manylinux_2_17 x86_64
    "bbecb5ac518030bb5e84f1999c577228460192832ac24a92bd772735682979f4",  # manylinux_2_17 aarch64 + musllinux
    "ccc6a9b960b41760459627562df50829358ed0b5481ec6956c434b91012e01a4",  # musllinux_1_1 i686
    "edbfb9a3d00dc84148e6691cd8740781fdc32db6505d7ef88ba6c3e569d5bec9",  # musllinux_1_1 x86_64
)
#: sha256 of each Linux wheel of py-rattler :data:`RATTLER_VERSION` (``cp310-abi3``: one wheel per platform for
#: every Python >= 3.10), computed from the wheels themselves.  The conda step's tools run keeps only wheels with
#: one of these digests in its cache mount, fetches the others again (``pip --require-hashes``) and installs from
#: them; nothing else in that mount is ever run.  A new :data:`RATTLER_VERSION` needs this table redone.
RATTLER_SHA256 = (
    "4f4ab1d34d5394e7ce130a86e59009c95ace4f5757d9c3af04de1351bcea47eb",  # manylinux_2_17 x86_64
    "61b24202374188e72130f1b3dc63b455befaafc3e49e5481a38b6a6c8828c1e0",  # manylinux_2_28 aarch64
    "1c566fb1b0fc3d0d892b7ba021d6863aaff1f476c245178a07f560729aa7ecdb",  # musllinux_1_2 x86_64
    "6218478af88d45ac1e08e605ede4f67bbe4ffbbbb40b5e32622a4746f98fe331",  # musllinux_1_2 aarch64
    "d25e3eb18127571757f5d9ad7ccd2c2c24aaac5575b28a9cab6463997357a4eb",  # manylinux_2_17 i686
    "bc18e46ed1b7bd72aa3ce48e0cc6582f48d540f956a96e4d6c63edd7373b746b",  # musllinux_1_2 i686
    "595e415bc27f01bd95cc3c03138c0dc4087d57d8db2e80c72ca0063ee66c01b8",  # manylinux_2_28 ppc64le
)
