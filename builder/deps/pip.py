r"""pip requirement sets from ``[cerebrium.dependencies.pip]`` or a requirements file.

PEP 508 parsing is done by :mod:`packaging`; this module adds the
requirements-file layer pip understands: comments, ``\\`` continuations,
``-r``/``-c`` includes (relative to the including file, cycles rejected),
index options, ``--hash``, URL/VCS requirements, local paths and ``-e``.

>>> from pathlib import Path
>>> s = pip_set_from_inline((("Torch", "2.0.0"), ("numpy", "latest")), project_dir=Path("."))
>>> [r.line for r in s.requirements]
['numpy', 'torch==2.0.0']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.deps._text import (
    UNPINNED,
    Problems,
    WhereKw,
    check_no_shell,
    check_plain,
    check_url,
    key_path_for,
    split_credentials,
)
from builder.deps.model import PipRequirement, PipSet
from builder.deps.paths import join_rel, project_relative, read_project_file
from builder.diagnostics import Diagnostic
from builder.errors import DependencyError

# packaging is imported only by the functions that parse a requirement, and only for text the
# simple forms below do not cover: importing it (with the logging, platform and subprocess modules
# it pulls in) costs 20-50 ms, more than planning a cached app.  The simple forms are what most
# requirement lines are: a name, at most one comparison with a normalised version and at most one
# single-comparison marker; for them the result equals packaging's (tests/deps/test_deps_pip_simple.py).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_NUM = r"(?:0|[1-9][0-9]*)"
# PEP 440 normalised form (str(Version(v)) == v): release, then optional pre-, post- and dev-release.
_VERSION = rf"{_NUM}(?:\.{_NUM})*(?:(?:a|b|rc){_NUM})?(?:\.post{_NUM})?(?:\.dev{_NUM})?"
_SPEC = rf"(?P<op>==|!=|<=|>=|<|>) *(?P<version>{_VERSION})"
# Marker variables packaging keeps as written (its aliases such as os.name, and extra, are left to it).
_MARKER_VAR = (
    "python_version|python_full_version|os_name|sys_platform|platform_release|platform_system"
    "|platform_version|platform_machine|platform_python_implementation|implementation_name|implementation_version"
)
_MARKER = rf"(?P<var>{_MARKER_VAR}) *(?P<mop>===|==|~=|!=|<=|>=|<|>) *(?:\"(?P<dq>[^\"']*)\"|'(?P<sq>[^\"']*)')"
_SIMPLE_NAME = re.compile(_NAME)
_SIMPLE_VERSION = re.compile(_VERSION)
_SIMPLE_SPEC = re.compile(_SPEC)
_SIMPLE_MARKER = re.compile(_MARKER)
_SIMPLE_REQUIREMENT = re.compile(rf"(?P<name>{_NAME}) *(?:{_SPEC})? *(?:; *{_MARKER})? *")
_NAME_SEPARATORS = re.compile(r"[-_.]+")

INLINE_KEY = "cerebrium.dependencies.pip"
PATHS_KEY = "cerebrium.dependencies.paths.pip"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_COMMENT = re.compile(r"(^|\s)#.*$")
_HASH = re.compile(r"^(sha256|sha384|sha512):[0-9a-f]+$")
_EXTRAS_SUFFIX = re.compile(r"^(?P<path>.*?)(?:\[(?P<extras>[^\]]*)\])?$")
_WHEEL_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-[^-/]+(-[^-/]+)?-[^-/]+-[^-/]+-[^-/]+\.whl$")

# Options taking a value, by every spelling pip accepts.
_VALUE_OPTIONS = {
    "-r": "requirement",
    "--requirement": "requirement",
    "-c": "constraint",
    "--constraint": "constraint",
    "-i": "index_url",
    "--index-url": "index_url",
    "--extra-index-url": "extra_index_url",
    "-f": "find_links",
    "--find-links": "find_links",
    "-e": "editable",
    "--editable": "editable",
    "--only-binary": "passthrough",
    "--no-binary": "passthrough",
    "--trusted-host": "passthrough",
    "--use-feature": "passthrough",
}
#: Flag options pip honours in a requirements file; passed through as written.
_FLAG_OPTIONS = frozenset({"--pre", "--prefer-binary", "--require-hashes"})
#: Options uv ignores (with only a warning) when they are written in a requirements file.
UV_IGNORES = frozenset({"--pre", "--prefer-binary", "--trusted-host", "--use-feature"})
#: Options pip itself refuses in a requirements file, with what to do instead.
_REFUSED = {
    "-U": "every build installs into a fresh environment, so there is nothing to upgrade; remove the line",
    "--upgrade": "every build installs into a fresh environment, so there is nothing to upgrade; remove the line",
    "--no-deps": "pip refuses it in a requirements file too; list exact pins instead",
    "--user": "packages are installed into the image's virtualenv; remove the line",
}
_PASSTHROUGH_VALUE = {
    "--only-binary": re.compile(r"^(?::all:|:none:|[A-Za-z0-9._-]+)(?:,(?::all:|:none:|[A-Za-z0-9._-]+))*$"),
    "--no-binary": re.compile(r"^(?::all:|:none:|[A-Za-z0-9._-]+)(?:,(?::all:|:none:|[A-Za-z0-9._-]+))*$"),
    "--trusted-host": re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$"),
    "--use-feature": re.compile(r"^[a-z0-9-]+$"),
}


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a value came from, for error messages."""

    key_path: str
    file: str | None = None
    line: int | None = None

    def error(self, message: str, hint: str | None = None) -> DependencyError:
        return DependencyError(message, key_path=self.key_path, file=self.file, line=self.line, hint=hint)

    @property
    def kw(self) -> WhereKw:
        return {"key_path": self.key_path, "file": self.file, "line": self.line}


# --------------------------------------------------------------------------- inline


def pip_set_from_inline(
    table: Iterable[tuple[str, str]],
    *,
    project_dir: Path,
    config_file: str | None = None,
    lines: dict[str, int] | None = None,
) -> PipSet:
    """Build a PipSet from the inline table's (key, version string) pairs.

    ``"latest"``, ``""`` and ``"*"`` are unpinned, a bare version means
    ``==version``, operator specs are kept; keys may carry extras.  A key may
    also be a direct reference (``git+https://…``, ``https://…/x.whl`` or
    ``name @ url``) with an unpinned value.  Keys naming the same package
    (``Pillow`` and ``pillow``) merge with a warning when their specs agree.
    Every bad entry is reported (one DependencyError carrying them all).
    """
    del project_dir  # inline entries are never local paths
    problems = Problems()
    reqs: dict[str, tuple[str, _Where, PipRequirement]] = {}
    merged: list[Diagnostic] = []
    credentials: list[tuple[str, str, str]] = []
    for key, value in table:
        key_path = key_path_for(INLINE_KEY, key)
        where = _Where(key_path, config_file, (lines or {}).get(key_path))
        with problems.entry():
            req = _credentials_removed(_inline_requirement(key, value, where), credentials)
            ident = req.name or req.line
            if ident in reqs:
                merged.append(_same_package(reqs[ident], (key, where, req)))
                continue
            reqs[ident] = (key, where, req)
    problems.raise_if_any()
    found = sorted((r for _, _, r in reqs.values()), key=lambda r: (r.name, r.line))
    return PipSet(requirements=tuple(found), warnings=tuple(merged), credentials=tuple(sorted(set(credentials))))


def _same_package(first: tuple[str, _Where, PipRequirement], second: tuple[str, _Where, PipRequirement]) -> Diagnostic:
    """The warning for two entries naming one package with the same spec; an error when the specs differ."""
    (key1, where1, req1), (key2, where2, req2) = first, second
    at1 = f"line {where1.line}" if where1.line else where1.key_path
    if req1 != req2:
        raise where2.error(
            f"keys {key1!r} ({at1}) and {key2!r} name the same package {req2.name!r} with different specs "
            f"({req1.line!r} and {req2.line!r})",
            "keep one entry per package (names are case- and separator-insensitive: Pillow == pillow)",
        )
    return Diagnostic(
        "warning",
        where2.key_path,
        f"keys {key1!r} ({at1}) and {key2!r} name the same package {req2.name!r}; they are merged into one requirement",
        where2.line,
        where2.file,
        "remove one of them (names are case- and separator-insensitive)",
    )


def _inline_requirement(key: str, value: str, where: _Where) -> PipRequirement:
    check_plain(key, what="package name", **where.kw)
    check_plain(value, what="version", **where.kw)
    if _looks_like_url(key.strip()) or "@" in key:
        return _inline_direct(key.strip(), value, where)
    name, extras = (key.strip(), []) if _SIMPLE_NAME.fullmatch(key.strip()) else _inline_key(key, where)
    spec_text, _, marker_text = value.partition(";")
    specifier = _version_spec(spec_text.strip(), key, where)
    marker = _marker(marker_text.strip(), where) if marker_text.strip() else ""
    return _make(name, extras, specifier, marker)


def _inline_direct(key: str, value: str, where: _Where) -> PipRequirement:
    """A direct reference written as the key (``git+https://…`` or ``name @ url``), as the CLI writes it."""
    spec_text, _, marker_text = value.partition(";")
    if spec_text.strip().lower() not in UNPINNED:
        raise where.error(
            f"{key!r} is a URL requirement and cannot take the version {value!r}",
            'give it "latest" (or ""); pin a VCS URL with @<commit> in the URL, e.g. git+https://host/repo.git@<sha>',
        )
    text = key + (f" ; {marker_text.strip()}" if marker_text.strip() else "")
    if _looks_like_url(key):
        return _url_requirement(text, where, editable=False)
    return _pep508(text, where)


def _inline_key(key: str, where: _Where) -> tuple[str, list[str]]:
    """The name and extras of an inline key that is not a plain name (parsed by packaging)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        base = Requirement(key.strip())
    except InvalidRequirement as exc:
        raise where.error(
            f"{key!r} is not a valid package name: {_first_line(exc)}",
            "keys are PEP 508 names, optionally with extras: name or name[extra1,extra2]",
        ) from exc
    if base.specifier or base.marker or base.url:
        raise where.error(
            f"key {key!r} must be a package name (with optional extras) only",
            f'put the version in the value: {base.name} = "{base.specifier or ">=1.0"}"',
        )
    return base.name, sorted(base.extras)


def _version_spec(value: str, key: str, where: _Where) -> str:
    if value.lower() in UNPINNED:
        return ""
    if _SIMPLE_VERSION.fullmatch(value):
        return "==" + value
    simple = _SIMPLE_SPEC.fullmatch(value)
    if simple:
        return simple["op"] + simple["version"]
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    if value[:1].isalnum():  # a bare version: "2.0.0" means ==2.0.0
        try:
            return f"=={Version(value)}"
        except InvalidVersion as exc:
            raise where.error(
                f"version {value!r} of {key!r} is not a valid version",
                'use "latest", a version like "2.0.0", or a specifier like ">=1.5,<2"',
            ) from exc
    try:
        return str(SpecifierSet(value))
    except InvalidSpecifier as exc:
        raise where.error(
            f"version {value!r} of {key!r} is not a valid version specifier",
            'use "latest", a version like "2.0.0", or a specifier like ">=1.5,<2"',
        ) from exc


def _marker(text: str, where: _Where) -> str:
    simple = _SIMPLE_MARKER.fullmatch(text)
    if simple:
        return _simple_marker(simple)
    from packaging.markers import InvalidMarker, Marker

    try:
        return str(Marker(text))
    except InvalidMarker as exc:
        raise where.error(f"invalid environment marker {text!r}: {_first_line(exc)}") from exc


def _make(name: str, extras: Sequence[str], specifier: str, marker: str, *, url: str = "") -> PipRequirement:
    """A PipRequirement with its canonical line: ``name[extras]specifier ; marker``."""
    cname = _canonical_name(name)
    cextras = tuple(sorted({_canonical_name(e) for e in extras}))
    line = cname + (f"[{','.join(cextras)}]" if cextras else "") + specifier
    if url:
        line += f" @ {url}"
    if marker:
        line += f" ; {marker}"
    return PipRequirement(name=cname, line=line, extras=cextras, specifier=specifier, marker=marker, url=url)


def _canonical_name(name: str) -> str:
    """The PEP 503 normalised name (what ``packaging.utils.canonicalize_name`` returns).

    >>> _canonical_name("Zope.Interface__x")
    'zope-interface-x'
    """
    return _NAME_SEPARATORS.sub("-", name).lower()


def _simple_marker(m: re.Match[str]) -> str:
    value = m["dq"] if m["dq"] is not None else m["sq"]
    return f'{m["var"]} {m["mop"]} "{value}"'


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- files


@dataclass
class _FileState:
    """Accumulates what a requirements file and its includes declare."""

    project_dir: Path
    key_path: str
    requirements: list[tuple[PipRequirement, _Where]] = field(default_factory=list)
    constraints: list[tuple[PipRequirement, _Where]] = field(default_factory=list)
    index_url: str | None = None
    extra_index_urls: list[str] = field(default_factory=list)
    find_links: list[str] = field(default_factory=list)
    no_index: bool = False
    options: list[str] = field(default_factory=list)
    option_sources: list[tuple[str, str, int]] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)
    warnings: list[Diagnostic] = field(default_factory=list)
    credentials: list[tuple[str, str, str]] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)  # files being read (cycle detection)
    done: set[tuple[str, bool]] = field(default_factory=set)  # (file, as_constraint) fully read


def pip_set_from_file(rel: str, *, project_dir: Path, key_path: str = PATHS_KEY) -> PipSet:
    """Parse the requirements file ``rel`` (project-relative) and everything it includes."""
    state = _FileState(project_dir, key_path)
    norm, _ = project_relative(project_dir, rel, key_path=key_path)
    _read_file(state, norm, constraint=False, where=_Where(key_path))
    return _file_set(state, norm)


def parse_requirements_text(text: str, *, rel: str, project_dir: Path, key_path: str) -> PipSet:
    """Parse requirements text as if it were the project file ``rel`` (used for lock output)."""
    state = _FileState(project_dir, key_path)
    state.stack.append(rel)
    _parse_text(state, text, rel, constraint=False)
    return _file_set(state, rel)


def _file_set(state: _FileState, rel: str) -> PipSet:
    """The PipSet a parsed file declares; every problem found on the way is raised together."""
    with state.problems.entry():
        requirements = _dedupe(state.requirements, state.warnings)
    state.problems.raise_if_any()
    return PipSet(
        requirements=requirements,
        constraints=tuple(sorted({r for r, _ in state.constraints})),
        index_url=state.index_url,
        extra_index_urls=tuple(sorted(set(state.extra_index_urls))),
        find_links=tuple(sorted(set(state.find_links))),
        no_index=state.no_index,
        options=tuple(sorted(set(state.options))),
        option_sources=tuple(state.option_sources),
        warnings=tuple(state.warnings),
        credentials=tuple(sorted(set(state.credentials))),
        source=rel,
    )


def _keep_credentials(state: _FileState, url: str) -> str:
    """``url`` without user:password (kept aside in ``state`` for the build secret)."""
    clean, found = split_credentials(url)
    if found is not None:
        state.credentials.append(found)
    return clean


def _credentials_removed(req: PipRequirement, sink: list[tuple[str, str, str]]) -> PipRequirement:
    """``req`` with user:password taken out of its URL (and its line) into ``sink``."""
    if not req.url:
        return req
    clean, found = split_credentials(req.url)
    if found is None:
        return req
    sink.append(found)
    return replace(req, url=clean, line=req.line.replace(req.url, clean))


def _read_file(state: _FileState, rel: str, *, constraint: bool, where: _Where) -> None:
    if rel in state.stack:
        cycle = " -> ".join([*state.stack[state.stack.index(rel) :], rel])
        raise where.error(f"include cycle: {cycle}", "remove one of the -r/-c lines that form the cycle")
    if (rel, constraint) in state.done:
        return  # included twice through different files: read once
    pf = read_project_file(state.project_dir, rel, key_path=state.key_path, file=where.file, line=where.line)
    state.stack.append(pf.rel)
    _parse_text(state, pf.text, pf.rel, constraint=constraint)
    state.stack.pop()
    state.done.add((pf.rel, constraint))


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    r"""(first line number, text) per logical line: comments stripped, ``\`` continuations joined, blanks dropped."""
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        if not buf:
            start = number
        line = _COMMENT.sub("", raw).strip()
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(line)
        joined = " ".join(part for part in buf if part)
        buf = []
        if joined:
            yield start, joined
    joined = " ".join(part for part in buf if part)
    if joined:
        yield start, joined


def _parse_text(state: _FileState, text: str, rel: str, *, constraint: bool) -> None:
    for number, line in logical_lines(text):
        where = _Where(state.key_path, rel, number)
        with state.problems.entry():
            if line.startswith("-") and not line.startswith(("-e", "--editable")):
                _option(state, line, rel, where, constraint=constraint)
                continue
            req = _requirement_line(state, line, rel, where)
            req = _credentials_removed(req, state.credentials)
            (state.constraints if constraint else state.requirements).append((req, where))


def _split_option(line: str, where: _Where) -> tuple[str, str]:
    """``-r x``, ``-rx``, ``--requirement=x``, ``--requirement x`` → (option, value)."""
    head, _, rest = line.partition(" ")
    if "=" in head and head.startswith("--"):
        head, _, value = head.partition("=")
        rest = (value + " " + rest).strip()
    elif head[:2] in _VALUE_OPTIONS and len(head) > 2 and not head.startswith("--"):
        head, rest = head[:2], (head[2:] + " " + rest).strip()
    if head not in _VALUE_OPTIONS:
        check_plain(head, what="option", **where.kw)
        if head in _REFUSED:
            raise where.error(f"{head} cannot be used in a requirements file", _REFUSED[head])
        raise where.error(
            f"unsupported requirements-file option {head!r}",
            "supported: -r, -c, -e, --index-url, --extra-index-url, --find-links, --no-index, --hash, "
            "--pre, --prefer-binary, --require-hashes, --only-binary, --no-binary, --trusted-host, --use-feature",
        )
    return head, rest.strip()


def _option(state: _FileState, line: str, rel: str, where: _Where, *, constraint: bool) -> None:
    if line == "--no-index":
        state.no_index = True
        return
    if line in _FLAG_OPTIONS:
        state.options.append(line)
        state.option_sources.append((line, rel, where.line or 0))
        return
    option, value = _split_option(line, where)
    kind = _VALUE_OPTIONS[option]
    if not value or " " in value:
        raise where.error(f"option {option} needs exactly one value, got {value!r}")
    if kind == "passthrough":
        if not _PASSTHROUGH_VALUE[option].match(value):
            raise where.error(
                f"invalid value {value!r} for {option}",
                "e.g. --only-binary :all:, --no-binary name1,name2, --trusted-host host[:port]",
            )
        state.options.append(f"{option} {value}")
        state.option_sources.append((option, rel, where.line or 0))
        return
    if kind in ("requirement", "constraint"):
        check_no_shell(value, what="included file", **where.kw)
        target, _ = project_relative(state.project_dir, join_rel(rel, value), **where.kw)
        _read_file(state, target, constraint=constraint or kind == "constraint", where=where)
    elif kind == "index_url":
        url = _keep_credentials(state, check_url(value, what="index URL", **where.kw))
        if state.index_url not in (None, url):
            raise where.error(
                f"a second --index-url {url!r} (first was {state.index_url!r})",
                "use --extra-index-url for additional indexes",
            )
        state.index_url = url
    elif kind == "extra_index_url":
        state.extra_index_urls.append(_keep_credentials(state, check_url(value, what="extra index URL", **where.kw)))
    else:  # find_links
        state.find_links.append(_find_links(state, value, rel, where))


def _find_links(state: _FileState, value: str, rel: str, where: _Where) -> str:
    if _SCHEME.match(value) and len(value.split(":", 1)[0]) > 1:
        return _keep_credentials(state, check_url(value, what="find-links URL", **where.kw))
    check_no_shell(value, what="find-links path", **where.kw)
    target, _ = project_relative(state.project_dir, join_rel(rel, value), **where.kw)
    return "./" + target if target != "." else "."


def _requirement_line(state: _FileState, line: str, rel: str, where: _Where) -> PipRequirement:
    editable = False
    if line.startswith(("-e", "--editable")):
        _, line = _split_option(line, where)
        editable = True
    tokens = line.split()
    cut = next((i for i, t in enumerate(tokens) if t.startswith("--")), len(tokens))
    text, options = " ".join(tokens[:cut]), tokens[cut:]
    hashes = _hashes(options, where)
    if not text:
        raise where.error("an option line without a requirement")
    check_plain(text, what="requirement", **where.kw)
    if _looks_like_url(text):
        req = _url_requirement(text, where, editable=editable)
    elif _looks_like_path(text):
        req = _path_requirement(state, text, rel, where, editable=editable)
    else:
        if editable:
            raise where.error(f"-e needs a local path or VCS URL, got {text!r}")
        req = _pep508(text, where)
    return replace(req, hashes=hashes) if hashes else req


def _hashes(options: list[str], where: _Where) -> tuple[str, ...]:
    found: list[str] = []
    it = iter(options)
    for raw in it:
        option = "--hash=" + next(it, "") if raw == "--hash" else raw
        if not option.startswith("--hash="):
            check_plain(option, what="option", **where.kw)
            raise where.error(
                f"unsupported per-requirement option {option.split('=')[0]!r}", "only --hash is supported"
            )
        value = option.partition("=")[2]
        if not _HASH.match(value):
            raise where.error(f"invalid hash {value!r}", "use --hash=sha256:<64 hex digits>")
        found.append(value)
    return tuple(sorted(set(found)))


def _looks_like_url(text: str) -> bool:
    scheme = text.split(":", 1)[0]
    return bool(_SCHEME.match(text)) and len(scheme) > 1 and " " not in scheme and "://" in text[:40]


def _looks_like_path(text: str) -> bool:
    head = re.split(r"[\s;\[]", text, maxsplit=1)[0]
    if "@" in head:
        return False
    return head.startswith((".", "/", "~")) or "/" in head or "\\" in head or head.endswith((".whl", ".tar.gz", ".zip"))


def _pep508(text: str, where: _Where) -> PipRequirement:
    simple = _SIMPLE_REQUIREMENT.fullmatch(text)
    if simple:
        specifier = simple["op"] + simple["version"] if simple["op"] else ""
        marker = _simple_marker(simple) if simple["var"] else ""
        return _make(simple["name"], (), specifier, marker)
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise where.error(
            f"invalid requirement {text!r}: {_first_line(exc)}",
            'write a PEP 508 requirement such as name[extra]>=1.0 ; python_version >= "3.10"',
        ) from exc
    url = ""
    if req.url:
        if req.url.startswith("file:"):
            raise where.error(f"file: URL in {text!r}", "write a path relative to the file instead, e.g. ./pkg")
        url = check_url(req.url, what="requirement URL", vcs=True, **where.kw)
    return _make(req.name, sorted(req.extras), str(req.specifier), str(req.marker) if req.marker else "", url=url)


def _url_requirement(text: str, where: _Where, *, editable: bool) -> PipRequirement:
    url, _, marker_text = text.partition(" ;")
    url = url.strip()
    if url.startswith("file:"):
        raise where.error(f"file: URL {url!r}", "write a path relative to the requirements file instead, e.g. ./pkg")
    check_url(url, what="requirement URL", vcs=True, **where.kw)
    marker = _marker(marker_text.strip(), where) if marker_text.strip() else ""
    egg = re.search(r"[#&]egg=([A-Za-z0-9_.-]+)", url)
    wheel = _WHEEL_NAME.match(url.rsplit("/", 1)[-1].split("#")[0])
    name = egg.group(1) if egg else (wheel.group("name") if wheel else "")
    if editable:
        if not egg:
            raise where.error(f"editable URL {url!r} needs #egg=<name>")
        cname = _canonical_name(name)
        return PipRequirement(name=cname, line=url, url=url, editable=True, marker=marker)
    if not name:
        return PipRequirement(name="", line=url + (f" ; {marker}" if marker else ""), url=url, marker=marker)
    clean = re.sub(r"[#&]egg=[A-Za-z0-9_.-]+", "", url).rstrip("#")
    return _make(name, (), "", marker, url=clean)


def _path_requirement(state: _FileState, text: str, rel: str, where: _Where, *, editable: bool) -> PipRequirement:
    if " ;" in text:
        raise where.error(f"environment markers on a local path ({text!r}) are not supported")
    m = _EXTRAS_SUFFIX.match(text)
    path, extras_text = (m.group("path"), m.group("extras") or "") if m else (text, "")
    check_no_shell(path, what="local path", **where.kw)
    if path.startswith("~"):
        raise where.error(f"local path {path!r} uses ~", "use a path relative to the requirements file")
    target, absolute = project_relative(state.project_dir, join_rel(rel, path), **where.kw)
    if not absolute.exists():
        raise where.error(f"local path {path!r} does not exist (resolved to {target!r})")
    extras = tuple(sorted({_canonical_name(e.strip()) for e in extras_text.split(",") if e.strip()}))
    line = ("./" + target if target != "." else ".") + (f"[{','.join(extras)}]" if extras else "")
    return PipRequirement(name="", line=line, extras=extras, editable=editable, local_path=target)


# --------------------------------------------------------------------------- shared


def _dedupe(reqs: list[tuple[PipRequirement, _Where]], warnings: list[Diagnostic]) -> tuple[PipRequirement, ...]:
    """Sorted requirements; identical entries merge (with a warning), different ones for one package are an error."""
    seen: dict[tuple[str, str], tuple[PipRequirement, _Where]] = {}
    for req, where in reqs:
        key = (req.name or req.line, req.marker)
        other = seen.get(key)
        if other is None:
            seen[key] = (req, where)
            continue
        first = f"{other[1].file}:{other[1].line}"
        if other[0] != req:
            raise where.error(
                f"package {req.name or req.line!r} is listed twice with different specs: {other[0].line!r} "
                f"({first}) and {req.line!r}",
                "keep one entry per package (names are case- and separator-insensitive: Torch == torch)",
            )
        warnings.append(
            Diagnostic(
                "warning",
                where.key_path,
                f"package {req.name or req.line!r} is also listed at {first}; the entries are merged",
                where.line,
                where.file,
                "remove one of them",
            )
        )
    return tuple(sorted((r for r, _ in seen.values()), key=lambda r: (r.name, r.line)))
