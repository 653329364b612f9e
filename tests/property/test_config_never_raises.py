"""Hypothesis: the loader and ``builder validate`` never raise, whatever the input.

Inputs are random documents shaped like cerebrium.toml (known sections and
keys mixed with unknown ones, values of every TOML type), mutations of the
fixture configs, and random bytes.  About 2,500 examples in total.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.cli import main
from builder.config import LoadResult, load
from builder.config.lines import join_key, key_lines
from builder.config.spec import SECTIONS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SEEDS = sorted(
    p.read_text(encoding="utf-8")
    for p in [*FIXTURES.glob("apps/*/cerebrium.toml"), *FIXTURES.glob("real-world/*.toml")]
)
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

# --- strategies ---------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=20)
KEY_WORDS = sorted(
    {name for s in SECTIONS.values() for name in s.options} | {"gpu", "predict_data", "x", "torch", "pkg[a, b]"}
)
KEYS = st.one_of(st.sampled_from(KEY_WORDS), TEXT)
ENUM_VALUES = ["3.10", "3.12", "CPU", "AMPERE_A10", "cpu_utilization", "round-robin", "/health", "latest", "==1.0", ""]
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-10, max_value=1000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ENUM_VALUES),
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=4,
)
SECTION_PATHS = [s.path.split(".") for s in SECTIONS.values()] + [
    ["cerebrium", "build"],
    ["cerebrium", "runtime", "cortex"],
    ["cerebrium", "scalling"],
    ["tool", "x"],
    ["cerebrium"],
]
SECTION = st.one_of(
    st.sampled_from(SECTION_PATHS), st.lists(st.one_of(st.just("cerebrium"), KEYS), min_size=1, max_size=3)
)
RANDOM_DOCUMENTS = st.lists(st.tuples(SECTION, st.dictionaries(KEYS, VALUES, max_size=5)), max_size=5)


@st.composite
def near_valid(draw: st.DrawFn) -> list[tuple[list[str], dict[str, Any]]]:
    """A named deployment plus known sections holding their own keys with plausible values."""
    document: list[tuple[list[str], dict[str, Any]]] = [(["cerebrium", "deployment"], {"name": "app"})]
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4)):
        names = sorted(SECTIONS[section].options) or ["numpy", "torch", "pkg[a, b]"]
        keys = st.one_of(st.sampled_from(names), KEYS) if draw(st.booleans()) else st.sampled_from(names)
        values = st.one_of(SCALARS, st.lists(st.sampled_from(ENUM_VALUES), max_size=3))
        table = draw(st.dictionaries(keys, values, max_size=5))
        if section == "cerebrium.deployment":
            document[0] = (document[0][0], {**table, "name": "app"})
        else:
            document.append((section.split("."), table))
    return document


DOCUMENTS = st.one_of(RANDOM_DOCUMENTS, near_valid())


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def render(document: list[tuple[list[str], dict[str, Any]]]) -> str:
    """Render sections; a header repeated or clashing just makes a syntax error, which is fine."""
    out = []
    for path, table in document:
        out.append("[" + ".".join(toml_key(p) for p in path) + "]")
        out.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())
        out.append("")
    return "\n".join(out)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 20)))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = (
                text[:i]
                + draw(st.sampled_from(["[", "]", "=", '"', "'", "\n", "#", ".", "{", "}", ",", "1", "true"]))
                + text[i:]
            )
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + draw(TEXT) + text[j:]
    return text


# --- helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def check_result(result: LoadResult) -> None:
    assert isinstance(result, LoadResult)
    errors = [d for d in result.diagnostics if d.level == "error"]
    assert (result.config is None) == bool(errors)
    for diagnostic in result.diagnostics:
        assert diagnostic.level in ("error", "warning")
        assert diagnostic.message
        assert "Traceback" not in diagnostic.format()
    if result.config is not None:
        assert result.config.deployment.name
        assert result.config.source_map is not None


def load_bytes(workdir: Path, data: bytes) -> LoadResult:
    target = workdir / "cerebrium.toml"
    target.write_bytes(data)
    first = load(workdir)
    assert load(target) == first  # deterministic, and file or directory give the same answer
    return first


# --- properties -------------------------------------------------------------------


@settings(max_examples=600, **SETTINGS)
@given(DOCUMENTS)
def test_structured_documents(workdir: Path, document: list[tuple[list[str], dict[str, Any]]]) -> None:
    check_result(load_bytes(workdir, render(document).encode("utf-8")))


@settings(max_examples=700, **SETTINGS)
@given(mutated())
def test_mutated_fixtures(workdir: Path, text: str) -> None:
    check_result(load_bytes(workdir, text.encode("utf-8", "surrogatepass")))


@settings(max_examples=600, **SETTINGS)
@given(
    st.one_of(
        st.binary(max_size=300), st.builds(lambda s, b: s.encode() + b, st.sampled_from(SEEDS), st.binary(max_size=20))
    )
)
def test_random_bytes(workdir: Path, data: bytes) -> None:
    check_result(load_bytes(workdir, data))


@settings(max_examples=300, **SETTINGS)
@given(
    st.one_of(
        DOCUMENTS.map(lambda d: render(d).encode("utf-8")),
        mutated().map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=100),
    )
)
def test_cli_validate(workdir: Path, data: bytes) -> None:
    target = workdir / "cerebrium.toml"
    target.write_bytes(data)
    for argv in (["validate", str(target)], ["validate", str(workdir), "--format", "json"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        assert code in (0, 2), err.getvalue()
        assert "internal error" not in err.getvalue()
        assert "Traceback" not in err.getvalue()
        if "--format" in argv:
            assert json.loads(out.getvalue())["valid"] is (code == 0)
        else:
            assert all(line.startswith(("error: ", "warning: ")) for line in err.getvalue().splitlines())


def leaf_paths(value: Any, prefix: list[str]) -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from leaf_paths(inner, [*prefix, key])
    elif prefix:
        yield join_key(prefix)


@settings(max_examples=300, **SETTINGS)
@given(DOCUMENTS)
def test_every_key_of_a_valid_document_has_a_line(document: list[tuple[list[str], dict[str, Any]]]) -> None:
    text = render(document)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    lines = key_lines(text)
    count = text.count("\n") + 1
    for path in leaf_paths(data, []):
        assert path in lines, path
        assert 1 <= lines[path] <= count
