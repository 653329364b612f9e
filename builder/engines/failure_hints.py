"""What a failed step's output says, in one line: the common causes and the setting that fixes each (pure).

A step that fails prints hundreds of lines; the cause is usually one of a few: no C compiler in the image,
a missing system library (headers, ``pkg-config`` data, a shared object), an HTTPS proxy whose CA the
build does not trust, or a package with no release for the image's platform.  :func:`hint_for` finds
the first of those in the step's log tail and names the fix; :func:`short_error` turns BuildKit's
``process "/bin/sh -c <the whole script>" did not complete successfully: exit code: 1`` into the exit
status alone (the scripts are builder's, not the user's: ``--debug`` shows the engine's full error).

>>> hint_for("pip", ["error: command 'gcc' failed: No such file or directory"]).split(":")[0]
'the build needs a C compiler, which the image lacks'
>>> short_error('process "/bin/sh -c set -eu ..." did not complete successfully: exit code: 1')
'the command did not complete successfully: exit code: 1'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_PROCESS = re.compile(r'^process ".*" did not complete successfully: (.+)$', re.DOTALL)
_EXECUTOR = re.compile(r"^executor failed running \[.*\]: (.+)$", re.DOTALL)

_COMPILER = re.compile(
    r"command '(?:[\w.-]*-)?(?:gcc|g\+\+|cc|c\+\+|clang)' failed"
    r"|unable to execute '(?:[\w.-]*-)?(?:gcc|cc|g\+\+)'"
    r"|\b(?:gcc|g\+\+|cc|c\+\+|make|cmake): (?:command )?not found"
    r"|linker `cc` not found"
    r"|No CMAKE_C(?:XX)?_COMPILER could be found"
    r"|error: Microsoft Visual C\+\+|could not find a C compiler|no acceptable C compiler found",
    re.IGNORECASE,
)
_HEADER = re.compile(r"fatal error: ([\w./+-]+\.h(?:pp)?): No such file or directory")
_LIBRARY = re.compile(
    r"Can not find valid pkg-config name"
    r"|pkg-config: (?:command )?not found|Package ([\w.+-]+) was not found in the pkg-config search path"
    r"|cannot find -l([\w.+-]+)"
    r"|error while loading shared libraries: ([\w.+-]+)"
    r"|([\w.+-]+\.so[\d.]*): cannot open shared object file"
    r"|(?:[\w-]+-config|pg_config|mysql_config) (?:executable )?not found",
)
_TLS = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|invalid peer certificate|UnknownIssuer"
    r"|SSL certificate problem|unable to get local issuer certificate|self[- ]signed certificate in certificate chain"
    r"|x509: certificate signed by unknown authority|server certificate verification failed",
    re.IGNORECASE,
)
_NO_DIST = re.compile(
    r"No matching distribution found for ([^\s;]+)"
    r"|(?:Because )?([\w.-]+(?:==[\w.+!-]+)?) has no wheels with a matching (?:platform|Python(?: ABI)?) tag"
    r"|there is no version of ([\w.-]+)"
    r"|no wheels? (?:are|is) available for ([\w.-]+)",
)

_APT = "[cerebrium.dependencies.apt]"


def short_error(error: str) -> str:
    """BuildKit's error of a failed exec without the command line (builder's script): just its exit status."""
    for pattern in (_PROCESS, _EXECUTOR):
        found = pattern.match(error.strip())
        if found:
            return f"the command did not complete successfully: {found.group(1).strip()}"
    return error


def _compiler(text: str) -> str | None:
    if not _COMPILER.search(text):
        return None
    return (
        f'the build needs a C compiler, which the image lacks: add {_APT} build-essential = "latest" '
        "(gcc, g++, make), or pick a version of the package that ships a wheel"
    )


def _library(text: str) -> str | None:
    header = _HEADER.search(text)
    if header:
        return (
            f"a system library's headers are missing ({header.group(1)}): add its -dev package to {_APT} "
            "(e.g. libffi-dev, libssl-dev, portaudio19-dev; `apt-file search` names it)"
        )
    found = _LIBRARY.search(text)
    if not found:
        return None
    name = next((g for g in found.groups() if g), "")
    what = f" ({name})" if name else ""
    return (
        f"a system library is missing{what}: add it and pkg-config to {_APT} "
        '(e.g. pkg-config = "latest" and the library\'s -dev package, such as default-libmysqlclient-dev)'
    )


def _tls(text: str) -> str | None:
    if not _TLS.search(text):
        return None
    return (
        "TLS certificate verification failed (an HTTPS proxy or private index?): build with --ca-bundle FILE "
        "or BUILDER_CA_BUNDLE=FILE naming the CA bundle that signs it, e.g. /etc/ssl/certs/ca-certificates.crt"
    )


def _no_distribution(text: str) -> str | None:
    found = _NO_DIST.search(text)
    if not found:
        return None
    name = next((g for g in found.groups() if g), "a package")
    return (
        f"no release of {name} can be installed here: check its name and version, and that it publishes a wheel "
        "or an sdist for Linux and this python_version (some ship wheels only for other systems)"
    )


#: Checked in this order: a TLS failure also ends in "no matching distribution", a missing compiler in missing files.
_CAUSES: tuple[Callable[[str], str | None], ...] = (_tls, _compiler, _library, _no_distribution)


def hint_for(step: str, lines: Iterable[str]) -> str | None:
    """The one-line hint for the first common cause found in a failed step's output (None: none recognised)."""
    del step  # every step that installs something fails the same ways; kept for the callers' clarity
    text = "\n".join(lines)
    for cause in _CAUSES:
        hint = cause(text)
        if hint is not None:
            return hint
    return None
