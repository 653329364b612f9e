"""The packaging-free parse of simple requirement text gives exactly what packaging gives.

builder.deps.pip parses a plain name, one comparison with a normalised version
and one single-comparison marker itself (importing packaging costs more than
planning a cached app).  Whatever text the simple forms accept must come out
the same as through packaging, because the canonical line is hashed into the
pip step's key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from builder.deps import pip

WHERE = pip._Where("cerebrium.dependencies.pip")

NAMES = st.text("aAzZ019._-", min_size=1, max_size=10)
NUMS = st.sampled_from(["0", "1", "01", "10", "2024", "007"])
RELEASES = st.lists(NUMS, min_size=1, max_size=4).map(".".join)
SUFFIXES = st.sampled_from(
    [
        "",
        "",
        "a1",
        "b0",
        "rc2",
        "c1",
        "alpha1",
        "-rc1",
        ".post0",
        "post1",
        "-1",
        ".dev0",
        "dev3",
        "+local",
        ".*",
        "a",
        ".post",
        "a1.post2.dev3",
        "rc01",
    ]
)
VERSIONS = st.tuples(st.sampled_from(["", "", "v", "1!"]), RELEASES, SUFFIXES, SUFFIXES).map("".join)
OPS = st.sampled_from(["==", "!=", "<=", ">=", "<", ">", "~=", "===", "=", "=>"])
SPACE = st.sampled_from(["", " ", "  "])
MARKER_VARS = st.sampled_from(
    [
        "python_version",
        "python_full_version",
        "sys_platform",
        "os_name",
        "os.name",
        "platform_machine",
        "platform_python_implementation",
        "python_implementation",
        "implementation_name",
        "platform_release",
        "extra",
        "bogus",
    ]
)
MARKER_OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "~=", "===", "in", "not in", "=<"])
MARKER_VALUES = st.one_of(VERSIONS, st.text("ab3.*\"' _-", max_size=6))
QUOTES = st.sampled_from(['"', "'", ""])


@st.composite
def markers(draw: st.DrawFn) -> str:
    quote = draw(QUOTES)
    text = draw(MARKER_VARS) + draw(SPACE) + draw(MARKER_OPS) + draw(SPACE) + quote + draw(MARKER_VALUES) + quote
    if draw(st.booleans()) and draw(st.booleans()):
        text += ' and python_version >= "3.8"'
    return text


@st.composite
def specs(draw: st.DrawFn) -> str:
    return draw(OPS) + draw(SPACE) + draw(VERSIONS)


@st.composite
def requirement_lines(draw: st.DrawFn) -> str:
    text = draw(NAMES) + draw(SPACE)
    if draw(st.booleans()):
        text += draw(specs()) + draw(SPACE)
    if draw(st.booleans()):
        text += ";" + draw(SPACE) + draw(markers())
    return text.strip()


def _with_packaging(text: str) -> pip.PipRequirement:
    req = Requirement(text)
    return pip._make(req.name, sorted(req.extras), str(req.specifier), str(req.marker) if req.marker else "")


@settings(max_examples=1500, deadline=None)
@given(requirement_lines())
@example('idna==3.7; python_version < "2.0"')
@example("python-dateutil==2.9.0.post0")
@example("Foo_Bar.baz>= 1.0rc1 ;sys_platform=='linux'")
def test_simple_requirement_equals_packaging(text: str) -> None:
    if pip._SIMPLE_REQUIREMENT.fullmatch(text) is None:
        return
    assert pip._pep508(text, WHERE) == _with_packaging(text)


@settings(max_examples=1000, deadline=None)
@given(markers())
def test_simple_marker_equals_packaging(text: str) -> None:
    if pip._SIMPLE_MARKER.fullmatch(text) is None:
        return
    assert pip._marker(text, WHERE) == str(Marker(text))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(VERSIONS, specs()))
def test_simple_inline_version_equals_packaging(value: str) -> None:
    if not (pip._SIMPLE_VERSION.fullmatch(value) or pip._SIMPLE_SPEC.fullmatch(value)):
        return
    expected = f"=={Version(value)}" if value[:1].isalnum() else str(SpecifierSet(value))
    assert pip._version_spec(value, "pkg", WHERE) == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(NAMES, st.text(max_size=12)))
def test_canonical_name_equals_packaging(name: str) -> None:
    assert pip._canonical_name(name) == canonicalize_name(name)


def test_simple_forms_cover_pinned_files_without_importing_packaging(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        'requests==2.32.3\nPyYAML>=6.0.2\npython-dateutil==2.9.0.post0\nnumpy\nidna==3.7; python_version < "2.0"\n'
    )
    probe = (
        "import sys\nfrom pathlib import Path\nfrom builder.deps.pip import pip_set_from_file, pip_set_from_inline\n"
        f"s = pip_set_from_file('requirements.txt', project_dir=Path({str(tmp_path)!r}))\n"
        "i = pip_set_from_inline([('torch', '2.1.0'), ('Flask_Login', '>=0.6 ; sys_platform == \"linux\"')],"
        " project_dir=Path('.'))\n"
        "print([r.line for r in s.requirements + i.requirements])\nprint('packaging' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines, loaded = done.stdout.strip().splitlines()
    assert lines == str(
        [
            'idna==3.7 ; python_version < "2.0"',
            "numpy",
            "python-dateutil==2.9.0.post0",
            "pyyaml>=6.0.2",
            "requests==2.32.3",
            'flask-login>=0.6 ; sys_platform == "linux"',
            "torch==2.1.0",
        ]
    )
    assert loaded == "False"
