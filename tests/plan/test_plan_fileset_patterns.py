"""The pattern fast paths (prefix*, *suffix, literal base names) agree with plain fnmatch on name or path."""

from __future__ import annotations

import fnmatch
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.plan.fileset import _ALL, _normalise, _Patterns

NAMES = ["a", "b.py", "Dockerfile", "ca.crt", ".env", "build", "x.log", "sub", "a.b"]
PATTERNS = [
    *NAMES,
    "*.py",
    ".*",
    "build/",
    "sub/",
    "Dockerfile/",
    "a*",
    "*.log",
    "x?log",
    "s*b/",
    "*",
    "[ab]",
    "a/b.py",
]


def reference(patterns: list[str], rel: str, is_dir: bool) -> bool:
    """The documented rule: fnmatch against the path or the base name; ``dir/`` only matches directories."""
    name = rel.rpartition("/")[2]
    for raw in patterns:
        pat = _normalise(raw)
        if pat is None:
            continue
        if pat in _ALL:
            return True
        if pat.endswith("/") and not is_dir:
            continue
        body = pat.rstrip("/")
        if re.match(fnmatch.translate(body), name) or re.match(fnmatch.translate(body), rel):
            return True
    return False


@settings(max_examples=1500)
@given(
    st.lists(st.sampled_from(PATTERNS), max_size=4),
    st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
    st.booleans(),
)
def test_fast_paths_match_like_fnmatch(patterns: list[str], parts: list[str], is_dir: bool) -> None:
    rel = "/".join(parts)
    name = parts[-1]
    compiled = _Patterns(patterns)
    # The walk prunes a matching directory, so a path only reaches the matcher if no parent matched.
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    if any(reference(patterns, p, True) for p in parents):
        return
    assert compiled.matches(rel, name, is_dir) == reference(patterns, rel, is_dir)


def test_literal_names_are_set_lookups() -> None:
    compiled = _Patterns(["Dockerfile", "ca.crt", "build/"])
    assert compiled.names == {"Dockerfile", "ca.crt"} and compiled.dir_names == {"build"}
    assert compiled.file_re is None and compiled.dir_re is None
    assert compiled.matches("app/Dockerfile", "Dockerfile", False)
    assert compiled.matches("app/build", "build", True) and not compiled.matches("app/build", "build", False)
