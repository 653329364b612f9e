"""Build secrets: ``--secret id=NAME,src=FILE`` / ``--secret id=NAME,env=VAR``, read at the edge, kept in memory.

The syntax is buildx's: comma-separated ``key=value`` fields (CSV quoting for values with commas)

* ``id=NAME`` (required): the secret's id, mounted at ``/run/secrets/NAME`` (see :mod:`builder.plan.secret_ids`);
* ``type=file|env``: where the value comes from (default: ``env`` when only ``env=`` is given, else ``file``);
* ``src=PATH`` / ``source=PATH``: the file (``type=file``), or the variable's name (``type=env``);
* ``env=VAR``: the environment variable (``type=env``; with neither ``src`` nor ``env`` the variable is ``NAME``);
* ``required`` / ``required=true|false`` (default true): with ``false`` a missing file or unset variable is no
  error: the id stays in the plan and the step finds no file.

Values are read once here (the CLI and the Python API call :func:`read_secrets`), served to BuildKit by the
session's Secrets service and mounted only while a step runs (a tmpfs file): never in a layer, a key, the plan,
the LLB, the step cache or any output.  :class:`BuildSecrets` never shows a value in its repr.

>>> SecretSource.parse("id=token,src=token.txt")
SecretSource(id='token', type='file', source='token.txt', required=True)
>>> SecretSource.parse("id=token,env=API_TOKEN").type
'env'
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from builder.errors import ConfigError
from builder.plan.secret_ids import check_secret_id

SecretType = Literal["file", "env"]
#: BuildKit's own limit for one secret.
MAX_SECRET_BYTES = 500 * 1024
_FLAG = "--secret"
_SYNTAX = "e.g. --secret id=token,src=token.txt or --secret id=token,env=API_TOKEN"
_FIELDS = ("id", "type", "src", "source", "env", "required")
_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _bad(text: str, problem: str) -> ConfigError:
    return ConfigError(f"{text!r}: {problem}", key_path=_FLAG, hint=_SYNTAX)


@dataclass(frozen=True, slots=True)
class SecretSource:
    """Where one build secret's value comes from (no value: that is read by :func:`read_secrets`)."""

    id: str
    type: SecretType
    source: str
    required: bool = True

    @classmethod
    def parse(cls, text: str) -> SecretSource:
        """One ``--secret`` value; ConfigError (naming ``--secret``) for anything malformed."""
        fields = _fields(text)
        secret_id = fields.get("id", "")
        if not secret_id:
            raise _bad(text, "no id=NAME (the secret is mounted at /run/secrets/NAME)")
        try:
            check_secret_id(secret_id)
        except ValueError as exc:
            raise _bad(text, str(exc)) from None
        src = fields.get("src", fields.get("source", ""))
        env = fields.get("env", "")
        kind = fields.get("type") or ("env" if env and not src else "file")
        if kind not in ("file", "env"):
            raise _bad(text, f"type must be file or env, not {kind!r}")
        if kind == "file":
            if env:
                raise _bad(text, "env= needs type=env (a file secret takes src=FILE)")
            if not src:
                raise _bad(text, "no src=FILE for a file secret")
            source = src
        else:
            if src and env and src != env:
                raise _bad(text, "give the variable once, as env=VAR (or src=VAR)")
            source = env or src or secret_id
        required = fields.get("required", "true").lower()
        if required not in _TRUE:
            raise _bad(text, f"required must be true or false, not {required!r}")
        return cls(secret_id, kind, source, _TRUE[required])  # type: ignore[arg-type]


def _fields(text: str) -> dict[str, str]:
    try:
        rows = list(csv.reader([text], skipinitialspace=True))
    except csv.Error as exc:
        raise _bad(text, f"not comma-separated key=value fields ({exc})") from None
    found: dict[str, str] = {}
    for item in rows[0] if rows else []:
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            if key != "required":
                raise _bad(text, f"{item!r} is not key=value")
            value = "true"
        if key not in _FIELDS:
            raise _bad(text, f"unknown field {key!r} (known: {', '.join(_FIELDS)})")
        if key in found:
            raise _bad(text, f"{key} is given twice")
        found[key] = value
    return found


@dataclass(frozen=True, slots=True)
class BuildSecrets:
    """The build secrets of one build: every id (the plan's) and the values that were found.

    ``ids`` also holds a ``required=false`` secret that had no value (mounted as an optional mount).
    """

    ids: tuple[str, ...] = ()
    values: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"BuildSecrets(ids={self.ids!r})"

    @classmethod
    def of(cls, values: Mapping[str, bytes | str]) -> BuildSecrets:
        """Secrets given as values (the Python API's ``secrets={"token": b"..."}``), ids checked."""
        checked: dict[str, bytes] = {}
        for secret_id, value in values.items():
            try:
                check_secret_id(secret_id)
            except ValueError as exc:
                raise ConfigError(str(exc), key_path="secrets", hint=_SYNTAX) from None
            data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            checked[secret_id] = _sized(secret_id, data, "secrets")
        return cls(tuple(sorted(checked)), checked)


def parse_secrets(texts: Iterable[str]) -> tuple[SecretSource, ...]:
    """Every ``--secret`` value parsed; a duplicate id is an error."""
    sources: dict[str, SecretSource] = {}
    for text in texts:
        source = SecretSource.parse(text)
        if source.id in sources:
            raise _bad(text, f"secret id {source.id!r} is given twice")
        sources[source.id] = source
    return tuple(sources.values())


def read_secrets(sources: Iterable[SecretSource], environ: Mapping[str, str] | None = None) -> BuildSecrets:
    """The values of ``sources`` (files read, variables looked up); ConfigError naming the flag when one is missing."""
    env = os.environ if environ is None else environ
    ids: list[str] = []
    values: dict[str, bytes] = {}
    for source in sources:
        ids.append(source.id)
        value = _read_file(source) if source.type == "file" else _read_env(source, env)
        if value is not None:
            values[source.id] = _sized(source.id, value, _FLAG)
    return BuildSecrets(tuple(sorted(ids)), values)


def secrets_from(given: BuildSecrets | Iterable[str] | Mapping[str, bytes | str] | None) -> BuildSecrets:
    """The Python API's ``secrets=``: ``--secret`` strings (read now), a mapping of id to value, or secrets
    read already (:func:`read_secrets`)."""
    if given is None:
        return BuildSecrets()
    if isinstance(given, BuildSecrets):
        return given
    if isinstance(given, Mapping):
        return BuildSecrets.of(given)
    if isinstance(given, str | bytes):
        raise ConfigError(
            "secrets must be a list of --secret values or a mapping of id to value, not one string",
            key_path="secrets",
            hint='e.g. secrets=["id=token,src=token.txt"] or secrets={"token": b"..."}',
        )
    return read_secrets(parse_secrets(given))


def _read_file(source: SecretSource) -> bytes | None:
    path = os.path.expanduser(source.source)
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_SECRET_BYTES + 1)
    except FileNotFoundError:
        if not source.required:
            return None
        raise ConfigError(
            f"id={source.id}: the file {source.source} does not exist",
            file=source.source,
            key_path=_FLAG,
            hint="give the path of a readable file with src=, or add required=false to build without it",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"id={source.id}: cannot read {source.source} ({exc.strerror or exc})",
            file=source.source,
            key_path=_FLAG,
            hint="give the path of a readable file with src=",
        ) from None


def _read_env(source: SecretSource, environ: Mapping[str, str]) -> bytes | None:
    value = environ.get(source.source)
    if value is None:
        if not source.required:
            return None
        raise ConfigError(
            f"id={source.id}: the environment variable {source.source} is not set",
            key_path=_FLAG,
            hint=f"export {source.source}=... before the build, or add required=false to build without it",
        )
    return value.encode("utf-8")


def _sized(secret_id: str, value: bytes, flag: str) -> bytes:
    if len(value) > MAX_SECRET_BYTES:
        raise ConfigError(
            f"{flag}: secret {secret_id!r} is larger than {MAX_SECRET_BYTES} bytes, BuildKit's limit",
            key_path=flag,
            hint="mount a smaller file (e.g. a token, not an archive)",
        )
    return value


def secret_ids_of(given: BuildSecrets | Iterable[str] | Mapping[str, bytes | str] | None) -> tuple[str, ...]:
    """The ids of ``given`` (as for :func:`secrets_from`) without reading any value: what planning needs."""
    if given is None:
        return ()
    if isinstance(given, BuildSecrets):
        return given.ids
    if isinstance(given, Mapping):
        return BuildSecrets.of({k: b"" for k in given}).ids
    if isinstance(given, str | bytes):
        return secrets_from(given).ids  # raises the one-string error
    return tuple(sorted(s.id for s in parse_secrets(given)))
