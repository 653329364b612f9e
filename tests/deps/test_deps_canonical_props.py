"""Property tests: the canonical form ignores spelling and order, and sees every real change."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.deps import canonical_bytes
from builder.deps.apt import apt_set_from_inline
from builder.deps.conda import conda_set_from_inline
from builder.deps.pip import pip_set_from_file, pip_set_from_inline

NAMES = ("alpha", "beta-pkg", "gamma.x", "delta_y", "eps")
VERSIONS = ("", "==1.0", ">=2.1", "~=1.4", "!=1.2,<2", "==3.0.1")
EXTRAS = ("fast", "gpu", "socks")
MARKERS = ("", 'python_version >= "3.10"', 'sys_platform == "linux"')


@dataclass(frozen=True)
class Entry:
    name: str
    version: str
    extras: frozenset[str]
    marker: str


entries = st.lists(
    st.builds(
        Entry,
        st.sampled_from(NAMES),
        st.sampled_from(VERSIONS),
        st.frozensets(st.sampled_from(EXTRAS)),
        st.sampled_from(MARKERS),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda e: e.name,
)


def respell(name: str, data: st.DataObject) -> str:
    """Same PEP 503 name: random case and separator runs."""
    out = []
    for ch in name:
        if ch in "-_.":
            out.append(data.draw(st.sampled_from(["-", "_", ".", "--", "_-"])))
        else:
            out.append(ch.upper() if data.draw(st.booleans()) else ch)
    return "".join(out)


def render_line(e: Entry, data: st.DataObject) -> str:
    sp = lambda: data.draw(st.sampled_from(["", " ", "  "]))  # noqa: E731
    extras = list(e.extras)
    extras = data.draw(st.permutations(extras)) if extras else []
    extras = [x.upper() if data.draw(st.booleans()) else x for x in extras]
    text = respell(e.name, data) + (f"[{(',' + sp()).join(extras)}]" if extras else "")
    if e.version:
        parts = e.version.split(",")
        text += sp() + ("," + sp()).join(data.draw(st.permutations(parts)))
    if e.marker:
        marker = e.marker.replace('"', data.draw(st.sampled_from(['"', "'"])))
        text += sp() + ";" + sp() + marker.replace(" ", sp() or " ")
    return text


def render_file(items: list[Entry], data: st.DataObject) -> str:
    lines = [render_line(e, data) for e in data.draw(st.permutations(items))]
    out = []
    for line in lines:
        if data.draw(st.booleans()):
            out.append(data.draw(st.sampled_from(["# comment", "", "   ", "## x -r nothing"])))
        if data.draw(st.booleans()):
            line += "  # trailing"
        if data.draw(st.booleans()) and " " in line.strip():
            head, _, rest = line.partition(" ")
            line = head + " \\\n    " + rest
        out.append(data.draw(st.sampled_from(["", " ", "\t"])) + line)
    return "\n".join(out) + data.draw(st.sampled_from(["", "\n", "\n\n"]))


def canonical_text(items: list[Entry]) -> str:
    return "".join(
        e.name
        + (f"[{','.join(sorted(e.extras))}]" if e.extras else "")
        + e.version
        + (f" ; {e.marker}" if e.marker else "")
        + "\n"
        for e in sorted(items, key=lambda e: e.name)
    )


def parse(text: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "requirements.txt").write_text(text)
        return canonical_bytes(pip_set_from_file("requirements.txt", project_dir=Path(tmp)))


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(entries, st.data())
def test_equivalent_requirements_files_have_identical_canonical_form(items: list[Entry], data: st.DataObject) -> None:
    assert parse(render_file(items, data)) == parse(canonical_text(items))


@SETTINGS
@given(entries, st.data())
def test_any_change_changes_the_canonical_form(items: list[Entry], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    e = items[index]
    field = data.draw(st.sampled_from(["name", "version", "extras", "marker"]))
    if field == "name":
        taken = {i.name for i in items}
        free = [n for n in NAMES if n not in taken]
        if not free:
            return
        changed = Entry(data.draw(st.sampled_from(free)), e.version, e.extras, e.marker)
    elif field == "version":
        changed = Entry(e.name, data.draw(st.sampled_from([v for v in VERSIONS if v != e.version])), e.extras, e.marker)
    elif field == "extras":
        changed = Entry(e.name, e.version, e.extras ^ {data.draw(st.sampled_from(EXTRAS))}, e.marker)
    else:
        changed = Entry(e.name, e.version, e.extras, data.draw(st.sampled_from([m for m in MARKERS if m != e.marker])))
    mutated = [*items[:index], changed, *items[index + 1 :]]
    assert parse(canonical_text(mutated)) != parse(canonical_text(items))


inline_versions = st.sampled_from([("latest", ""), ("", ""), ("*", ""), ("2.0.0", "==2.0.0"), (">=1.5", ">=1.5")])


@SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(NAMES), inline_versions), min_size=1, max_size=5, unique_by=lambda t: t[0]),
    st.data(),
)
def test_inline_tables_ignore_order_case_and_unpinned_spelling(
    items: list[tuple[str, tuple[str, str]]], data: st.DataObject
) -> None:
    table = [(respell(n, data), v[0]) for n, v in data.draw(st.permutations(items))]
    reference = [(n, v[1] or "latest") for n, v in items]
    empty = Path(".")
    assert canonical_bytes(pip_set_from_inline(table, project_dir=empty)) == canonical_bytes(
        pip_set_from_inline(reference, project_dir=empty)
    )


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["curl", "ffmpeg", "git", "libgl1"]), st.sampled_from(["latest", "", "*", "1.0-1"])),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    ),
    st.data(),
)
def test_apt_and_conda_sets_ignore_order(items: list[tuple[str, str]], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(items))
    assert canonical_bytes(apt_set_from_inline(items)) == canonical_bytes(apt_set_from_inline(shuffled))
    assert canonical_bytes(conda_set_from_inline(items)) == canonical_bytes(conda_set_from_inline(shuffled))
