"""Put a pinned uv into a tools folder inside a build step, without the resolver of pip.

``pip install --target DIR uv==X`` spends most of its ~2.8 s here matching the
~6,000 files listed on the index page of uv against the tags of the interpreter.
This script asks the index for its JSON page (PEP 691), keeps the files of the one
release, picks the wheel for this machine, downloads it, checks its sha256 against
the one the index gives and unpacks only the ``uv`` executable.

Run inside the build as ``python -I -S -c <the text of this file> TOOLS VERSION``; exit 0
when ``TOOLS/bin/uv`` is in place, else exit 1 with one line on stderr, and the step
falls back to pip (which also covers pip configuration files, other platforms and
indexes without the JSON API).  Standard library only; no single quote anywhere in
this file, because the shell scripts carry it in single quotes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile

JSON_PAGE = "application/vnd.pypi.simple.v1+json"
PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.pip/pip.conf", "~/.config/pip/pip.conf")
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
        "i686": "i686", "i386": "i686", "ppc64le": "ppc64le", "s390x": "s390x", "armv7l": "armv7l"}


class Skip(Exception):
    """The fast path does not apply here: let pip do it."""


def index_url(environ: dict[str, str]) -> str:
    """The index pip would use, when only the environment can configure it (else Skip)."""
    named = environ.get("PIP_CONFIG_FILE", "")
    configs = [] if named == os.devnull else [named, *(os.path.expanduser(p) for p in PIP_CONFIGS)]
    if any(p and os.path.exists(p) for p in configs):  # PIP_CONFIG_FILE=/dev/null: pip reads none
        raise Skip("a pip configuration file may name another index")
    if environ.get("PIP_EXTRA_INDEX_URL") or environ.get("PIP_FIND_LINKS") or environ.get("PIP_NO_INDEX"):
        raise Skip("pip is configured with more than one source")
    return environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"


def wanted_tags(machine: str, libc: str) -> list[re.Pattern[str]]:
    """Platform tag patterns this machine runs, best first (``libc``: ``glibc 2.36`` or ``musl``)."""
    arch = ARCH.get(machine.lower())
    if arch is None:
        raise Skip(f"no wheel choice for machine {machine!r}")
    found = re.fullmatch(r"glibc (\d+)\.(\d+)", libc.strip())
    if found:
        have = (int(found[1]), int(found[2]))
        legacy = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
        tags = [re.compile(rf"manylinux_(\d+)_(\d+)_{arch}")]
        return tags + [re.compile(rf"{name}_{arch}") for name, v in legacy.items() if v <= have]
    if libc == "musl":
        return [re.compile(rf"musllinux_1_(\d+)_{arch}")]
    raise Skip(f"unknown C library {libc!r}")


def pick_wheel(files: list[dict], version: str, machine: str, libc: str) -> dict:
    """The index file entry of uv ``version`` for this machine (a PEP 691 ``files`` item)."""
    patterns = wanted_tags(machine, libc)
    glibc = re.fullmatch(r"glibc (\d+)\.(\d+)", libc.strip())
    have = (int(glibc[1]), int(glibc[2])) if glibc else (0, 0)
    prefix = f"uv-{version}-"
    for pattern in patterns:
        for entry in files:
            name = str(entry.get("filename", ""))
            sha = str((entry.get("hashes") or {}).get("sha256", ""))
            if not (name.startswith(prefix) and name.endswith(".whl")) or entry.get("yanked"):
                continue
            if not re.fullmatch(r"[0-9a-f]{64}", sha):
                continue
            parts = name[:-4].split("-")
            if len(parts) != 5:
                continue
            for tag in parts[4].split("."):
                found = pattern.fullmatch(tag)
                if found is None:
                    continue
                if pattern.pattern.startswith("manylinux_") and (int(found[1]), int(found[2])) > have:
                    continue
                return entry
    raise Skip(f"no uv {version} wheel for {machine} with {libc}")


def fetch_page(index: str) -> tuple[str, list[dict]]:
    page = index.rstrip("/") + "/uv/"
    request = urllib.request.Request(page, headers={"Accept": JSON_PAGE})
    with urllib.request.urlopen(request, timeout=30) as response:
        if JSON_PAGE not in response.headers.get("Content-Type", ""):
            raise Skip("the index has no JSON page")
        return page, json.load(response)["files"]


def download(url: str, sha256: str, into: str) -> str:
    """``url`` saved under ``into``, its sha256 checked."""
    path = os.path.join(into, "uv.whl")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=120) as response, open(path, "wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise Skip(f"the wheel from {url} does not match the index sha256")
    return path


def unpack_uv(wheel: str, version: str, into: str) -> None:
    """Only the ``uv`` executable of the wheel, as ``into/bin/uv``."""
    member = f"uv-{version}.data/scripts/uv"
    os.makedirs(os.path.join(into, "bin"))
    target = os.path.join(into, "bin", "uv")
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.chmod(target, 0o755)


def main(argv: list[str]) -> int:
    tools, version = argv[1], argv[2]
    parent = os.path.dirname(tools.rstrip("/")) or "/"
    work = ""
    try:
        index = index_url(dict(os.environ))
        page, files = fetch_page(index)
        try:
            libc = " ".join(os.confstr("CS_GNU_LIBC_VERSION").split()[:2])
        except (ValueError, OSError, AttributeError):
            libc = "musl" if any(n.startswith("ld-musl") for n in os.listdir("/lib")) else "other"
        entry = pick_wheel(files, version, platform.machine(), libc)
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".uv-boot.", dir=parent)
        url = urllib.parse.urljoin(page, str(entry["url"])).split("#", 1)[0]
        wheel = download(url, entry["hashes"]["sha256"], work)
        unpack_uv(wheel, version, os.path.join(work, "tree"))
        try:
            os.rename(os.path.join(work, "tree"), tools)
        except OSError:
            if not os.access(os.path.join(tools, "bin", "uv"), os.X_OK):
                raise
        shown = url.split("?", 1)[0]
        print(f"uv: installed uv {version} from {shown}")
        return 0
    except Exception as error:  # any failure: the caller installs uv with pip instead
        print(f"uv: quick install of uv {version} not possible ({error}); using pip", file=sys.stderr)
        return 1
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
