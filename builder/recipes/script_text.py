"""The in-container scripts: data files under ``builder/recipes/scripts/``, read (never imported).

A script file may name a few values with ``@NAME@`` tokens: the pinned tool versions and paths
of :mod:`builder.recipes.tools`, and other script files it carries inline (``@APT_FUNCS@``, the
shared apt functions; ``@UV_BOOT_PY@``, the uv bootstrap the shell scripts pass to
``python -I -S -c``).  :func:`script_text` substitutes them in one pass, so a value is never
scanned again; an unknown token is an error, not text left in a build.

Package names, versions and paths never reach these texts: they arrive as positional
arguments (``"$@"``) or as generated files.

>>> script_text("commands.sh").splitlines()[0]
'set -e'
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from builder.recipes import tools

_TOKEN = re.compile(r"@([A-Z][A-Z0-9_]*)@")
#: Tokens that stand for another script file's text (a fragment's final newline is left out:
#: the token sits on a line of its own in the script that carries it).
_FRAGMENTS = {
    "APT_FUNCS": "apt_funcs.sh",
    "UV_FUNCS": "uv_funcs.sh",
    "UV_BOOT_PY": "uv_boot.py",
    "UV_CHECK_PY": "uv_check.py",
    "UV_READY": "uv_ready.sh",
    "KNOWN_PY": "known_lines.py",
    "WHEEL_CHECK_PY": "wheel_check.py",
    "PIP_MAIN": "pip.sh",
}
#: Fragments carried inside single quotes by the shell scripts.
_QUOTED = frozenset({"UV_BOOT_PY", "UV_CHECK_PY", "KNOWN_PY", "WHEEL_CHECK_PY"})
_VALUES = {
    "TOOLS_DIR": tools.TOOLS_DIR,
    "CA_PATH": tools.CA_PATH,
    "UV_VERSION": tools.UV_VERSION,
    "UV_SHA256": " ".join(tools.UV_SHA256),
    "RATTLER_VERSION": tools.RATTLER_VERSION,
    "RATTLER_SHA256": " ".join(tools.RATTLER_SHA256),
}


def script_file(name: str) -> bytes:
    """The bytes of ``builder/recipes/scripts/<name>`` as shipped (no substitution)."""
    return resources.files("builder.recipes").joinpath("scripts", name).read_bytes()


@functools.cache
def script_text(name: str) -> str:
    """The text of script ``name`` with its ``@NAME@`` tokens substituted (see the module docstring)."""
    raw = script_file(name).decode("utf-8")
    if name.endswith(".py"):
        return raw  # Python files are carried as they are
    return _TOKEN.sub(lambda m: _value(name, m.group(1)), raw)


def _value(script: str, token: str) -> str:
    if token in _VALUES:
        return _VALUES[token]
    fragment = _FRAGMENTS.get(token)
    if fragment is None:
        raise ValueError(f"{script}: unknown token @{token}@ (known: {', '.join(sorted({*_VALUES, *_FRAGMENTS}))})")
    text = script_text(fragment)
    if token in _QUOTED and "'" in text:
        raise ValueError(f"{fragment} must not contain a single quote: {script} carries it in single quotes")
    return text if token in _QUOTED else text.removesuffix("\n")
