"""Shared validation of user-supplied dependency text.

Names, versions and option values end up as argv items of installers; these
checks make sure they are plain data: no control characters (newlines, NULs,
escapes) and no shell metacharacters where the syntax has no use for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypedDict
from urllib.parse import urlsplit

from builder.errors import DependencyError

UNPINNED = frozenset({"", "*", "latest"})

# Characters with a meaning to a POSIX shell that no package name, version or
# index URL needs.  (``<``/``>`` are version operators and are checked by the
# grammar of each manager instead.)
SHELL_METACHARS = frozenset(";&|`$\\\"'{}\n\r\t\x00")

# ASCII controls plus the Unicode line/paragraph separators and NEL, which some tools treat as newlines.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")
# RFC 3986 characters minus the ones a shell would act on (; $ ' ( ) and whitespace).
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!*+,=%-]+$")
_URL_SCHEMES = frozenset({"http", "https", "file"})
_VCS_SCHEMES = frozenset(
    {"git+https", "git+http", "git+ssh", "git+file", "hg+https", "hg+http", "svn+https", "bzr+https"}
)


class Problems:
    """Collects the DependencyErrors of independent entries, so one pass reports them all.

    >>> problems = Problems()
    >>> with problems.entry():
    ...     raise DependencyError("bad", key_path="k")
    >>> [p.message for p in problems.errors]
    ['bad']
    """

    def __init__(self) -> None:
        self.errors: list[DependencyError] = []

    @contextmanager
    def entry(self) -> Iterator[None]:
        """Run one entry's checks; a DependencyError is recorded and the next entry goes on."""
        try:
            yield
        except DependencyError as exc:
            self.errors.append(exc)

    def raise_if_any(self) -> None:
        """Raise one DependencyError carrying every recorded problem (in order), if any."""
        if not self.errors:
            return
        diags = tuple(d for exc in self.errors for d in exc.as_diagnostics())
        first = self.errors[0]
        message = first.message if len(diags) == 1 else f"{len(diags)} dependency problems"
        raise DependencyError(
            message,
            file=first.file,
            key_path=first.key_path,
            line=first.line,
            hint=first.hint if len(diags) == 1 else None,
            diagnostics=diags,
        )


class WhereKw(TypedDict):
    """The location keywords every DependencyError and check takes."""

    key_path: str
    file: str | None
    line: int | None


def describe_char(ch: str) -> str:
    """A readable name for a rejected character."""
    names = {
        "\n": "a newline",
        "\r": "a carriage return",
        "\x00": "a NUL byte",
        "\t": "a tab",
        "\u2028": "a Unicode line separator",
        "\u2029": "a Unicode paragraph separator",
        "\x85": "a NEL",
    }
    return names.get(ch, f"{ch!r}")


def check_plain(value: str, *, what: str, key_path: str, file: str | None = None, line: int | None = None) -> None:
    """Reject control characters anywhere in ``value`` (the first defence against injection)."""
    match = _CONTROL.search(value)
    if match:
        raise DependencyError(
            f"{what} {_short(value)} contains {describe_char(match.group())}",
            key_path=key_path,
            file=file,
            line=line,
            hint="package names, versions and options must be plain single-line text",
        )


def check_no_shell(value: str, *, what: str, key_path: str, file: str | None = None, line: int | None = None) -> None:
    """Reject control characters and shell metacharacters in ``value``."""
    check_plain(value, what=what, key_path=key_path, file=file, line=line)
    bad = sorted({c for c in value if c in SHELL_METACHARS})
    if bad:
        raise DependencyError(
            f"{what} {_short(value)} contains {', '.join(describe_char(c) for c in bad)}",
            key_path=key_path,
            file=file,
            line=line,
            hint="shell syntax is never allowed in dependency names, versions or options",
        )


def check_url(
    url: str, *, what: str, key_path: str, file: str | None = None, line: int | None = None, vcs: bool = False
) -> str:
    """Validate an index/find-links/requirement URL and return it unchanged.

    ``&`` is accepted only in the fragment (``#egg=x&subdirectory=y``).
    """
    check_plain(url, what=what, key_path=key_path, file=file, line=line)
    base, _, fragment = url.partition("#")
    allowed = _URL_CHARS.match(base) and (not fragment or re.match(r"^[A-Za-z0-9._=&/-]+$", fragment))
    schemes = _URL_SCHEMES | (_VCS_SCHEMES if vcs else frozenset())
    scheme = urlsplit(url).scheme.lower()
    if not allowed or scheme not in schemes:
        raise DependencyError(
            f"{what} {_short(url)} is not an acceptable URL",
            key_path=key_path,
            file=file,
            line=line,
            hint=f"use a {'/'.join(sorted(schemes))} URL without spaces, quotes or shell characters "
            "(environment variables are not expanded)",
        )
    return url


_USERINFO = re.compile(r"(?P<head>^[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@?#]*)@")


def split_credentials(url: str) -> tuple[str, tuple[str, str, str] | None]:
    """``url`` without ``user:password@``, and (host, user, password) when it had them.

    The URL without them is what builder records, hashes, prints and exports;
    the credentials reach the install step only as a build secret (a netrc).

    >>> split_credentials("https://me:tok@pypi.example.com/simple")
    ('https://pypi.example.com/simple', ('pypi.example.com', 'me', 'tok'))
    >>> split_credentials("git+https://github.com/o/r.git@v1")
    ('git+https://github.com/o/r.git@v1', None)
    """
    from urllib.parse import unquote

    m = _USERINFO.match(url)
    if m is None:
        return url, None
    clean = m["head"] + url[m.end() :]
    user, _, password = m["userinfo"].partition(":")
    host = (urlsplit(clean).hostname or "").lower()
    return clean, (host, unquote(user), unquote(password))


def redact(text: str) -> str:
    """``text`` with any ``scheme://user:password@`` shown as ``scheme://***@`` (for messages)."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#\s]*@", r"\1***@", text)


def _short(value: str) -> str:
    value = redact(value)
    text = value if len(value) <= 80 else value[:77] + "..."
    return repr(text)


def key_path_for(parent: str, key: str) -> str:
    """``parent.key``, quoting ``key`` the TOML way when it is not a bare key."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{parent}.{key}"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    escaped = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'{parent}."{escaped}"'
