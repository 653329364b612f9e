"""The shell scripts each install step runs: one source of truth for every engine.

The BuildKit converter and the Dockerfile exporter both take a step's script
from here, so an exported Dockerfile runs exactly the commands ``builder
build`` runs.  Everything is pure: inputs in, POSIX ``sh`` lines out.  Package
names, versions and paths are validated upstream, and still always go through
:func:`shlex.quote` (they are data, never shell syntax).

A :class:`StepScript` is a list of lines run by ``/bin/sh -c`` joined with
newlines after ``set -eu``; ``ca_secret`` says whether the step reads the
optional CA bundle secret (mounted at :data:`CA_SECRET_PATH` when the user
passed one; absent otherwise).

>>> from builder.plan.steps.pip import Inputs
>>> script = pip_script(Inputs("uv", "six==1.16.0\\n"), requirements="/tmp/req/requirements.txt")
>>> script.lines[0]
'echo UV_PIP_INSTALL_STARTED'
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from builder.plan.steps import apt, conda, pip, python

#: Secret id of the extra CA bundle (the session's ``SecretsProvider`` serves it under this id).
CA_SECRET_ID = "ca-bundle"
CA_SECRET_PATH = f"/run/secrets/{CA_SECRET_ID}"
#: The first line each installer prints, so log readers know which installer ran.
PIP_MARKERS = {"pip": "PIP_INSTALL_STARTED", "uv": "UV_PIP_INSTALL_STARTED"}
MICROMAMBA_URL = "https://micro.mamba.pm/api/micromamba/linux-64/latest"


@dataclass(frozen=True, slots=True)
class StepScript:
    """What one install step runs: ``sh -c`` lines, and whether it may use the CA bundle."""

    lines: tuple[str, ...]
    ca_secret: bool = True

    @property
    def text(self) -> str:
        """The whole script: ``set -eu`` then one command per line."""
        return "\n".join(("set -eu", *self.lines))

    @property
    def argv(self) -> tuple[str, ...]:
        """The exec argv (``/bin/sh -c <script>``)."""
        return ("/bin/sh", "-c", self.text)


def _q(value: str) -> str:
    return shlex.quote(value)


def ca_prelude() -> tuple[str, ...]:
    """Export the CA bundle to every TLS client we use, when the secret is mounted."""
    path = CA_SECRET_PATH
    return (
        f"if [ -s {path} ]; then export SSL_CERT_FILE={path} PIP_CERT={path} REQUESTS_CA_BUNDLE={path} "
        f"CURL_CA_BUNDLE={path}; APT_CA='-o Acquire::https::CAInfo={path}'; else APT_CA=''; fi",
    )


def _apt_install(packages: tuple[str, ...], *, no_recommends: bool = True) -> tuple[str, ...]:
    flags = "-y -q --no-install-recommends" if no_recommends else "-y -q"
    return (
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get $APT_CA update -q",
        f"apt-get $APT_CA install {flags} " + " ".join(_q(p) for p in packages),
    )


def python_script(inputs: python.Inputs) -> StepScript:
    """Find or install Python ``version`` (see ``builder.plan.steps.python``) and create the venv.

    Order: ``python<version>`` already on PATH; ``python3`` when its version
    matches; Debian's ``python<version>`` packages via apt; else ``uv python
    install`` (uv fetched with the system pip).  ``<venv>/bin/python`` exists after.
    """
    v = inputs.version
    venv = _q(inputs.venv)
    check = f"\"$1\" -c 'import sys; sys.exit(sys.version_info[:2] != ({v.replace('.', ', ')}))'"
    lines = (
        *ca_prelude(),
        f"matches() {{ command -v \"$1\" >/dev/null 2>&1 && {check}; }}",
        "PY=''",
        f"if matches python{v}; then PY=python{v}; elif matches python3; then PY=python3; fi",
        f"if [ -z \"$PY\" ] && command -v apt-get >/dev/null 2>&1; then "
        f"export DEBIAN_FRONTEND=noninteractive; apt-get $APT_CA update -q; "
        f"if apt-cache show python{v}-venv >/dev/null 2>&1; then "
        f"apt-get $APT_CA install -y -q --no-install-recommends python{v} python{v}-venv; "
        f"rm -rf /var/lib/apt/lists/*; PY=python{v}; fi; fi",
        f"if [ -z \"$PY\" ]; then echo \"no Python {v} in the image and none installable with apt\" >&2; "
        f"echo 'use a base image with Python {v} (docker_base_image_url) or a Debian release that ships it' >&2; "
        f"exit 1; fi",
        f"\"$PY\" -m venv {venv}",
        f"{venv}/bin/python -c 'import sys; print(\"python\", sys.version.split()[0], \"in\", sys.prefix)'",
    )
    return StepScript(lines)


def apt_script(inputs: apt.Inputs) -> StepScript:
    """``apt-get install`` of the step's packages (caches are cache mounts, not layer content)."""
    return StepScript((*ca_prelude(), *_apt_install(inputs.packages, no_recommends=inputs.no_install_recommends)))


def conda_script(inputs: conda.Inputs, *, lock_file: str | None = None) -> StepScript:
    """Create the conda prefix with micromamba (fetched once into /usr/local/bin).

    ``lock_file`` is where the step's lock text was made available (a bind or
    copied file) when ``inputs.lock`` is set.
    """
    prefix = _q(inputs.prefix)
    fetch = (
        "if ! command -v micromamba >/dev/null 2>&1; then "
        "PYBIN=$(command -v python3 || command -v /opt/venv/bin/python); "
        f"\"$PYBIN\" -c 'import io, sys, tarfile, urllib.request; "
        f"data = urllib.request.urlopen(sys.argv[1], timeout=300).read(); "
        f"member = tarfile.open(fileobj=io.BytesIO(data)).extractfile(\"bin/micromamba\"); "
        f"open(\"/usr/local/bin/micromamba\", \"wb\").write(member.read())' {_q(MICROMAMBA_URL)}; "
        "chmod 0755 /usr/local/bin/micromamba; fi"
    )
    channels = " ".join(f"-c {_q(c)}" for c in inputs.channels)
    if inputs.lock is not None and lock_file is not None:
        create = f"micromamba create -y -p {prefix} -f {_q(lock_file)}"
    else:
        create = f"micromamba create -y -p {prefix} {channels} " + " ".join(_q(s) for s in inputs.specs)
    lines = (*ca_prelude(), "export MAMBA_ROOT_PREFIX=/root/.cache/rattler", fetch, " ".join(create.split()))
    return StepScript(lines)


def pip_script(inputs: pip.Inputs, *, requirements: str, constraints: str | None = None) -> StepScript:
    """Install the requirements into the venv with pip or uv; the marker line is printed first.

    ``requirements`` / ``constraints`` are where the step's generated files are
    visible while it runs.  Local requirements are resolved from the working
    directory (``/app``), where the engine put the files they need.
    """
    python_bin = f"{inputs.venv}/bin/python"
    files = f"-r {_q(requirements)}" + (f" -c {_q(constraints)}" if constraints and inputs.constraints_txt else "")
    lines: list[str] = [f"echo {PIP_MARKERS[inputs.installer]}", *ca_prelude()]
    if inputs.installer == "uv":
        lines += [
            "export UV_LINK_MODE=copy UV_NO_PROGRESS=1",
            "if ! command -v uv >/dev/null 2>&1; then "
            f"{_q(python_bin)} -m pip install --no-input --disable-pip-version-check -q uv; "
            f"UV={_q(inputs.venv + '/bin/uv')}; else UV=uv; fi",
            f"\"$UV\" pip install --python {_q(python_bin)} {files}",
        ]
    else:
        lines.append(f"{_q(python_bin)} -m pip install --no-input --disable-pip-version-check {files}")
    return StepScript(tuple(lines))
