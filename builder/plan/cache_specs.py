"""Shared build caches in buildx's syntax: ``--cache-to`` / ``--cache-from`` values as frozen data (pure).

A value is a comma-separated list of ``key=value`` attributes (CSV quoting, so
a path may hold a comma: ``"dest=/tmp/a,b"``), or a bare image reference, which
means ``type=registry,ref=REFERENCE``::

    >>> parse_cache_spec("type=registry,ref=127.0.0.1:5000/app:cache,mode=max", flag="--cache-to")
    CacheSpec(type='registry', ref='127.0.0.1:5000/app:cache', mode='max')
    >>> parse_cache_spec("127.0.0.1:5000/app:cache", flag="--cache-from").format()
    'type=registry,ref=127.0.0.1:5000/app:cache'
    >>> parse_cache_spec("type=local,dest=out/cache", flag="--cache-to").attrs()
    {'dest': 'out/cache'}

Types: ``registry`` (export and import), ``inline`` (export only: the cache
metadata rides in the image config; import it with ``type=registry,ref=IMAGE``)
and ``local`` (an OCI layout directory: ``dest=`` to export, ``src=`` to
import).  ``gha``, ``s3`` and ``azblob`` are refused: they carry credentials in
attributes, and builder keeps credentials out of flags.  Which types an engine
offers is the engine's decision (see ``builder.engines.buildkit.remote_cache``).

The canonical text (:meth:`CacheSpec.format`) lists ``type`` first, then the set
attributes in :data:`ATTRIBUTES` order; ``parse(format(spec)) == spec``.  A
registry ``ref`` is kept in its fully qualified form (``app`` →
``docker.io/library/app:latest``), so two spellings of one cache compare equal.

Errors are :class:`~builder.errors.ConfigError` with ``key_path`` set to the
flag (or environment variable; the CLI prints it before the message) and say what to write instead; attribute values
that look like credentials are never repeated in a message.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Literal

from builder.errors import ConfigError
from builder.plan.images import parse_image

CacheType = Literal["registry", "inline", "local"]
CacheMode = Literal["min", "max"]
Direction = Literal["export", "import"]

#: The flags and environment variables, by direction.
FLAGS: Mapping[Direction, str] = {"export": "--cache-to", "import": "--cache-from"}
ENV_VARS: Mapping[Direction, str] = {"export": "BUILDER_CACHE_TO", "import": "BUILDER_CACHE_FROM"}

CACHE_TYPES: tuple[CacheType, ...] = ("registry", "inline", "local")
#: Types BuildKit knows that builder refuses, with the reason shown.
_REFUSED_TYPES = {
    "gha": "its token travels as an attribute",
    "s3": "its access keys travel as attributes",
    "azblob": "its account key travels as an attribute",
}
#: Attribute names whose values are never repeated in a message.
_SECRET_WORDS = ("token", "secret", "password", "key", "credential")

#: BuildKit attribute name → CacheSpec field, in canonical order.
ATTRIBUTES: Mapping[str, str] = {
    "ref": "ref",
    "dest": "dest",
    "src": "src",
    "tag": "tag",
    "digest": "digest",
    "mode": "mode",
    "compression": "compression",
    "compression-level": "compression_level",
    "force-compression": "force_compression",
    "oci-mediatypes": "oci_mediatypes",
    "image-manifest": "image_manifest",
    "ignore-error": "ignore_error",
    "registry.insecure": "registry_insecure",
}
_EXPORT_TUNING = (
    "mode",
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "image-manifest",
    "ignore-error",
)
#: Which attributes each (direction, type) takes; the first is required.
_ALLOWED: Mapping[tuple[Direction, CacheType], tuple[str, ...]] = {
    ("export", "registry"): ("ref", *_EXPORT_TUNING, "registry.insecure"),
    ("export", "local"): ("dest", "tag", *_EXPORT_TUNING),
    ("export", "inline"): (),
    ("import", "registry"): ("ref", "registry.insecure"),
    ("import", "local"): ("src", "tag", "digest"),
}
_BOOLS = ("force_compression", "oci_mediatypes", "image_manifest", "ignore_error", "registry_insecure")
_COMPRESSIONS = ("uncompressed", "gzip", "estargz", "zstd")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SPLIT_RE = re.compile(r"[;\n]")


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """One ``--cache-to`` or ``--cache-from`` value; unset attributes are None.

    ``attrs()`` is what goes to BuildKit (its attribute names, text values);
    ``format()`` is the canonical buildx text.  The direction is not part of the
    value: the same registry spec can be written by one runner and read by another.
    """

    type: CacheType
    ref: str | None = None
    dest: str | None = None
    src: str | None = None
    tag: str | None = None
    digest: str | None = None
    mode: CacheMode | None = None
    compression: str | None = None
    compression_level: int | None = None
    force_compression: bool | None = None
    oci_mediatypes: bool | None = None
    image_manifest: bool | None = None
    ignore_error: bool | None = None
    registry_insecure: bool | None = None

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if _is_set(self, f.name))
        return f"CacheSpec({shown})"

    def attrs(self) -> dict[str, str]:
        """BuildKit's attributes for this cache (``type`` excluded), in canonical order."""
        out: dict[str, str] = {}
        for name, attr in ATTRIBUTES.items():
            value = getattr(self, attr)
            if value is None:
                continue
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    def format(self) -> str:
        """The canonical buildx text: ``type=…`` then the set attributes (CSV-quoted where needed)."""
        cells = [f"type={self.type}", *(f"{k}={v}" for k, v in self.attrs().items())]
        return ",".join(_quote(cell) for cell in cells)

    @property
    def location(self) -> str:
        """Where the cache lives, for messages: the ref, the directory, or ``inline``."""
        return self.ref or self.dest or self.src or self.type


def _quote(cell: str) -> str:
    """CSV-quote a cell that holds a separator (``,`` or the env form's ``;``) or a quote."""
    if any(c in cell for c in ',";') or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _is_set(spec: CacheSpec, name: str) -> bool:
    return name == "type" or getattr(spec, name) is not None


def parse_cache_spec(text: str, *, flag: str) -> CacheSpec:
    """Parse one value of ``flag`` (``--cache-to``, ``--cache-from`` or their env variables).

    The direction comes from the flag name (``…-to``/``_TO`` exports).  Raises
    ConfigError naming ``flag``, the problem and the fix.
    """
    direction: Direction = "export" if flag.lower().replace("_", "-").endswith("-to") else "import"
    value = text.strip()
    if not value:
        raise _error(flag, "the value is empty", _example(direction))
    if "\n" in value or "\x00" in value:
        raise _error(flag, "a value must be one line", "give each cache its own flag")
    if "=" not in value:
        value = f"type=registry,ref={value}"
    raw = _split_cells(value, flag)
    if "type" not in raw:
        raise _error(flag, "no type= given", _example(direction))
    kind = raw.pop("type").lower()
    return _build(kind, raw, direction, flag)


def parse_cache_specs(values: Iterable[str], *, flag: str) -> tuple[CacheSpec, ...]:
    """Parse repeated ``flag`` values, dropping exact duplicates (first one kept)."""
    out: list[CacheSpec] = []
    for value in values:
        spec = parse_cache_spec(value, flag=flag)
        if spec not in out:
            out.append(spec)
    return tuple(out)


def split_env_value(text: str) -> list[str]:
    """One environment value → spec texts: separated by ``;`` or newlines, outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if not quoted and _SPLIT_RE.match(char):
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def specs_from_env(environ: Mapping[str, str], direction: Direction) -> tuple[CacheSpec, ...]:
    """The specs in ``BUILDER_CACHE_TO`` / ``BUILDER_CACHE_FROM`` (empty when unset)."""
    name = ENV_VARS[direction]
    return parse_cache_specs(split_env_value(environ.get(name, "")), flag=name)


def format_env_value(specs: Iterable[CacheSpec]) -> str:
    """The environment form of ``specs`` (``;``-separated canonical texts)."""
    return ";".join(spec.format() for spec in specs)


def _split_cells(value: str, flag: str) -> dict[str, str]:
    try:
        cells = next(csv.reader([value], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise _error(flag, f"cannot read it as comma-separated fields ({exc})", 'quote a field as "dest=a,b"') from exc
    raw: dict[str, str] = {}
    for cell in cells:
        if not cell.strip():  # a stray comma
            continue
        key, sep, val = cell.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise _error(flag, f"field {_shown(key, cell)!r} is not key=value", "write attributes as key=value")
        if key in raw:
            raise _error(flag, f"attribute {key!r} is given twice", "give each attribute once")
        raw[key] = val.strip()
    return raw


def _build(kind: str, raw: dict[str, str], direction: Direction, flag: str) -> CacheSpec:
    if kind in _REFUSED_TYPES:
        raise _error(
            flag,
            f"cache type {kind!r} is not supported by builder ({_REFUSED_TYPES[kind]})",
            "use type=registry,ref=HOST/REPO:TAG (credentials come from docker login) or type=local",
        )
    if kind not in CACHE_TYPES:
        raise _error(flag, f"unknown cache type {kind!r}", f"use one of: {', '.join(CACHE_TYPES)}")
    cache_type: CacheType = kind  # type: ignore[assignment]
    allowed = _ALLOWED.get((direction, cache_type))
    if allowed is None:
        raise _error(
            flag, "type=inline can only be exported", "import an image's inline cache with type=registry,ref=IMAGE"
        )
    for key in raw:
        if key not in allowed:
            raise _unknown_attr(flag, key, cache_type, direction, allowed)
    values = {ATTRIBUTES[k]: _convert(ATTRIBUTES[k], v, flag) for k, v in raw.items()}
    needed = allowed[0] if allowed else None
    if needed and needed not in raw:
        raise _error(flag, f"type={cache_type} needs {needed}=", _example(direction, cache_type))
    return CacheSpec(type=cache_type, **values)  # type: ignore[arg-type]


def _convert(attr: str, value: str, flag: str) -> object:
    if attr in _BOOLS:
        if value.lower() not in ("true", "false"):
            raise _error(flag, f"{_wire(attr)}={value!r} is not true or false", f"write {_wire(attr)}=true")
        return value.lower() == "true"
    if not value:
        raise _error(flag, f"{_wire(attr)}= is empty", f"give {_wire(attr)} a value or leave it out")
    check = _CHECKS.get(attr)
    return check(value, flag) if check else value


def _check_ref(value: str, flag: str) -> str:
    try:
        return str(parse_image(value))
    except ConfigError as exc:
        raise _error(flag, exc.message, "use a reference such as 127.0.0.1:5000/team/app:cache") from exc


def _check_mode(value: str, flag: str) -> str:
    if value not in ("min", "max"):
        raise _error(flag, f"mode={value!r} is not min or max", "mode=max also exports intermediate steps")
    return value


def _check_compression(value: str, flag: str) -> str:
    if value not in _COMPRESSIONS:
        raise _error(flag, f"compression={value!r} is not known", f"use one of: {', '.join(_COMPRESSIONS)}")
    return value


def _check_level(value: str, flag: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,2}", value):
        raise _error(flag, f"compression-level={value!r} is not a small integer", "e.g. compression-level=3")
    return int(value)


def _check_digest(value: str, flag: str) -> str:
    if not _DIGEST_RE.match(value):
        raise _error(flag, f"digest={value!r} is not sha256:<64 hex>", "copy the digest from the cache's index.json")
    return value


def _check_tag(value: str, flag: str) -> str:
    if not _TAG_RE.match(value):
        raise _error(flag, f"tag={value!r} is not a valid tag", "use letters, digits, '_', '.', '-'")
    return value


_CHECKS = {
    "ref": _check_ref,
    "mode": _check_mode,
    "compression": _check_compression,
    "compression_level": _check_level,
    "digest": _check_digest,
    "tag": _check_tag,
}


def _wire(attr: str) -> str:
    return next(k for k, v in ATTRIBUTES.items() if v == attr)


def _shown(key: str, cell: str) -> str:
    return key if any(word in key for word in _SECRET_WORDS) else cell


def _unknown_attr(
    flag: str, key: str, cache_type: CacheType, direction: Direction, allowed: tuple[str, ...]
) -> ConfigError:
    if not allowed:
        return _error(
            flag, f"type={cache_type} takes no attributes (got {key!r})", f"write {FLAGS[direction]} type=inline"
        )
    close = difflib.get_close_matches(key, allowed, n=1)
    other: Direction = "import" if direction == "export" else "export"
    if key in _ALLOWED.get((other, cache_type), ()):
        why = f"{key!r} applies to {FLAGS[other]}, not {FLAGS[direction]}"
    else:
        why = f"type={cache_type} has no attribute {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return _error(flag, why, f"{FLAGS[direction]} type={cache_type} takes: {', '.join(allowed)}")


def _example(direction: Direction, cache_type: CacheType = "registry") -> str:
    examples = {
        ("export", "registry"): "--cache-to type=registry,ref=HOST/REPO:cache,mode=max",
        ("export", "local"): "--cache-to type=local,dest=DIR",
        ("import", "registry"): "--cache-from type=registry,ref=HOST/REPO:cache",
        ("import", "local"): "--cache-from type=local,src=DIR",
    }
    return "e.g. " + examples.get((direction, cache_type), examples[(direction, "registry")])


def _error(flag: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(problem, key_path=flag, hint=hint)
