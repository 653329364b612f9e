"""check_relpath's whole-string tests accept and reject exactly what a component-by-component check does."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builder.engines.buildkit.session.errors import UnsafePathError
from builder.engines.buildkit.session.paths import check_relpath


def reference(path: str) -> bool:
    """The plain definition: non-empty, relative, no backslash/NUL, no empty/./.. component, UTF-8."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    if any(part in ("", ".", "..") for part in path.split("/")):
        return False
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def accepted(path: str) -> bool:
    try:
        return check_relpath(path) == path
    except UnsafePathError:
        return False


components = st.one_of(
    st.sampled_from(["", ".", "..", "...", "a", ".env", "b..c", "é", "\udcff", "x\\y", "\x00"]), st.text(max_size=4)
)


@settings(max_examples=3000)
@given(st.lists(components, min_size=0, max_size=6), st.booleans(), st.booleans())
def test_same_verdict_as_the_component_check(parts: list[str], lead: bool, trail: bool) -> None:
    path = ("/" if lead else "") + "/".join(parts) + ("/" if trail else "")
    assert accepted(path) == reference(path)


def test_examples() -> None:
    for good in ("a", "a/b", ".env", "a/..b/c", "...", "é/x"):
        assert accepted(good)
    for bad in ("", "/a", "a/", "a//b", "./a", "a/.", "a/../b", "..", "a\\b", "a\x00", "\udcff"):
        assert not accepted(bad)
