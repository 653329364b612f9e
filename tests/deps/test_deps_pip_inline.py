"""Inline [cerebrium.dependencies.pip] tables: every version form, extras, markers, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.deps.pip import pip_set_from_inline
from builder.errors import DependencyError


def one(key: str, value: str) -> tuple[str, str, str]:
    req = pip_set_from_inline(((key, value),), project_dir=Path(".")).requirements[0]
    return req.name, req.line, req.specifier


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("numpy", "latest", "numpy"),
        ("numpy", "LATEST", "numpy"),
        ("numpy", "", "numpy"),
        ("numpy", "*", "numpy"),
        ("numpy", " latest ", "numpy"),
        ("torch", "2.0.0", "torch==2.0.0"),
        ("torch", "2.0", "torch==2.0"),
        ("torch", "v2.0.1", "torch==2.0.1"),  # PEP 440 normalisation of a bare version
        ("torch", "==2.0.0", "torch==2.0.0"),
        ("pandas", ">=1.5.0", "pandas>=1.5.0"),
        ("pandas", "~=1.4", "pandas~=1.4"),
        ("pandas", "!=1.2,<2", "pandas!=1.2,<2"),
        ("pandas", "<2, !=1.2", "pandas!=1.2,<2"),  # order and spaces inside the spec don't matter
        ("pandas", "===1.0", "pandas===1.0"),
        ("Torch", "latest", "torch"),
        ("Pipecat_AI", "latest", "pipecat-ai"),
        ("zope.interface", "latest", "zope-interface"),
        ("pipecat-ai[silero, daily]", "0.0.1", "pipecat-ai[daily,silero]==0.0.1"),
        ("pipecat-ai[ Daily ]", "latest", "pipecat-ai[daily]"),
        ("uvicorn[Standard_Extra]", ">=0.1", "uvicorn[standard-extra]>=0.1"),
        ("x", '>=1 ; python_version < "3.12"', 'x>=1 ; python_version < "3.12"'),
        ("x", "latest; sys_platform=='linux'", 'x ; sys_platform == "linux"'),
    ],
)
def test_version_forms(key: str, value: str, line: str) -> None:
    assert one(key, value)[1] == line


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("numpy", "not a version", "not a valid version"),
        ("numpy", ">>1", "not a valid version specifier"),
        ("numpy", "=>1", "not a valid version specifier"),
        ("numpy", "x; rm -rf /", "not a valid version"),
        ("numpy", "1.0\nrm -rf /", "newline"),
        ("numpy", "1.0\x00", "NUL"),
        ("numpy", "$(reboot)", "not a valid version specifier"),
        ("numpy", "`reboot`", "not a valid version specifier"),
        ("numpy", ">=1; rm -rf /", "invalid environment marker"),
        ("x; rm -rf /", "latest", "not a valid package name"),
        ("x\nevil", "latest", "newline"),
        ("x && reboot", "latest", "not a valid package name"),
        ("x|y", "latest", "not a valid package name"),
        ("$(id)", "latest", "not a valid package name"),
        ("numpy>=1", "latest", "must be a package name"),
        ("numpy @ https://x.org/n.whl", "2.0", "URL requirement and cannot take the version"),
        ("git+https://x.org/r.git", "1.0", "URL requirement and cannot take the version"),
        ("numpy @ https://x.org/n.whl;id", "latest", "invalid requirement|not an acceptable URL"),
        ("", "latest", "not a valid package name"),
    ],
)
def test_bad_inline_entries_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(DependencyError, match=message) as info:
        pip_set_from_inline(((key, value),), project_dir=Path("."), config_file="cerebrium.toml")
    assert info.value.key_path is not None
    assert info.value.key_path.startswith("cerebrium.dependencies.pip")
    assert info.value.file == "cerebrium.toml"


def test_key_path_quotes_keys_with_brackets() -> None:
    with pytest.raises(DependencyError) as info:
        pip_set_from_inline((("pipecat-ai[silero, daily]", "nope nope"),), project_dir=Path("."))
    assert info.value.key_path == 'cerebrium.dependencies.pip."pipecat-ai[silero, daily]"'


def test_line_numbers_come_from_the_source_map() -> None:
    lines = {"cerebrium.dependencies.pip.torch": 12}
    with pytest.raises(DependencyError) as info:
        pip_set_from_inline((("torch", "??"),), project_dir=Path("."), lines=lines)
    assert info.value.line == 12


@pytest.mark.parametrize(("a", "b"), [("Torch", "torch"), ("zope.interface", "Zope_Interface"), ("a-b", "a_b")])
def test_duplicate_names_are_an_error(a: str, b: str) -> None:
    with pytest.raises(DependencyError, match="same package") as info:
        pip_set_from_inline(((a, "latest"), (b, "1.0")), project_dir=Path("."))
    assert a in info.value.message and b in info.value.message


def test_order_of_entries_does_not_matter() -> None:
    entries = [("b", "1"), ("a", "latest"), ("c[x]", ">=2")]
    first = pip_set_from_inline(entries, project_dir=Path("."))
    second = pip_set_from_inline(list(reversed(entries)), project_dir=Path("."))
    assert first == second
    assert [r.name for r in first.requirements] == ["a", "b", "c"]


def test_extras_are_recorded_sorted_and_normalised() -> None:
    req = pip_set_from_inline((("pkg[Zeta, alpha,alpha]", "latest"),), project_dir=Path(".")).requirements[0]
    assert req.extras == ("alpha", "zeta")
    assert req.line == "pkg[alpha,zeta]"
