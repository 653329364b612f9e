"""Normalised requirement sets, one per package manager.

These are the values the plan hashes (through ``canonical()``) and the
engines install (through the rendering helpers).  Every field is already
validated: names and versions match their manager's syntax, so nothing here
can smuggle shell syntax, and engines still pass each value as one argv item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Manager = Literal["pip", "apt", "conda"]
_EXACT = re.compile(r"===?[^=,*;\s]+")


@dataclass(frozen=True, slots=True, order=True)
class PipRequirement:
    """One pip requirement in canonical form.

    ``name`` is the PEP 503 normalised name ("" for a bare URL/path without a
    name); ``line`` is the canonical PEP 508 / pip line used in the generated
    requirements file, e.g. ``pipecat-ai[daily,silero]==0.1 ; python_version >= "3.10"``.
    """

    name: str
    line: str
    extras: tuple[str, ...] = ()
    specifier: str = ""
    marker: str = ""
    url: str = ""
    editable: bool = False
    local_path: str | None = None  # project-relative path for local/-e requirements
    hashes: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        """True when the requirement names exactly one version (``==1.2.3`` / ``===1.2.3``, markers allowed).

        A URL, a path, a range or a wildcard is not pinned: what it installs can change
        without the line changing.
        """
        return not (self.url or self.editable or self.local_path) and _EXACT.fullmatch(self.specifier) is not None

    @property
    def text(self) -> str:
        """The requirements-file line: ``-e`` prefix and ``--hash`` options included."""
        text = f"-e {self.line}" if self.editable else self.line
        return text + "".join(f" --hash={h}" for h in self.hashes)


@dataclass(frozen=True, slots=True)
class PipSet:
    """The pip requirement set plus the index options that affect resolution."""

    requirements: tuple[PipRequirement, ...] = ()
    constraints: tuple[PipRequirement, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    source: str = "inline"  # "inline", or the project-relative requirements file path
    locked: bool = False  # True when this set comes from a matching lock file
    no_index: bool = False  # --no-index: only --find-links locations are used

    @property
    def local_paths(self) -> tuple[str, ...]:
        """Project-relative paths of local/-e requirements (the pip step depends on them)."""
        return tuple(sorted({r.local_path for r in self.requirements if r.local_path}))

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to install."""
        return not self.requirements

    @property
    def all_pinned(self) -> bool:
        """True when every requirement is :attr:`~PipRequirement.pinned` (and there is one at least)."""
        return bool(self.requirements) and all(r.pinned for r in self.requirements)

    def canonical(self) -> dict[str, Any]:
        """Sorted, normalised JSON-able form: the bytes the pip key hashes."""
        return {
            "requirements": sorted(r.text for r in self.requirements),
            "constraints": sorted(r.text for r in self.constraints),
            "index_url": self.index_url,
            "extra_index_urls": sorted(self.extra_index_urls),
            "find_links": sorted(self.find_links),
            "no_index": self.no_index,
            "locked": self.locked,
        }

    def requirements_txt(self) -> str:
        """A requirements file equivalent to this set (index options first)."""
        lines: list[str] = ["--no-index"] if self.no_index else []
        if self.index_url:
            lines.append(f"--index-url {self.index_url}")
        lines.extend(f"--extra-index-url {u}" for u in sorted(self.extra_index_urls))
        lines.extend(f"--find-links {u}" for u in sorted(self.find_links))
        lines.extend(r.text for r in sorted(self.requirements, key=lambda r: r.line))
        return "\n".join(lines) + "\n"

    def constraints_txt(self) -> str:
        """The constraints file (-c) content, empty when there are none."""
        return "".join(r.text + "\n" for r in sorted(self.constraints, key=lambda r: r.line))


@dataclass(frozen=True, slots=True, order=True)
class AptPackage:
    """``name`` or ``name=version`` for apt-get install."""

    name: str
    version: str = ""

    @property
    def arg(self) -> str:
        """The ``apt-get install`` argument: ``name`` or ``name=version``."""
        return f"{self.name}={self.version}" if self.version else self.name


@dataclass(frozen=True, slots=True)
class AptSet:
    """The apt packages to install (Debian names/versions, validated)."""

    packages: tuple[AptPackage, ...] = ()
    source: str = "inline"

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to install."""
        return not self.packages

    def canonical(self) -> dict[str, Any]:
        """Sorted JSON-able form: the bytes the apt key hashes."""
        return {"packages": sorted(p.arg for p in self.packages)}

    def args(self) -> tuple[str, ...]:
        """Sorted ``apt-get install`` arguments (one argv item each)."""
        return tuple(sorted(p.arg for p in self.packages))


@dataclass(frozen=True, slots=True, order=True)
class CondaSpec:
    """A conda match spec in canonical string form, e.g. ``cudatoolkit==11.7``."""

    name: str
    spec: str
    channel: str = ""


@dataclass(frozen=True, slots=True)
class CondaSet:
    """Conda match specs plus the channels to search, in priority order."""

    specs: tuple[CondaSpec, ...] = ()
    channels: tuple[str, ...] = ()  # order matters for conda channel priority
    source: str = "inline"
    lock_file: str | None = None  # project-relative conda-lock file when locked

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to install."""
        return not self.specs

    def canonical(self) -> dict[str, Any]:
        """Sorted specs and ordered channels: the bytes the conda key hashes."""
        return {"specs": sorted(s.spec for s in self.specs), "channels": list(self.channels)}


@dataclass(frozen=True, slots=True)
class ResolvedDependencies:
    """All three sets for a config (None when the manager has nothing to install)."""

    pip: PipSet | None = None
    apt: AptSet | None = None
    conda: CondaSet | None = None
    notes: tuple[str, ...] = field(default=())  # e.g. "pip lock is out of date"
