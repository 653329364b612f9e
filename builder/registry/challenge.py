"""Registry authentication challenges: ``WWW-Authenticate`` parsing and the token exchange.

A registry answers 401 with ``Bearer realm="…",service="…",scope="…"`` (token auth, as Docker
Hub and distribution with a token server do) or ``Basic realm="…"`` (htpasswd).  For Bearer the
client asks the realm for a token: with Basic credentials, or with an identity token as an
OAuth2 refresh token (what ``docker login`` stores for some registries), or anonymously.

>>> parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
Challenge(scheme='bearer', params=(('realm', 'https://auth.example/token'), ('scope', 'repository:a/b:pull'), ('service', 'reg')))
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from dataclasses import dataclass

_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` challenge: lower-case scheme and sorted parameters."""

    scheme: str
    params: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The parameter ``name`` (lower-case), or None."""
        return dict(self.params).get(name)


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge in ``header``, or None when it names no scheme."""
    text = header.strip()
    scheme, _, rest = text.partition(" ")
    if not scheme or "=" in scheme:
        return None
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return Challenge(scheme.lower(), tuple(sorted(params.items())))


def basic_header(username: str, password: str) -> str:
    """``Basic base64(user:password)``."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def token_request(
    challenge: Challenge, scope: str, username: str | None, password: str | None, identitytoken: str | None
) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, url, headers, body) of the token request for ``challenge`` and ``scope``.

    ValueError when the challenge has no usable ``realm`` (an http(s) URL).
    """
    realm = challenge.get("realm") or ""
    if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
        raise ValueError(f"the Bearer challenge has no usable realm ({realm!r})")
    fields = {"scope": scope}
    service = challenge.get("service")
    if service:
        fields["service"] = service
    if identitytoken:  # OAuth2 refresh-token grant, the way docker uses an identity token
        form = {**fields, "grant_type": "refresh_token", "refresh_token": identitytoken, "client_id": "builder"}
        body = urllib.parse.urlencode(sorted(form.items())).encode()
        return "POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, body
    headers = {"Authorization": basic_header(username, password or "")} if username else {}
    separator = "&" if urllib.parse.urlsplit(realm).query else "?"
    return "GET", realm + separator + urllib.parse.urlencode(sorted(fields.items())), headers, None


def token_from(body: bytes) -> str | None:
    """The bearer token in a token server's JSON answer (``token`` or ``access_token``), or None."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    token = data.get("token") or data.get("access_token")
    return token if isinstance(token, str) and token else None
