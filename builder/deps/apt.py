"""apt package sets from ``[cerebrium.dependencies.apt]`` or a pkglist file.

Inline ``name = "version"`` becomes ``name=version`` (``"latest"``, ``""``
and ``"*"`` leave it unpinned).  A pkglist file lists packages one per line
(``name`` or ``name=version``; several whitespace-separated entries on a line
are accepted too), ``#`` starts a comment.  Names and versions are checked
against Debian policy syntax, so nothing else can reach ``apt-get``.

>>> apt_set_from_inline((("ffmpeg", "latest"), ("curl", "7.88.1-10+deb12u5"))).args()
('curl=7.88.1-10+deb12u5', 'ffmpeg')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from builder.deps._text import UNPINNED, Problems, check_plain, key_path_for
from builder.deps.model import AptPackage, AptSet
from builder.deps.paths import project_relative, read_project_file
from builder.errors import DependencyError

INLINE_KEY = "cerebrium.dependencies.apt"
PATHS_KEY = "cerebrium.dependencies.paths.apt"

# Debian policy 5.6.1: lowercase alphanumerics, + - . ; at least two chars,
# starting with an alphanumeric.  An optional :arch qualifier is allowed.
DEBIAN_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?::[a-z0-9][a-z0-9-]*)?$")
# Debian policy 5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit.
DEBIAN_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")


def validate_package(
    name: str, version: str, *, key_path: str, file: str | None = None, line: int | None = None
) -> AptPackage:
    """Check one Debian name/version pair and return the package."""
    check_plain(name, what="apt package name", key_path=key_path, file=file, line=line)
    check_plain(version, what="apt version", key_path=key_path, file=file, line=line)
    if not DEBIAN_NAME.match(name):
        raise DependencyError(
            f"{name!r} is not a valid Debian package name",
            key_path=key_path,
            file=file,
            line=line,
            hint="names are lowercase letters, digits, '+', '-' and '.', at least two characters",
        )
    version = "" if version.strip().lower() in UNPINNED else version.strip()
    if version and not DEBIAN_VERSION.match(version):
        raise DependencyError(
            f"{version!r} is not a valid Debian version for {name!r}",
            key_path=key_path,
            file=file,
            line=line,
            hint='apt installs exact versions only: use "latest" or a version like "7:5.1.4-0+deb12u1"',
        )
    return AptPackage(name=name, version=version)


def apt_set_from_inline(
    table: Iterable[tuple[str, str]], *, config_file: str | None = None, lines: dict[str, int] | None = None
) -> AptSet:
    """An AptSet from the inline table's (name, version) pairs."""
    found: dict[str, tuple[str, AptPackage]] = {}
    problems = Problems()
    for key, value in table:
        key_path = key_path_for(INLINE_KEY, key)
        line = (lines or {}).get(key_path)
        with problems.entry():
            pkg = validate_package(key.strip(), value, key_path=key_path, file=config_file, line=line)
            _add(found, key, pkg, key_path=key_path, file=config_file, line=line)
    problems.raise_if_any()
    return AptSet(packages=tuple(sorted(p for _, p in found.values())), source="inline")


def apt_set_from_file(rel: str, *, project_dir: Path, key_path: str = PATHS_KEY) -> AptSet:
    """An AptSet from a pkglist file (project-relative path)."""
    norm, _ = project_relative(project_dir, rel, key_path=key_path)
    pf = read_project_file(project_dir, norm, key_path=key_path)
    found: dict[str, tuple[str, AptPackage]] = {}
    problems = Problems()
    for number, raw in enumerate(pf.text.split("\n"), start=1):
        text = raw.split("#", 1)[0].strip()
        for token in text.split():
            name, _, version = token.partition("=")
            with problems.entry():
                pkg = validate_package(name, version, key_path=key_path, file=pf.rel, line=number)
                _add(found, token, pkg, key_path=key_path, file=pf.rel, line=number)
    problems.raise_if_any()
    return AptSet(packages=tuple(sorted(p for _, p in found.values())), source=pf.rel)


def _add(
    found: dict[str, tuple[str, AptPackage]],
    key: str,
    pkg: AptPackage,
    *,
    key_path: str,
    file: str | None,
    line: int | None,
) -> None:
    if pkg.name in found:
        raise DependencyError(
            f"apt package {pkg.name!r} is listed twice ({found[pkg.name][0]!r} and {key!r})",
            key_path=key_path,
            file=file,
            line=line,
            hint="keep one entry per package",
        )
    found[pkg.name] = (key, pkg)
