"""conda match-spec sets from ``[cerebrium.dependencies.conda]`` or a pkglist file.

Specs are parsed by py-rattler's :class:`rattler.MatchSpec` (a real conda
match-spec implementation); the canonical text is rattler's rendering.
Inline values follow the same version rules as pip: ``"latest"``/``""``/``"*"``
unpinned, a bare version means ``==version``, operator specs are kept.  A
key may name its channel: ``"conda-forge::numpy"``.  In a file each line is a
match spec (``numpy >=1.24``, ``pytorch::pytorch=2.1``, ``numpy=1.24=py_0``),
and ``-c CHANNEL`` / ``--channel CHANNEL`` lines add channels in order.

>>> conda_set_from_inline((("cuda", ">=11.7"), ("cudatoolkit", "11.7"))).specs[1].spec
'cudatoolkit ==11.7'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from builder.deps._text import (
    SHELL_METACHARS,
    UNPINNED,
    Problems,
    check_plain,
    describe_char,
    key_path_for,
    redact,
    split_credentials,
)
from builder.deps.model import CondaSet, CondaSpec
from builder.deps.paths import project_relative, read_project_file
from builder.errors import DependencyError

INLINE_KEY = "cerebrium.dependencies.conda"
PATHS_KEY = "cerebrium.dependencies.paths.conda"
DEFAULT_CHANNELS: tuple[str, ...] = ("conda-forge",)

# conda package names (conda's own rule, lower-cased by rattler's normalisation).
_PACKAGE_NAME = re.compile(r"[a-z0-9_][a-z0-9_.+-]*")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)*$")
_CHANNEL_URL = re.compile(r"^(?:https?|file)://[A-Za-z0-9._~:/@%+-]+$")
# In conda versions '|' means "or" and '*' is a glob; both are harmless argv data.
_CONDA_FORBIDDEN = (SHELL_METACHARS - frozenset("|")) | frozenset("()")


def parse_spec(text: str, *, key_path: str, file: str | None = None, line: int | None = None) -> CondaSpec:
    """Parse one match spec with rattler and return its canonical CondaSpec."""
    import rattler

    check_plain(text, what="conda spec", key_path=key_path, file=file, line=line)
    bad = sorted({c for c in text if c in _CONDA_FORBIDDEN})
    if bad:
        raise DependencyError(
            f"conda spec {redact(text)!r} contains {', '.join(describe_char(c) for c in bad)}",
            key_path=key_path,
            file=file,
            line=line,
            hint="use the plain match-spec form: name, name >=1.0, channel::name 1.2.*",
        )
    channel, creds = "", None
    if "::" in text:
        head, _, rest = text.partition("::")
        channel, creds = channel_credentials(head.strip(), key_path=key_path, file=file, line=line)
        if creds is not None:  # the spec is recorded, hashed and printed without them
            text = f"{channel}::{rest}"
    try:
        spec = rattler.MatchSpec(text)
    except Exception as exc:  # rattler raises its own InvalidMatchSpecError (not importable by name)
        raise DependencyError(
            f"invalid conda spec {text!r}: {str(exc).splitlines()[0]}",
            key_path=key_path,
            file=file,
            line=line,
            hint="write a conda match spec such as 'numpy >=1.24' or 'conda-forge::numpy 1.26.*'",
        ) from exc
    name = spec.name.normalized if hasattr(spec.name, "normalized") else str(spec.name)
    if not _PACKAGE_NAME.fullmatch(name or ""):
        raise DependencyError(
            f"conda spec {text!r} does not name a package ({name!r} is not a conda package name)",
            key_path=key_path,
            file=file,
            line=line,
            hint="conda package names are lower-case letters, digits, '_', '-' and '.', starting with a letter, "
            "digit or '_' (options such as --allow-unauthenticated are not specs)",
        )
    return CondaSpec(name=name, spec=str(spec), channel=channel, credentials=(creds,) if creds else ())


def validate_channel(channel: str, *, key_path: str, file: str | None = None, line: int | None = None) -> str:
    """A channel name (``conda-forge``) or URL; returned without a trailing slash nor ``user:password@``."""
    return channel_credentials(channel, key_path=key_path, file=file, line=line)[0]


def channel_credentials(
    channel: str, *, key_path: str, file: str | None = None, line: int | None = None
) -> tuple[str, tuple[str, str, str] | None]:
    """:func:`validate_channel`'s channel, and the (host, user, password) its URL carried, if any.

    >>> channel_credentials("https://me:tok@conda.example.com/private", key_path="k")
    ('https://conda.example.com/private', ('conda.example.com', 'me', 'tok'))
    """
    check_plain(channel, what="conda channel", key_path=key_path, file=file, line=line)
    if _CHANNEL_NAME.match(channel) or _CHANNEL_URL.match(channel):
        clean, creds = split_credentials(channel.rstrip("/"))
        if creds is not None and (not creds[0] or "@" in clean.split("//", 1)[-1].split("/", 1)[0]):
            raise DependencyError(
                f"conda channel {redact(channel)!r} has a malformed user:password@host part",
                key_path=key_path,
                file=file,
                line=line,
                hint="write https://USER:PASSWORD@HOST/CHANNEL, with '@' in the password written as %40",
            )
        return clean, creds
    raise DependencyError(
        f"{redact(channel)!r} is not a valid conda channel",
        key_path=key_path,
        file=file,
        line=line,
        hint="use a channel name (conda-forge) or an http(s)/file URL",
    )


def _inline_text(key: str, value: str, key_path: str, line: int | None, file: str | None) -> str:
    check_plain(value, what="version", key_path=key_path, file=file, line=line)
    version = value.strip()
    if version.lower() in UNPINNED:
        return key.strip()
    if " " in version:
        raise DependencyError(
            f"version {version!r} of {key!r} contains a space",
            key_path=key_path,
            file=file,
            line=line,
            hint='write one version spec, e.g. ">=1.2,<2" or "1.2.*"',
        )
    if re.fullmatch(r"[A-Za-z0-9_.+!-]+", version):
        version = "==" + version  # a bare version pins exactly, as for pip
    return f"{key.strip()} {version}"


def conda_set_from_inline(
    table: Iterable[tuple[str, str]], *, config_file: str | None = None, lines: dict[str, int] | None = None
) -> CondaSet:
    """A CondaSet from the inline table's (name, version) pairs."""
    found: dict[str, tuple[str, CondaSpec]] = {}
    problems = Problems()
    for key, value in table:
        key_path = key_path_for(INLINE_KEY, key)
        line = (lines or {}).get(key_path)
        with problems.entry():
            check_plain(key, what="conda package name", key_path=key_path, file=config_file, line=line)
            spec = parse_spec(
                _inline_text(key, value, key_path, line, config_file), key_path=key_path, file=config_file, line=line
            )
            _add(found, key, spec, key_path=key_path, file=config_file, line=line)
    problems.raise_if_any()
    specs = tuple(sorted(s for _, s in found.values()))
    return CondaSet(specs=specs, channels=_channels([], specs), source="inline", credentials=_credentials([], specs))


def conda_set_from_file(rel: str, *, project_dir: Path, key_path: str = PATHS_KEY) -> CondaSet:
    """A CondaSet from a conda pkglist file (one match spec per line)."""
    norm, _ = project_relative(project_dir, rel, key_path=key_path)
    pf = read_project_file(project_dir, norm, key_path=key_path)
    found: dict[str, tuple[str, CondaSpec]] = {}
    channels: list[str] = []
    found_creds: list[tuple[str, str, str]] = []
    problems = Problems()
    for number, raw in enumerate(pf.text.split("\n"), start=1):
        text = raw.split("#", 1)[0].strip()
        if not text or text == "@EXPLICIT":
            continue
        head, _, rest = text.partition(" ")
        with problems.entry():
            if head in ("-c", "--channel"):
                channel, creds = channel_credentials(rest.strip(), key_path=key_path, file=pf.rel, line=number)
                channels.append(channel)
                if creds is not None:
                    found_creds.append(creds)
                continue
            spec = parse_spec(text, key_path=key_path, file=pf.rel, line=number)
            _add(found, text, spec, key_path=key_path, file=pf.rel, line=number)
    problems.raise_if_any()
    specs = tuple(sorted(s for _, s in found.values()))
    return CondaSet(
        specs=specs, channels=_channels(channels, specs), source=pf.rel, credentials=_credentials(found_creds, specs)
    )


def _credentials(
    explicit: list[tuple[str, str, str]], specs: tuple[CondaSpec, ...]
) -> tuple[tuple[str, str, str], ...]:
    return tuple(dict.fromkeys([*explicit, *(c for s in specs for c in s.credentials)]))


def _channels(explicit: list[str], specs: tuple[CondaSpec, ...]) -> tuple[str, ...]:
    ordered = list(dict.fromkeys([*explicit, *sorted({s.channel for s in specs if s.channel})]))
    return tuple(ordered) or DEFAULT_CHANNELS


def _add(
    found: dict[str, tuple[str, CondaSpec]],
    key: str,
    spec: CondaSpec,
    *,
    key_path: str,
    file: str | None,
    line: int | None,
) -> None:
    if spec.name in found:
        raise DependencyError(
            f"conda package {spec.name!r} is listed twice ({found[spec.name][0]!r} and {key!r})",
            key_path=key_path,
            file=file,
            line=line,
            hint="keep one entry per package",
        )
    found[spec.name] = (key, spec)
