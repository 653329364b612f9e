"""Registry credentials the way the docker CLI finds them.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``) is read on
every :func:`lookup`, so a ``docker login`` between two builds is seen:

1. ``credHelpers[host]`` names a helper: ``docker-credential-NAME get``;
2. else ``credsStore`` names the helper for every host;
3. else (or when the store has nothing) the ``auths`` entry: ``auth``
   (base64 ``user:password``), ``username``/``password``, ``identitytoken``.

A helper reads the server address on stdin and prints JSON
``{"Username": …, "Secret": …}``; the username ``<token>`` marks an
identity token.  Docker Hub's names (``docker.io``, ``index.docker.io``,
``registry-1.docker.io``, ``https://index.docker.io/v1/``) are one registry.
The secret never appears in a repr, a message or a log line.

>>> lookup("127.0.0.1:5000", env={"DOCKER_CONFIG": "/nonexistent"}) is None
True
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import ConfigError, RegistryAuthError

#: The key docker stores Docker Hub credentials under.
DOCKER_HUB = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HELPER_TIMEOUT = 20.0
_MAX_CONFIG = 4 * 1024 * 1024
_TOKEN_USER = "<token>"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A registry login: ``username`` + ``secret`` (a password), or an ``identity_token``.

    The repr names the server and user only:

    >>> Credentials("127.0.0.1:5000", "ci", "s3cret")
    Credentials(server='127.0.0.1:5000', username='ci', secret=***)
    """

    server: str
    username: str = ""
    secret: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    #: Where they came from, e.g. ``config.json auths`` or ``helper docker-credential-pass``.
    source: str = ""

    def __repr__(self) -> str:
        hidden = ", secret=***" if self.secret else ""
        token = ", identity_token=***" if self.identity_token else ""
        return f"Credentials(server={self.server!r}, username={self.username!r}{hidden}{token})"

    @property
    def password(self) -> str:
        """The secret under the name docker's config and the registry client use."""
        return self.secret

    @property
    def identitytoken(self) -> str:
        """``identity_token`` under docker's name."""
        return self.identity_token

    def engine_auth(self) -> dict[str, str]:
        """The Docker Engine API's ``X-Registry-Auth`` JSON fields for these credentials."""
        if self.identity_token:
            return {"identitytoken": self.identity_token, "serveraddress": self.server}
        return {"username": self.username, "password": self.secret, "serveraddress": self.server}


def normalize_host(server: str) -> str:
    """The registry host a server address names (docker's ``ConvertToHostname``, Hub aliases folded).

    >>> normalize_host("https://127.0.0.1:5000/v2/")
    '127.0.0.1:5000'
    >>> normalize_host("registry-1.docker.io")
    'docker.io'
    """
    text = server.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    host = text.split("/", 1)[0].lower()
    return "docker.io" if host in _HUB_ALIASES else host


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$DOCKER_CONFIG``, else ``~/.docker`` (the directory holding ``config.json``)."""
    environ = os.environ if env is None else env
    given = environ.get("DOCKER_CONFIG")
    if given:
        return Path(given)
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def lookup(host: str, *, env: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials docker would use for registry ``host``, or None (anonymous).

    Raises ConfigError (malformed ``config.json``, naming the file and the problem)
    or RegistryAuthError (a configured credential helper is missing or fails).
    """
    path = config_dir(env) / "config.json"
    config = _read_config(path)
    if config is None:
        return None
    wanted = normalize_host(host)
    server = DOCKER_HUB if wanted == "docker.io" else wanted
    helpers = _mapping(config, "credHelpers", path)
    for key, name in helpers.items():
        if normalize_host(key) == wanted:
            return _from_helper(_text(name, f"credHelpers.{key}", path), server, path, env)
    store = config.get("credsStore")
    if store is not None:
        found = _from_helper(_text(store, "credsStore", path), server, path, env)
        if found is not None:
            return found
    auths = _mapping(config, "auths", path)
    for key, entry in auths.items():
        if normalize_host(key) == wanted:
            return _from_entry(entry, key, server, path)
    return None


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_CONFIG + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"{path}: cannot read the docker config ({exc.strerror or exc})", file=str(path), hint=_FIX
        ) from exc
    if len(data) > _MAX_CONFIG:
        raise ConfigError(f"{path}: the docker config is larger than 4 MiB", file=str(path), hint=_FIX)
    if not data.strip():
        return None  # docker treats an empty file as no config
    try:
        loaded = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the docker config is not UTF-8 text", file=str(path), hint=_FIX) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: the docker config is not valid JSON: {exc.msg}", file=str(path), line=exc.lineno, hint=_FIX
        ) from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the docker config must be a JSON object", file=str(path), hint=_FIX)
    return loaded


_FIX = "fix the file or point DOCKER_CONFIG at another directory; `docker login HOST` rewrites it"


def _mapping(config: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key!r} must be a JSON object", file=str(path), key_path=key, hint=_FIX)
    return value


def _text(value: object, key: str, path: Path) -> str:
    if not isinstance(value, str) or not value or "/" in value or value.startswith("."):
        raise ConfigError(
            f"{path}: {key!r} must name a credential helper (docker-credential-NAME), not {value!r}",
            file=str(path),
            key_path=key,
            hint=_FIX,
        )
    return value


def _from_entry(entry: object, key: str, server: str, path: Path) -> Credentials | None:
    where = f"auths.{key}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where!r} must be a JSON object", file=str(path), key_path=where, hint=_FIX)
    fields = {}
    for name in ("auth", "username", "password", "identitytoken"):
        value = entry.get(name, "")
        if not isinstance(value, str):
            raise ConfigError(
                f"{path}: {where}.{name} must be a string", file=str(path), key_path=f"{where}.{name}", hint=_FIX
            )
        fields[name] = value
    username, secret = fields["username"], fields["password"]
    if fields["auth"]:
        username, secret = _decode_auth(fields["auth"], where, path)
    if not (secret or fields["identitytoken"]):
        return None
    return Credentials(server, username, secret, fields["identitytoken"], "config.json auths")


def _decode_auth(text: str, where: str, path: Path) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(text.strip() + "=" * (-len(text.strip()) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            f"{path}: {where}.auth is not base64 of 'user:password'",
            file=str(path),
            key_path=f"{where}.auth",
            hint=_FIX,
        ) from exc
    user, sep, secret = decoded.partition(":")
    if not sep:
        raise ConfigError(
            f"{path}: {where}.auth decodes to no 'user:password' pair",
            file=str(path),
            key_path=f"{where}.auth",
            hint=_FIX,
        )
    return user, secret


def _from_helper(name: str, server: str, path: Path, env: Mapping[str, str] | None) -> Credentials | None:
    program = f"docker-credential-{name}"
    environ = dict(os.environ if env is None else env)
    found = shutil.which(program, path=environ.get("PATH", os.defpath))
    host = normalize_host(server)
    if found is None:
        raise RegistryAuthError(
            f"credential helper {program} (named in {path}) is not installed or not on PATH",
            registry=host,
            hint=f"install {program}, or remove it from {path} and run `docker login {host}`",
        )
    try:
        done = subprocess.run(
            [found, "get"],
            input=server.encode("utf-8"),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            env=environ,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RegistryAuthError(
            f"credential helper {program} did not answer within {_HELPER_TIMEOUT:g} s", registry=host
        ) from exc
    except OSError as exc:
        raise RegistryAuthError(
            f"cannot run credential helper {program}: {exc.strerror or exc}", registry=host
        ) from exc
    out = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        if "credentials not found" in out.lower() or "credentials not found" in done.stderr.decode("utf-8", "replace"):
            return None
        # The helper's output is not echoed: a misbehaving helper could print the secret.
        raise RegistryAuthError(f"credential helper {program} failed (exit {done.returncode})", registry=host)
    return _parse_helper_output(out, program, server, host)


def _parse_helper_output(out: str, program: str, server: str, host: str) -> Credentials | None:
    try:
        data = json.loads(out)
    except json.JSONDecodeError as exc:
        raise RegistryAuthError(f"credential helper {program} printed no JSON answer", registry=host) from exc
    if not isinstance(data, dict):
        raise RegistryAuthError(f"credential helper {program} printed no JSON object", registry=host)
    user, secret = data.get("Username", ""), data.get("Secret", "")
    if not isinstance(user, str) or not isinstance(secret, str):
        raise RegistryAuthError(f"credential helper {program}: Username and Secret must be strings", registry=host)
    if not secret:
        return None
    source = f"helper {program}"
    if user == _TOKEN_USER:
        return Credentials(server, "", "", secret, source)
    return Credentials(server, user, secret, "", source)
