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

from builder.diagnostics import Diagnostic

Manager = Literal["pip", "apt", "conda"]
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_EXACT = re.compile(r"===?[^=,*;\s]+")


def netrc_text(credentials: tuple[tuple[str, str, str], ...]) -> bytes | None:
    """(host, user, password) triples as a netrc file (pip, uv, git and py-rattler read it), None for none.

    A host given twice keeps its first entry (netrc readers take the first match anyway).
    """
    seen: dict[str, tuple[str, str]] = {}
    for host, user, password in credentials:
        seen.setdefault(host, (user, password))
    if not seen:
        return None
    lines = [f"machine {host} login {user} password {password}" for host, (user, password) in seen.items()]
    return ("\n".join(lines) + "\n").encode("utf-8")


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
        """Whether this requirement names one exact release: ``==1.2.3``, a local path (its files are hashed),
        an archive URL, or a VCS URL at a full commit hash.  ``latest``, ranges and a VCS branch are not.

        >>> PipRequirement("x", "x @ git+https://h/r.git@main", url="git+https://h/r.git@main").pinned
        False
        """
        if self.local_path is not None:
            return True
        if self.url:
            scheme = self.url.split(":", 1)[0]
            if "+" not in scheme:
                return True  # an archive URL names one file
            path = self.url.split("://", 1)[-1].split("#", 1)[0]
            ref = path.rsplit("@", 1)[1] if "@" in path.rsplit("/", 1)[-1] else ""
            return bool(_COMMIT.fullmatch(ref))
        spec = self.specifier
        return spec.startswith(("==", "===")) and "," not in spec and "*" not in spec

    @property
    def exact(self) -> bool:
        """True when the line names exactly one release by version (``==1.2.3`` / ``===1.2.3``, markers allowed).

        A URL, a path, a range or a wildcard is not exact: the pip step's offline-first
        install is only sound when every line names its version.
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
    #: Global requirements-file options passed through as written, e.g. ``--only-binary :all:``, ``--pre``.
    options: tuple[str, ...] = ()
    #: Where each option was written: (option, file, line); for messages only, never hashed.
    option_sources: tuple[tuple[str, str, int], ...] = field(default=(), compare=False)
    #: Non-fatal findings (e.g. two keys merged into one requirement); never hashed.
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)
    #: (host, user, password) taken out of index/find-links/requirement URLs: never hashed, printed or
    #: exported; the build hands them to the pip step as a netrc secret (see :meth:`netrc`).
    credentials: tuple[tuple[str, str, str], ...] = field(default=(), compare=False, repr=False)

    def netrc(self) -> bytes | None:
        """The credentials as a netrc file (what pip, uv and git read), or None when there are none."""
        return netrc_text(self.credentials)

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
        """True when every requirement is :attr:`~PipRequirement.exact` (and there is one at least)."""
        return bool(self.requirements) and all(r.exact for r in self.requirements)

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
            **({"options": sorted(self.options)} if self.options else {}),
        }

    def requirements_txt(self) -> str:
        """A requirements file equivalent to this set (index options first)."""
        lines: list[str] = ["--no-index"] if self.no_index else []
        if self.index_url:
            lines.append(f"--index-url {self.index_url}")
        lines.extend(f"--extra-index-url {u}" for u in sorted(self.extra_index_urls))
        lines.extend(f"--find-links {u}" for u in sorted(self.find_links))
        lines.extend(sorted(self.options))
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
    #: (host, user, password) taken out of the channel URL: never hashed, printed or exported.
    credentials: tuple[tuple[str, str, str], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CondaSet:
    """Conda match specs plus the channels to search, in priority order."""

    specs: tuple[CondaSpec, ...] = ()
    channels: tuple[str, ...] = ()  # order matters for conda channel priority
    source: str = "inline"
    lock_file: str | None = None  # project-relative conda-lock file when locked
    #: (host, user, password) taken out of channel URLs: never hashed, printed or exported; the build
    #: hands them to the conda step as the netrc secret (see :meth:`netrc`).
    credentials: tuple[tuple[str, str, str], ...] = field(default=(), compare=False, repr=False)

    def netrc(self) -> bytes | None:
        """The channel credentials as a netrc file (py-rattler reads ``NETRC``), or None when there are none."""
        return netrc_text(self.credentials)

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
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)  # located findings (merged duplicates)
