"""Key path → line map from the TOML source."""

from __future__ import annotations

import tomllib

import pytest

from builder.config.lines import join_key, key_lines

DOC = '''# comment
[cerebrium.deployment]
name = "x"   # trailing
include = [
  "a",  # in array
  "b",
]
a.b."c.d" = { e = 1, f = [ { g = 2 },
  { h = 3 } ] }
s = """multi
[not.a.header]
line"""
lit = \'\'\'x = 1\'\'\'
t = 1979-05-27 07:32:00Z
"quoted \\" key" = 1

[cerebrium.dependencies.pip]
"pkg[a, b]" = "==1.0"
'ruamel.yaml' = "latest"
[[tool.items]]
k = 1
'''


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("cerebrium", 2),
        ("cerebrium.deployment", 2),
        ("cerebrium.deployment.name", 3),
        ("cerebrium.deployment.include", 4),
        ("cerebrium.deployment.a", 8),
        ('cerebrium.deployment.a.b."c.d".e', 8),
        ('cerebrium.deployment.a.b."c.d".f.g', 8),
        ('cerebrium.deployment.a.b."c.d".f.h', 9),
        ("cerebrium.deployment.s", 10),
        ("cerebrium.deployment.lit", 13),
        ("cerebrium.deployment.t", 14),
        ('cerebrium.deployment."quoted \\" key"', 15),
        ("cerebrium.dependencies.pip", 17),
        ('cerebrium.dependencies.pip."pkg[a, b]"', 18),
        ('cerebrium.dependencies.pip."ruamel.yaml"', 19),
        ("tool.items", 20),
        ("tool.items.k", 21),
    ],
)
def test_lines(path: str, line: int) -> None:
    tomllib.loads(DOC)  # the fixture is valid TOML
    assert key_lines(DOC)[path] == line


def test_multiline_string_body_is_not_a_header() -> None:
    assert "not.a.header" not in key_lines(DOC)


def test_crlf_line_endings() -> None:
    assert key_lines("[a]\r\nb = 1\r\nc = 2\r\n")["a.c"] == 3


def test_garbage_returns_partial_map() -> None:
    lines = key_lines("[a]\nb = 1\n= = =\nc = 2\n")
    assert lines == {"a": 1, "a.b": 2}


def test_join_key_quotes_only_when_needed() -> None:
    assert join_key(["a", "b-c_1", "d.e", 'q"x']) == 'a.b-c_1."d.e"."q\\"x"'
